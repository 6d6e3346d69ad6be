"""Crontab lines run as cron runs them, for the export tests: split as cron splits them,
run by /bin/sh with cron's bare environment, optionally under the kernel's
memory-deny-write-execute (PR_SET_MDWE, what systemd's MemoryDenyWriteExecute= becomes)."""

from __future__ import annotations

import ctypes
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

PR_SET_MDWE = 65


def entries(crontab: str) -> list[tuple[str, str]]:
    """(schedule, command) of each job line, as cron splits it: five fields, the rest;
    an escaped % is a % again."""
    found = []
    for line in crontab.splitlines():
        if not line or line.startswith("#") or "=" in line.split(" ", 1)[0]:
            continue
        fields = line.split(" ", 5)
        found.append((" ".join(fields[:5]), fields[5].replace("\\%", "%")))
    return found


def deny_write_execute() -> None:
    """In a child before exec: no memory both writable and executable, from then on, in it
    and in what it starts."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_MDWE, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_MDWE)")


def kernel_denies_write_execute() -> bool:
    """Whether a process started with deny_write_execute is refused memory both writable
    and executable, through the shell cron starts, as the jobs are."""
    wx = "import mmap; mmap.mmap(-1, 4096, prot=mmap.PROT_WRITE | mmap.PROT_EXEC)"
    try:
        probe = subprocess.run(
            ["/bin/sh", "-c", f'{shlex.quote(sys.executable)} -c "{wx}"'],
            preexec_fn=deny_write_execute,
            capture_output=True,
            text=True,
            check=False,
        )
    except subprocess.SubprocessError:  # prctl failed: the kernel lacks PR_SET_MDWE
        return False
    return probe.returncode != 0 and "PermissionError" in probe.stderr


def run_as_cron(
    command: str,
    home: Path,
    deny_wx: bool = False,
    confine: Callable[[], None] | None = None,
) -> None:
    """command as cron runs it: /bin/sh, a bare environment (the suite's cache and state
    folders kept, see tests/conftest.py); with deny_wx under memory-deny-write-execute,
    and confine run in the child before exec (a system call filter)."""

    def before_exec() -> None:
        if deny_wx:
            deny_write_execute()
        if confine is not None:
            confine()

    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "XDG_CACHE_HOME": os.environ["XDG_CACHE_HOME"],
        "XDG_STATE_HOME": os.environ["XDG_STATE_HOME"],
    }
    subprocess.run(
        ["/bin/sh", "-c", command],
        env=env,
        check=True,
        timeout=300,
        preexec_fn=before_exec,
    )
