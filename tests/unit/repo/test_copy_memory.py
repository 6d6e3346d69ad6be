"""`lifeboat copy` between two memory repositories: what goes, in which order, what is
checked on the way, and what is reported instead of copied."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lifeboat.errors import IntegrityError, LifeboatError
from lifeboat.repo import layout
from lifeboat.repo.catalog import Repository
from lifeboat.repo.copy import CopyConflictError, copy_repository, raise_conflicts, sources_to_copy
from lifeboat.repo.records import hold_key, write_record
from lifeboat.storage.memory import MemoryStorage
from tests.unit.backups import T0, commit_physical

SEGMENT = "000000010000000000000002"
WAL_KEY = layout.wal_key("wms", SEGMENT, "e" * 64, ".zst.age")


def memory_repository(name: str) -> Repository:
    repo = Repository(name, MemoryStorage(name))
    repo.init()
    return repo


@pytest.fixture
def origin() -> Repository:
    return memory_repository("primary")


@pytest.fixture
def target() -> Repository:
    return memory_repository("dr")


def objects(repo: Repository, prefix: str) -> dict[str, bytes]:
    storage = repo.storage
    assert isinstance(storage, MemoryStorage)
    return {key: data for key, (data, _) in storage.objects.items() if key.startswith(prefix)}


def hold(repo: Repository, backup: str) -> str:
    return write_record(
        repo.storage, hold_key("wms", backup, T0, "hold"), {"action": "hold", "reason": "audit"}
    )


def test_everything_the_target_lacks_is_copied_once(origin: Repository, target: Repository) -> None:
    full = commit_physical(origin, 1)
    incremental = commit_physical(origin, 2, full)
    origin.storage.write(WAL_KEY, [b"segment"])
    held = hold(origin, full.id)

    report = copy_repository(origin, target, ["wms"])[0]
    # oldest first: an incremental's parent is committed in the target before it
    assert report.backups_copied == [full.id, incremental.id]
    assert (report.wal_copied, report.hold_records_copied) == (1, 1)
    assert objects(target, "wms/") == objects(origin, "wms/")
    assert [m.id for m in target.list_backups("wms")] == [full.id, incremental.id]
    assert held in objects(target, "wms/holds/")

    again = copy_repository(origin, target, ["wms"])[0]
    assert again.backups_copied == [] and again.bytes_copied == 0
    assert (again.backups_present, again.wal_present, again.wal_copied) == (2, 1, 0)
    raise_conflicts([report, again])  # nothing to report


def test_another_backup_under_the_same_id_is_a_conflict_with_its_incrementals(
    origin: Repository, target: Repository
) -> None:
    full = commit_physical(origin, 1)
    incremental = commit_physical(origin, 2, full)
    hold(origin, incremental.id)
    unrelated = commit_physical(origin, 3)
    # the target holds another backup under the full one's id
    theirs = full.model_copy(update={"finished_at": full.finished_at + timedelta(seconds=1)})
    target.save_manifest(theirs)

    report = copy_repository(origin, target, ["wms"])[0]
    assert report.backups_copied == [unrelated.id]
    assert "holds a different backup under the same id" in report.conflicts[full.id]
    assert report.conflicts[incremental.id] == f"it builds on {full.id}, which is not copied either"
    assert objects(target, "wms/holds/") == {}  # the left-out backup's hold stays behind
    assert target.load_manifest("wms", full.id) == theirs
    with pytest.raises(
        CopyConflictError, match=r"2 backup\(s\) not copied \(everything else was\)"
    ):
        raise_conflicts([report])


def test_an_object_that_does_not_match_its_manifest_is_not_committed(
    origin: Repository, target: Repository
) -> None:
    damaged = commit_physical(origin, 1)
    key = layout.object_key("wms", damaged.id, damaged.objects[0].name)
    data = objects(origin, key)[key]
    origin.storage.write(key, [bytes([data[0] ^ 1]) + data[1:]])  # same size, other bytes

    with pytest.raises(IntegrityError, match="does not match its manifest"):
        copy_repository(origin, target, ["wms"])
    assert target.list_backups("wms") == []
    assert objects(target, "wms/") == {}


def test_wal_of_another_size_is_copied_again_and_writes_in_progress_are_not(
    origin: Repository, target: Repository
) -> None:
    origin.storage.write(WAL_KEY, [b"the whole segment"])
    target.storage.write(WAL_KEY, [b"cut short"])  # a write of an older version, interrupted
    origin.storage.write(f"wms/wal/0000000100000000/.{SEGMENT}.tmp", [b"being written"])

    report = copy_repository(origin, target, ["wms"])[0]
    assert report.wal_copied == 1
    assert objects(target, "wms/") == {WAL_KEY: b"the whole segment"}


def test_a_repository_is_not_copied_into_itself(origin: Repository) -> None:
    with pytest.raises(LifeboatError, match="are the same repository"):
        copy_repository(origin, origin, ["wms"])


def test_the_sources_copied_are_those_with_backups_or_wal(origin: Repository) -> None:
    commit_physical(origin, 1, source="erp")
    origin.storage.write(WAL_KEY, [b"segment"])  # wms: archived WAL, no backup yet
    assert sources_to_copy(origin, ["wms", "crm"], None) == ["erp", "wms"]
    assert sources_to_copy(origin, ["wms", "crm"], "crm") == ["crm"]
