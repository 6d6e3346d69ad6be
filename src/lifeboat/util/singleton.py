"""One process at a time per lock file, by an exclusive flock: the spool's worker and
prefetcher, wal-stream's staging folder. The kernel drops the lock when its holder dies,
so a crash never leaves a stale lock behind."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

# how often try_lock asks again while it waits for another holder to let go
_RETRY_SECONDS = 0.02


def lock_is_held(lock_path: Path) -> bool:
    """Whether a process holds lock_path; creates nothing, so status can ask too."""
    try:
        fd = os.open(lock_path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases a lock we took
    return False


def try_lock(lock_path: Path, patience: float, mode: int = 0o600) -> int | None:
    """An fd holding the exclusive lock, or None when another process keeps it for longer
    than `patience` seconds. Release it with release_lock."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, mode)
    deadline = time.monotonic() + patience
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                return None
            time.sleep(_RETRY_SECONDS)


def release_lock(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


@contextlib.contextmanager
def held_or_none(lock_path: Path, patience: float = 0.0) -> Iterator[bool]:
    """Hold the lock for the block; yields False (holding nothing) when another process
    has it, so the caller says who it is in its own words."""
    fd = try_lock(lock_path, patience)
    if fd is None:
        yield False
        return
    try:
        yield True
    finally:
        release_lock(fd)


def serve_while_wanted(
    lock_path: Path, patience: float, serve: Callable[[], None], wanted: Callable[[], bool]
) -> bool:
    """Be the one server behind lock_path: hold the lock and serve() until it returns (its
    work ran out), then release the lock and look again. A client that asked while the lock
    was held started no server of its own, so what it left (wanted() is true) is still
    ours; one that asks after the release finds the lock free and starts its own. False
    when another server held the lock from the start (then nothing was served)."""
    fd = try_lock(lock_path, patience)
    if fd is None:
        return False
    try:
        while True:
            serve()
            release_lock(fd)
            fd = None
            if not wanted():
                return True
            fd = try_lock(lock_path, patience)
            if fd is None:
                return True
    finally:
        if fd is not None:
            release_lock(fd)
