"""Owner and group names and numbers, as tar maps them: a backup records both, a restore
(as root) takes the name when this system knows it, else the number. Each is looked up
once per run: a tree has few owners and many files."""

from __future__ import annotations

import functools
import grp
import pwd
from collections.abc import Callable


def _or(lookup: Callable[[], str | int], fallback: str | int) -> str | int:
    try:
        return lookup()
    except KeyError:
        return fallback


@functools.cache
def user_name(uid: int) -> str:
    return str(_or(lambda: pwd.getpwuid(uid).pw_name, ""))


@functools.cache
def group_name(gid: int) -> str:
    return str(_or(lambda: grp.getgrgid(gid).gr_name, ""))


@functools.cache
def uid_of(name: str, number: int) -> int:
    return int(_or(lambda: pwd.getpwnam(name).pw_uid, number)) if name else number


@functools.cache
def gid_of(name: str, number: int) -> int:
    return int(_or(lambda: grp.getgrnam(name).gr_gid, number)) if name else number
