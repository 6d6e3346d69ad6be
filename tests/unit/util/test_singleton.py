"""util/singleton.py: an exclusive flock held by another real process keeps everyone else
out, and is free again once that process is gone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lifeboat.util.singleton import (
    held_or_none,
    lock_is_held,
    release_lock,
    serve_while_wanted,
    try_lock,
)

HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()
"""


def _holder(lock: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "held\n"  # blocks until the lock is taken
    return process


def _end(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.close()
    assert process.wait() == 0


def test_a_missing_lock_file_is_not_held_and_asking_creates_nothing(tmp_path: Path) -> None:
    lock = tmp_path / "worker.lock"
    assert not lock_is_held(lock)
    assert not lock.exists()


def test_another_process_holding_the_lock_keeps_us_out(tmp_path: Path) -> None:
    lock = tmp_path / "worker.lock"
    holder = _holder(lock)
    try:
        assert lock_is_held(lock)
        assert try_lock(lock, patience=0.0) is None
        with held_or_none(lock) as held:
            assert not held
    finally:
        _end(holder)
    assert not lock_is_held(lock)  # the kernel let go with the process


def test_the_lock_is_ours_until_released(tmp_path: Path) -> None:
    lock = tmp_path / "worker.lock"
    fd = try_lock(lock, patience=0.0)
    assert fd is not None
    assert (lock.stat().st_mode & 0o777) == 0o600
    # a second open file description is refused like another process would be
    assert try_lock(lock, patience=0.0) is None
    release_lock(fd)
    with held_or_none(lock) as held:
        assert held
        assert try_lock(lock, patience=0.0) is None
    assert not lock_is_held(lock)


def test_a_server_serves_again_what_was_asked_while_it_held_the_lock(tmp_path: Path) -> None:
    lock = tmp_path / "worker.lock"
    queue = ["a", "b"]  # "b" arrives while the lock is held: its client starts no server
    served: list[str] = []
    holding: list[bool] = []

    def serve() -> None:
        holding.append(lock_is_held(lock))
        served.append(queue.pop(0))

    assert serve_while_wanted(lock, 0.0, serve, lambda: bool(queue))
    assert served == ["a", "b"]
    assert holding == [True, True]
    assert not lock_is_held(lock)  # released at the end


def test_a_second_server_serves_nothing(tmp_path: Path) -> None:
    lock = tmp_path / "worker.lock"
    holder = _holder(lock)
    served: list[str] = []
    try:
        assert not serve_while_wanted(lock, 0.05, lambda: served.append("x"), lambda: True)
    finally:
        _end(holder)
    assert served == []
