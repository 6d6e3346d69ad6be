"""systemd's SystemCallFilter=@system-service, applied to a child process the way systemd
applies it (libseccomp, an errno for any other system call), for tests that run the jobs
the exported units run. The set is read from the real `systemd-analyze syscall-filter`."""

from __future__ import annotations

import ctypes
import errno
import functools
import subprocess
from collections.abc import Callable

PR_SET_NO_NEW_PRIVS = 38
# libseccomp: SCMP_ACT_ALLOW, and SCMP_ACT_ERRNO(EPERM) as SystemCallErrorNumber=EPERM
ACT_ALLOW = 0x7FFF0000
ACT_ERRNO_EPERM = 0x00050000 | errno.EPERM


@functools.cache
def syscalls_of(group: str) -> frozenset[str]:
    """The system calls of a systemd syscall group, its nested groups expanded."""
    shown = subprocess.run(
        ["systemd-analyze", "syscall-filter", group],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    names: set[str] = set()
    for line in shown.splitlines()[1:]:
        word = line.strip()
        if not word or word.startswith("#"):
            continue
        names |= syscalls_of(word) if word.startswith("@") else {word}
    return frozenset(names)


def system_service_filter() -> Callable[[], None]:
    """What a child runs before exec to have only @system-service's calls from then on
    (inherited by what it starts), the others failing with EPERM. The set is read here,
    in the parent: a child between fork and exec must not start processes."""
    allowed = sorted(syscalls_of("@system-service"))

    def apply() -> None:
        seccomp = ctypes.CDLL("libseccomp.so.2", use_errno=True)
        seccomp.seccomp_init.restype = ctypes.c_void_p
        seccomp.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int]
        seccomp.seccomp_load.argtypes = [ctypes.c_void_p]
        seccomp.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        context = seccomp.seccomp_init(ACT_ERRNO_EPERM)
        for name in allowed:
            number = seccomp.seccomp_syscall_resolve_name(name.encode())
            if number >= 0:  # not a name of another architecture
                seccomp.seccomp_rule_add(context, ACT_ALLOW, number, 0)
        if seccomp.seccomp_load(context) != 0:
            raise OSError("seccomp_load failed")

    return apply
