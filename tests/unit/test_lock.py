"""Advisory repository locks: acquire, release, contention and stale takeover."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lifeboat.errors import LockedError
from lifeboat.repo import layout
from lifeboat.repo.lock import STALE_AFTER, repository_lock
from lifeboat.storage.base import NotFound
from lifeboat.storage.memory import MemoryStorage

KEY = layout.lock_key("wms")


@pytest.fixture
def storage() -> MemoryStorage:
    return MemoryStorage("locks")


def holder(storage: MemoryStorage) -> dict[str, Any]:
    with storage.read(KEY) as stream:
        data: dict[str, Any] = json.loads(stream.read())
    return data


def plant(storage: MemoryStorage, **fields: object) -> dict[str, object]:
    lock: dict[str, object] = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started_at": datetime.now(UTC).isoformat(),
        "purpose": "backup wms",
        "token": "f" * 16,
    }
    lock.update(fields)
    storage.write(KEY, [json.dumps(lock).encode()])
    return lock


def is_locked(storage: MemoryStorage) -> bool:
    try:
        storage.stat(KEY)
    except NotFound:
        return False
    return True


@pytest.fixture(scope="module")
def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_acquire_and_release(storage: MemoryStorage) -> None:
    assert not is_locked(storage)
    before = datetime.now(UTC)
    with repository_lock(storage, "wms", "backup wms"):
        assert is_locked(storage)
        lock = holder(storage)
        assert lock["host"] == socket.gethostname()
        assert lock["pid"] == os.getpid()
        assert lock["purpose"] == "backup wms"
        assert len(lock["token"]) == 16
        assert before <= datetime.fromisoformat(lock["started_at"]) <= datetime.now(UTC)
    assert not is_locked(storage)
    assert [i.key for i in storage.list("")] == []


def test_released_when_the_body_raises(storage: MemoryStorage) -> None:
    with pytest.raises(RuntimeError), repository_lock(storage, "wms", "backup"):
        raise RuntimeError("backup failed")
    assert not is_locked(storage)


def test_reacquire_after_release(storage: MemoryStorage) -> None:
    for _ in range(3):
        with repository_lock(storage, "wms", "backup"):
            pass
    assert not is_locked(storage)


def test_locks_are_per_name(storage: MemoryStorage) -> None:
    with repository_lock(storage, "wms", "backup"), repository_lock(storage, "crm", "backup"):
        assert {i.key for i in storage.list("locks/")} == {
            layout.lock_key("wms"),
            layout.lock_key("crm"),
        }
    assert list(storage.list("locks/")) == []


def test_second_acquire_while_held_is_refused(storage: MemoryStorage) -> None:
    with repository_lock(storage, "wms", "backup wms"):
        before = holder(storage)
        with pytest.raises(LockedError) as caught, repository_lock(storage, "wms", "restore wms"):
            pytest.fail("acquired a held lock")
        message = str(caught.value)
        assert "wms is locked by backup wms" in message
        assert f"pid {os.getpid()}" in message
        assert socket.gethostname() in message
        assert before["started_at"] in message
        assert caught.value.exit_code == 1
        # the refused attempt neither replaced nor removed the holder's lock
        assert holder(storage) == before
    assert not is_locked(storage)


def test_live_process_on_this_host_blocks(storage: MemoryStorage) -> None:
    # alive until its input closes, however long the test takes
    alive = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        planted = plant(storage, pid=alive.pid, started_at="2000-01-01T00:00:00+00:00")
        with (
            pytest.raises(LockedError, match=f"pid {alive.pid}"),
            repository_lock(storage, "wms", "backup"),
        ):
            pass
        assert holder(storage) == planted
    finally:
        alive.communicate()


def test_dead_pid_on_this_host_is_taken_over(storage: MemoryStorage, dead_pid: int) -> None:
    plant(storage, pid=dead_pid)
    with repository_lock(storage, "wms", "backup wms"):
        lock = holder(storage)
        assert lock["pid"] == os.getpid()
        assert lock["token"] != "f" * 16
    assert not is_locked(storage)


def test_other_host_young_lock_blocks(storage: MemoryStorage) -> None:
    started = datetime.now(UTC) - STALE_AFTER + timedelta(minutes=5)
    planted = plant(
        storage, host="elsewhere.example", pid=1, started_at=started.isoformat(), purpose="verify"
    )
    with pytest.raises(LockedError) as caught, repository_lock(storage, "wms", "backup"):
        pass
    assert "locked by verify" in str(caught.value)
    assert "elsewhere.example" in str(caught.value)
    assert holder(storage) == planted


def test_other_host_old_lock_is_taken_over(storage: MemoryStorage) -> None:
    started = datetime.now(UTC) - STALE_AFTER - timedelta(minutes=5)
    plant(storage, host="elsewhere.example", pid=1, started_at=started.isoformat())
    with repository_lock(storage, "wms", "backup"):
        assert holder(storage)["host"] == socket.gethostname()
    assert not is_locked(storage)


@pytest.mark.parametrize(
    "content",
    [b"not json", b"{}", b'{"host": "x"}', b'{"pid": "abc", "started_at": "2024-01-01"}'],
)
def test_unreadable_lock_is_taken_over(storage: MemoryStorage, content: bytes) -> None:
    storage.write(KEY, [content])
    with repository_lock(storage, "wms", "backup"):
        assert holder(storage)["pid"] == os.getpid()
    assert not is_locked(storage)


def test_release_leaves_a_lock_taken_over_by_another_run(storage: MemoryStorage) -> None:
    with repository_lock(storage, "wms", "backup"):
        intruder = plant(storage, host="elsewhere.example", token="0" * 16)
    assert holder(storage) == intruder


def test_lock_stolen_between_write_and_confirm(
    storage: MemoryStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = storage.write

    def racing_write(key: str, chunks: Any) -> Any:
        info = real_write(key, chunks)
        # another run wrote its own lock right after ours
        real_write(key, [json.dumps({"token": "other", "pid": 1}).encode()])
        return info

    monkeypatch.setattr(storage, "write", racing_write)
    with (
        pytest.raises(LockedError, match="at the same moment"),
        repository_lock(storage, "wms", "backup"),
    ):
        pytest.fail("acquired a lock another run holds")
