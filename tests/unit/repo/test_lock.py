"""Repository locks: acquire, release, contention, stale takeover, both protocols.

Threads race for real on the in-memory store; the process-level races (and real
`lifeboat backup` runs) are in tests/integration/test_lock_race.py."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lifeboat.errors import LockedError
from lifeboat.repo import layout, lock
from lifeboat.repo.lock import STALE_AFTER, Holder, repository_lock
from lifeboat.storage.base import Capabilities, NotFound, ObjectInfo, Storage
from lifeboat.storage.capabilities import exclusive_create, upload_janitor
from lifeboat.storage.memory import MemoryStorage
from tests.forwarding import FiveOperations

KEY = layout.lock_key("wms")


class ListingOnly(FiveOperations):
    """A store with the five operations only (no exclusive create), as some S3-compatible
    stores are: the lock falls back to write, wait, list."""

    def __init__(self, inner: MemoryStorage) -> None:
        super().__init__(inner)
        self.url = "plain://listing-only"
        self.capabilities = Capabilities()


class Forwarding(ListingOnly):
    """A wrapper (as retries, dry run or metrics would be) that declares what it wraps."""

    def unwrap(self) -> Storage:
        return self.inner


class IgnoresCondition(MemoryStorage):
    """Stands for a store that accepts the exclusive-create condition and overwrites anyway
    (gcp-storage-emulator does: tests/integration/test_gcs_storage.py meets it for real)."""

    def create_exclusive(self, key: str, data: bytes) -> ObjectInfo:
        return self.write(key, [data])


@pytest.fixture
def storage() -> MemoryStorage:
    return MemoryStorage("locks")


@pytest.fixture
def listing_only(storage: MemoryStorage, monkeypatch: pytest.MonkeyPatch) -> ListingOnly:
    monkeypatch.setattr(lock, "SETTLE_SECONDS", 0.0)
    return ListingOnly(storage)


def holder(storage: Storage, key: str = KEY) -> dict[str, Any]:
    with storage.read(key) as stream:
        data: dict[str, Any] = json.loads(stream.read())
    return data


def plant(storage: Storage, key: str = KEY, **fields: object) -> dict[str, object]:
    planted: dict[str, object] = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started_at": datetime.now(UTC).isoformat(),
        "purpose": "backup of wms",
        "token": "f" * 16,
    }
    planted.update(fields)
    storage.write(key, [json.dumps(planted).encode()])
    return planted


def assert_refused(storage: Storage, match: str, purpose: str) -> None:
    with pytest.raises(LockedError, match=match), repository_lock(storage, "wms", purpose):
        pytest.fail("acquired a lock another run holds")


def is_locked(storage: Storage) -> bool:
    try:
        storage.stat(KEY)
    except NotFound:
        return False
    return True


def contender_files(storage: Storage) -> list[str]:
    return [info.key for info in storage.list(KEY + lock.CONTENDER)]


@pytest.fixture(scope="module")
def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


# --- taking and giving back ----------------------------------------------------------------


def test_acquire_and_release(storage: MemoryStorage) -> None:
    assert not is_locked(storage)
    before = datetime.now(UTC)
    with repository_lock(storage, "wms", "backup of wms"):
        assert is_locked(storage)
        held = holder(storage)
        assert held["host"] == socket.gethostname()
        assert held["pid"] == os.getpid()
        assert held["purpose"] == "backup of wms"
        assert len(held["token"]) == 16
        assert before <= datetime.fromisoformat(held["started_at"]) <= datetime.now(UTC)
    assert not is_locked(storage)
    # the probe of the exclusive create is gone too
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
    with repository_lock(storage, "wms", "backup of wms"):
        before = holder(storage)
        with pytest.raises(LockedError) as caught, repository_lock(storage, "wms", "prune"):
            pytest.fail("acquired a held lock")
        message = str(caught.value)
        assert "wms is locked by backup of wms" in message
        assert f"pid {os.getpid()}" in message
        assert socket.gethostname() in message
        assert before["started_at"] in message
        assert caught.value.exit_code == 1
        # the refused attempt neither replaced nor removed the holder's lock
        assert holder(storage) == before
    assert not is_locked(storage)


def test_release_leaves_a_lock_taken_over_by_another_run(storage: MemoryStorage) -> None:
    with repository_lock(storage, "wms", "backup"):
        intruder = plant(storage, host="elsewhere.example", token="0" * 16)
    assert holder(storage) == intruder


# --- stale holders -------------------------------------------------------------------------


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


def test_dead_pid_on_this_host_is_taken_over_at_once(
    storage: MemoryStorage, dead_pid: int, caplog: pytest.LogCaptureFixture
) -> None:
    plant(storage, pid=dead_pid)
    with repository_lock(storage, "wms", "backup of wms"):
        held = holder(storage)
        assert held["pid"] == os.getpid()
        assert held["token"] != "f" * 16
        # the takeover marker is gone once the lock is ours
        assert [i.key for i in storage.list("locks/")] == [KEY]
    assert not is_locked(storage)
    assert f"took over the stale lock of backup of wms (pid {dead_pid}" in caplog.text


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


def test_stale_after_is_the_callers(storage: MemoryStorage) -> None:
    started = datetime.now(UTC) - timedelta(hours=2)
    plant(storage, host="elsewhere.example", pid=1, started_at=started.isoformat())
    with pytest.raises(LockedError), repository_lock(storage, "wms", "backup"):
        pass
    with repository_lock(storage, "wms", "backup", stale_after=timedelta(hours=1)):
        assert holder(storage)["host"] == socket.gethostname()


@pytest.mark.parametrize(
    "content",
    [b"not json", b"{}", b'{"host": "x"}', b'{"pid": "abc", "started_at": "2024-01-01"}'],
)
def test_unreadable_lock_is_taken_over(storage: MemoryStorage, content: bytes) -> None:
    storage.write(KEY, [content])
    with repository_lock(storage, "wms", "backup"):
        assert holder(storage)["pid"] == os.getpid()
    assert not is_locked(storage)


def _stale_identity(storage: MemoryStorage) -> str:
    with storage.read(KEY) as stream:
        return Holder.parse(stream.read()).identity


def test_a_taker_that_died_midway_leaves_the_next_one_a_rung_up(
    storage: MemoryStorage, dead_pid: int
) -> None:
    plant(storage, pid=dead_pid)
    first_rung = f"{KEY}.takeover-{_stale_identity(storage)}-1"
    plant(storage, first_rung, pid=dead_pid, token="d" * 16, purpose="prune of wms")
    with repository_lock(storage, "wms", "backup"):
        assert holder(storage)["pid"] == os.getpid()
        assert [i.key for i in storage.list("locks/")] == [KEY]


def test_a_live_taker_is_named(storage: MemoryStorage, dead_pid: int) -> None:
    planted = plant(storage, pid=dead_pid)
    first_rung = f"{KEY}.takeover-{_stale_identity(storage)}-1"
    plant(storage, first_rung, token="e" * 16, purpose="prune of wms")
    with pytest.raises(LockedError) as caught, repository_lock(storage, "wms", "backup"):
        pass
    assert "being taken over from a stale lock by prune of wms" in str(caught.value)
    assert holder(storage) == planted
    assert holder(storage, first_rung)["token"] == "e" * 16


# --- races between threads -----------------------------------------------------------------


def race(storage: Storage, contenders: int) -> tuple[list[int], list[str]]:
    """Threads released together each try the lock; a winner keeps it until every other
    contender has tried. (winners, the losers' messages)."""
    start = threading.Barrier(contenders, timeout=60)
    tried = threading.Barrier(contenders, timeout=60)
    won: list[int] = []
    refused: list[str] = []
    failed: list[BaseException] = []

    def contend(number: int) -> None:
        start.wait()
        try:
            with repository_lock(storage, "wms", f"contender {number}"):
                won.append(number)
                tried.wait()
        except LockedError as exc:
            refused.append(str(exc))
            tried.wait()
        except Exception as exc:
            failed.append(exc)
            tried.abort()

    threads = [threading.Thread(target=contend, args=(n,)) for n in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failed == []
    return won, refused


def test_threads_racing_for_a_free_lock_one_wins(storage: MemoryStorage) -> None:
    for _ in range(20):
        won, refused = race(storage, 6)
        assert len(won) == 1
        assert len(refused) == 5
        assert all(f"locked by contender {won[0]}" in message for message in refused), refused
        assert not is_locked(storage)


def test_threads_racing_for_a_stale_lock_one_wins(storage: MemoryStorage, dead_pid: int) -> None:
    for _ in range(20):
        plant(storage, pid=dead_pid)
        won, refused = race(storage, 6)
        assert len(won) == 1, refused
        assert len(refused) == 5
        assert not is_locked(storage)
        assert list(storage.list("locks/")) == []


# --- write, wait, list ---------------------------------------------------------------------


def test_a_store_without_exclusive_create_locks_by_listing(
    listing_only: ListingOnly, storage: MemoryStorage
) -> None:
    assert exclusive_create(listing_only) is None
    with repository_lock(listing_only, "wms", "backup of wms"):
        files = contender_files(storage)
        assert len(files) == 1
        assert holder(storage, files[0])["purpose"] == "backup of wms"
        assert not is_locked(storage)
        assert_refused(listing_only, "wms is locked by backup of wms", "prune")
        assert contender_files(storage) == files  # the refused one withdrew
    assert list(storage.list("")) == []


def test_threads_racing_by_listing_one_wins(
    listing_only: ListingOnly, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lock, "WITHDRAW_SECONDS", 1.0)
    for _ in range(10):
        won, refused = race(listing_only, 4)
        assert len(won) == 1, refused
        assert len(refused) == 3
        assert contender_files(listing_only) == []


def test_a_stale_contender_file_is_removed(
    listing_only: ListingOnly, storage: MemoryStorage, dead_pid: int
) -> None:
    dead = f"{KEY}{lock.CONTENDER}20000101T000000.000000Z-{'a' * 16}"
    plant(storage, dead, pid=dead_pid)
    with repository_lock(listing_only, "wms", "backup"):
        assert dead not in contender_files(storage)
        assert len(contender_files(storage)) == 1


def test_an_earlier_contender_wins(listing_only: ListingOnly, storage: MemoryStorage) -> None:
    earlier = f"{KEY}{lock.CONTENDER}20000101T000000.000000Z-{'a' * 16}"
    plant(storage, earlier, purpose="copy of wms")
    assert_refused(listing_only, "locked by copy of wms", "backup")
    assert contender_files(storage) == [earlier]


def test_a_later_contender_that_does_not_withdraw_has_won_before_us(
    listing_only: ListingOnly, storage: MemoryStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lock, "WITHDRAW_SECONDS", 0.2)
    later = f"{KEY}{lock.CONTENDER}29990101T000000.000000Z-{'b' * 16}"
    plant(storage, later, purpose="prune of wms")
    assert_refused(listing_only, "locked by prune of wms", "backup")
    assert contender_files(storage) == [later]


def test_a_wrapper_gives_the_lock_the_exclusive_create_it_wraps(storage: MemoryStorage) -> None:
    wrapper = Forwarding(storage)
    assert exclusive_create(wrapper) is storage
    assert upload_janitor(Forwarding(MemoryStorage())) is None
    with repository_lock(wrapper, "wms", "backup of wms"):
        assert is_locked(storage)
        assert contender_files(storage) == []
        assert_refused(wrapper, "locked by backup of wms", "prune")
    assert list(storage.list("")) == []


def test_a_store_that_ignores_the_condition_is_detected(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lock, "SETTLE_SECONDS", 0.0)
    ignoring = IgnoresCondition("ignoring")
    with caplog.at_level(logging.WARNING), repository_lock(ignoring, "wms", "backup"):
        assert not is_locked(ignoring)
        assert len(contender_files(ignoring)) == 1
    assert "accepts a second exclusive create" in caplog.text
    assert list(ignoring.list("")) == []


# --- the two protocols see each other ------------------------------------------------------


def test_a_listing_contender_yields_to_a_created_lock(
    listing_only: ListingOnly, storage: MemoryStorage
) -> None:
    with repository_lock(storage, "wms", "backup of wms"):
        assert_refused(listing_only, "locked by backup of wms", "prune")
        assert contender_files(storage) == []


def test_a_created_lock_gives_way_to_a_contender_that_won_first(
    listing_only: ListingOnly, storage: MemoryStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lock, "WITHDRAW_SECONDS", 0.2)
    with repository_lock(listing_only, "wms", "copy of wms"):
        assert_refused(storage, "locked by copy of wms", "backup")
        assert not is_locked(storage)
        assert len(contender_files(storage)) == 1
