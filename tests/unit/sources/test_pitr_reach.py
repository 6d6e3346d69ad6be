"""How far the WAL archive takes a recovery, checked before anything is written: the targets
a gap blocks, a replay that stopped short, the plan read from a repository
(sources/postgres/pitr_reach.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lifeboat.errors import UsageError
from lifeboat.pipeline.crypto import Decryptor
from lifeboat.policy.recovery import RecoveryTarget
from lifeboat.postgres import wal
from lifeboat.repo import layout
from lifeboat.repo.manifest import (
    Compression,
    Encryption,
    Manifest,
    PostgresPhysicalDetails,
    Server,
)
from lifeboat.sources.postgres.pitr_reach import Reach, _blocking_segment, plan_reach
from lifeboat.storage.memory import MemoryStorage
from lifeboat.wal.continuity import continuity, single_timeline

SIZE = wal.DEFAULT_SEGMENT_SIZE


def seg(timeline: int, number: int) -> wal.Segment:
    return wal.Segment(timeline, number)


def _found(archived: dict[int, set[int]]) -> Reach:
    return Reach(continuity(archived, single_timeline(1), 2, 3), SIZE, RecoveryTarget())


def test_which_targets_a_gap_blocks() -> None:
    found = _found({1: {2, 3, 4, 5, 7, 8}}).continuity
    latest = RecoveryTarget()
    assert _blocking_segment(found, latest, SIZE) == (seg(1, 6), "the WAL archive has a gap")
    before = RecoveryTarget("lsn", wal.format_lsn(5 * SIZE + 100))
    assert _blocking_segment(found, before, SIZE) is None
    beyond = RecoveryTarget("lsn", wal.format_lsn(7 * SIZE))
    assert _blocking_segment(found, beyond, SIZE) == (
        seg(1, 6),
        f"the archive cannot reach LSN {beyond.value}",
    )
    past_the_end = RecoveryTarget("lsn", wal.format_lsn(12 * SIZE))
    continuous = _found({1: {2, 3, 4, 5}}).continuity
    assert _blocking_segment(continuous, past_the_end, SIZE) == (
        seg(1, 6),
        f"the archive cannot reach LSN {past_the_end.value}",
    )
    # a transaction id or restore point may lie anywhere: the gap counts
    blocked = _blocking_segment(found, RecoveryTarget("xid", "1234"), SIZE)
    assert blocked is not None and blocked[0] == seg(1, 6)
    assert _blocking_segment(found, RecoveryTarget("immediate"), SIZE) is None
    assert _blocking_segment(continuous, RecoveryTarget("name", "x"), SIZE) is None


def test_shortfall_compares_the_replayed_lsn_with_the_last_reachable_segment() -> None:
    reach = _found({1: {2, 3, 4, 5, 6}})
    # a WAL switch record at the end of segment 6 ends where segment 7 starts
    assert reach.shortfall(7 * SIZE) is None
    assert reach.shortfall(6 * SIZE + 4000) is None
    short = reach.shortfall(4 * SIZE + 4000)
    assert short is not None
    assert "000000010000000000000004" in short and "000000010000000000000006" in short
    assert reach.shortfall(None) is None
    # a target the server itself checks is not compared
    named = Reach(reach.continuity, SIZE, RecoveryTarget("name", "x"))
    assert named.shortfall(4 * SIZE) is None


def test_gap_text_and_summary() -> None:
    found = _found({1: {2, 3, 4, 5, 7}}).continuity
    reach = Reach(found, SIZE, RecoveryTarget())
    assert reach.gap_text() == (
        "recovers only up to 000000010000000000000005: segment 000000010000000000000006 is missing"
    )
    assert reach.summary()["gap"]["missing"] == "000000010000000000000006"
    assert reach.summary()["archive_end"] == "000000010000000000000007"
    assert _found({1: {2, 3}}).summary()["gap"] is None


def physical_backup_at(start_wal: str, size: int) -> Manifest:
    when = datetime(2026, 12, 6, tzinfo=UTC)
    return Manifest(
        id="20261206T000000Z",
        source="wms",
        kind="postgres-physical",
        started_at=when,
        finished_at=when,
        tool={},
        compression=Compression(level=3),
        encryption=Encryption(method="age", recipients=[]),
        objects=[],
        details=PostgresPhysicalDetails(
            server=Server(version="17.2", version_num=170002, system_identifier="1"),
            timeline=1,
            start_lsn="0/FC000028",
            stop_lsn="0/FC000138",
            start_wal=start_wal,
            stop_wal=start_wal,
            segment_size=size,
        ),
    )


def archive_of(names: list[str]) -> MemoryStorage:
    storage = MemoryStorage()
    for name in names:
        storage.write(layout.wal_key("wms", name, "ab" * 32, ".age"), [b"x"])
    return storage


def unused(_: str) -> Decryptor:
    raise AssertionError("nothing is read: no history file, no time target")


def test_plan_reach_numbers_archived_segments_with_the_backups_segment_size() -> None:
    """A cluster of 64 MiB segments, its backup just before a log id ends: the archive
    continues it without a gap (...0000003F, then ...0100000000), so the restore goes on."""
    size = 64 << 20
    names = ["00000001000000000000003F", "000000010000000100000000", "000000010000000100000001"]
    storage = archive_of(names)
    manifest = physical_backup_at(names[0], size)
    reach = plan_reach(storage, "wms", manifest, RecoveryTarget("latest"), unused, lambda: "")
    assert reach.continuity.missing is None
    assert reach.summary()["archive_end"] == names[-1]


def test_accept_gap_refuses_a_pause_or_shutdown_it_could_not_honour() -> None:
    """Beyond a gap, --accept-gap recovers to the end of the WAL and promotes there: a
    pause or shutdown asked for at an LSN target would not happen, so it is refused."""
    size = 64 << 20
    storage = archive_of(["00000001000000000000003F", "000000010000000100000001"])
    manifest = physical_backup_at("00000001000000000000003F", size)
    beyond = RecoveryTarget("lsn", "1/8000000", action="pause")
    with pytest.raises(UsageError, match="--target-action pause cannot apply"):
        plan_reach(storage, "wms", manifest, beyond, unused, lambda: "", accept_gap=True)
    promoted = plan_reach(
        storage,
        "wms",
        manifest,
        RecoveryTarget("lsn", "1/8000000"),
        unused,
        lambda: "",
        accept_gap=True,
    )
    assert promoted.target.kind == "latest" and promoted.target.action == "promote"
    assert promoted.gap_text() is not None
