"""policy/recovery.py without I/O: which base backup a recovery starts from, the settings a
target becomes, where each tablespace goes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lifeboat.errors import BackupNotFoundError, UsageError
from lifeboat.policy.recovery import (
    TARGET_SETTINGS,
    RecoveryTarget,
    TargetKind,
    choose_base_backup,
    parse_time,
    tablespace_targets,
)
from lifeboat.repo import layout
from lifeboat.repo.manifest import Manifest

DAY = datetime(2026, 12, 6, tzinfo=UTC)


def backup(
    hour: int,
    *,
    stop_lsn: str | None = None,
    parent: str | None = None,
    logical: bool = False,
    tablespaces: list[dict[str, Any]] | None = None,
) -> Manifest:
    """A committed backup started at `hour` that took ten minutes, as a format-1 manifest
    describes it (physical unless logical)."""
    started = DAY + timedelta(hours=hour)
    document: dict[str, Any] = {
        "format": 1,
        "id": layout.backup_id(started, "0000"),
        "source": "wms",
        "type": "logical" if logical else "physical",
        "started_at": started.isoformat(),
        "finished_at": (started + timedelta(minutes=10)).isoformat(),
        "database": "wms" if logical else "",
        "server": {"version": "17.2", "version_num": 170002, "system_identifier": "1"},
        "tool": {},
        "compression": {"level": 3},
        "encryption": {"method": "age", "recipients": []},
        "objects": [],
    }
    if not logical:
        document["physical"] = {
            "timeline": 1,
            "start_lsn": f"0/{hour:X}000028",
            "stop_lsn": stop_lsn or f"0/{hour:X}000138",
            "start_wal": f"0000000100000000000000{hour:02X}",
            "stop_wal": f"0000000100000000000000{hour:02X}",
            "segment_size": 16 * 1024 * 1024,
            "parent": parent,
            "tablespaces": tablespaces or [],
        }
    return Manifest.model_validate(document)


def at(hour: int, minute: int = 0) -> str:
    return (DAY + timedelta(hours=hour, minutes=minute)).isoformat()


@pytest.fixture
def history() -> list[Manifest]:
    """Physical backups at 01:00, 03:00 and 05:00 (listed out of order), a logical at 06:00."""
    return [backup(5), backup(1), backup(6, logical=True), backup(3)]


def hour_of(manifest: Manifest) -> int:
    return manifest.started_at.hour


@pytest.mark.parametrize(
    "target",
    [
        RecoveryTarget(),
        RecoveryTarget("xid", "1234"),
        RecoveryTarget("name", "before-migration"),
        RecoveryTarget("immediate"),
    ],
)
def test_targets_without_a_position_start_from_the_newest_physical_backup(
    history: list[Manifest], target: RecoveryTarget
) -> None:
    assert hour_of(choose_base_backup(history, target)) == 5


def test_a_time_starts_from_the_newest_backup_finished_by_then(history: list[Manifest]) -> None:
    assert hour_of(choose_base_backup(history, RecoveryTarget("time", at(4)))) == 3
    # finished at 03:10 exactly: it can start a recovery to that moment
    assert hour_of(choose_base_backup(history, RecoveryTarget("time", at(3, 10)))) == 3
    # still running at 03:05: the one before it
    assert hour_of(choose_base_backup(history, RecoveryTarget("time", at(3, 5)))) == 1


def test_an_lsn_starts_from_the_newest_backup_ending_at_or_before_it(
    history: list[Manifest],
) -> None:
    assert hour_of(choose_base_backup(history, RecoveryTarget("lsn", "0/4000000"))) == 3
    assert hour_of(choose_base_backup(history, RecoveryTarget("lsn", "0/3000138"))) == 3
    assert hour_of(choose_base_backup(history, RecoveryTarget("lsn", "0/3000137"))) == 1


def test_an_incremental_backup_is_chosen_like_a_full_one() -> None:
    full, incremental = backup(1), backup(2, parent=layout.backup_id(DAY + timedelta(hours=1)))
    chosen = choose_base_backup([incremental, full], RecoveryTarget())
    assert chosen is incremental and chosen.physical is not None
    assert chosen.physical.incremental


def test_no_suitable_backup_is_a_backup_not_found_error(history: list[Manifest]) -> None:
    with pytest.raises(BackupNotFoundError, match="no physical backup finished before"):
        choose_base_backup(history, RecoveryTarget("time", at(0)))
    with pytest.raises(BackupNotFoundError, match="ending at or before LSN 0/100"):
        choose_base_backup(history, RecoveryTarget("lsn", "0/100"))
    with pytest.raises(BackupNotFoundError, match="no physical backup in the repository"):
        choose_base_backup([backup(6, logical=True)], RecoveryTarget())


EMPTIED = dict.fromkeys(TARGET_SETTINGS, "")


def test_latest_follows_the_newest_timeline_and_sets_no_target() -> None:
    # every target emptied: one left in the restored postgresql.auto.conf would stop it
    assert RecoveryTarget().settings() == {**EMPTIED, "recovery_target_timeline": "latest"}
    assert not RecoveryTarget().has_target


@pytest.mark.parametrize("kind", ["time", "lsn", "xid", "name"])
def test_a_positioned_target_sets_its_setting_and_action(kind: TargetKind) -> None:
    target = RecoveryTarget(kind, "v", action="pause", timeline="2")
    settings = target.settings()
    assert settings == {
        **EMPTIED,
        "recovery_target_timeline": "2",
        f"recovery_target_{kind}": "v",
        "recovery_target_action": "pause",
    }
    # the others emptied before it: PostgreSQL refuses any target setting after a first
    names = list(settings)
    assert all(
        names.index(other) < names.index(f"recovery_target_{kind}")
        for other in EMPTIED
        if other != f"recovery_target_{kind}"
    )
    assert target.has_target


def test_immediate_stops_at_consistency() -> None:
    settings = RecoveryTarget("immediate", action="shutdown").settings()
    assert settings == {
        **EMPTIED,
        "recovery_target_timeline": "latest",
        "recovery_target": "immediate",
        "recovery_target_action": "shutdown",
    }
    assert list(settings).index("recovery_target") > list(settings).index("recovery_target_xid")


def test_a_positioned_target_without_its_value_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="recovery target by xid needs a value"):
        RecoveryTarget("xid").settings()


def test_parse_time_needs_a_time_zone_and_takes_a_space() -> None:
    assert parse_time(" 2026-03-03 14:30:00+01 ") == datetime(2026, 3, 3, 13, 30, tzinfo=UTC)
    with pytest.raises(UsageError, match="needs a time zone"):
        parse_time("2026-03-03 14:30:00")
    with pytest.raises(UsageError, match="is not a time like"):
        parse_time("yesterday")


SPACES = [
    {"oid": 16400, "name": "fast", "location": "/srv/fast", "object": "ts-16400.tar.zst.age"},
    {"oid": 16401, "name": "cold", "location": "/srv/cold", "object": "ts-16401.tar.zst.age"},
]


def test_tablespaces_go_where_mapped_by_name_or_oid_else_where_they_were(
    tmp_path: Path,
) -> None:
    manifest = backup(1, tablespaces=SPACES)
    placed = tablespace_targets(manifest, {"fast": tmp_path / "f", "16401": Path("rel/c")})
    assert [(entry.name, place) for entry, place in placed] == [
        ("fast", tmp_path / "f"),
        ("cold", Path("rel/c").absolute()),
    ]
    assert [(e.name, p) for e, p in tablespace_targets(manifest, {})] == [
        ("fast", Path("/srv/fast")),
        ("cold", Path("/srv/cold")),
    ]


def test_a_map_naming_an_unknown_tablespace_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"'warm', which backup .* \(its tablespaces: fast"):
        tablespace_targets(backup(1, tablespaces=SPACES), {"warm": Path("/x")})
    with pytest.raises(UsageError, match=r"\(its tablespaces: none\)"):
        tablespace_targets(backup(1), {"fast": Path("/x")})
    assert tablespace_targets(backup(1), {}) == []
