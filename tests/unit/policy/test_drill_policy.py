"""Which backups a drill takes, and its verdict from measurements and objectives."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from lifeboat.errors import BackupNotFoundError, UsageError
from lifeboat.policy.drill import (
    Objectives,
    check_reaches,
    pick_backups,
    seconds_text,
    verdict_reasons,
)
from lifeboat.repo.drills import CheckResult, TableComparison
from lifeboat.repo.manifest import Manifest
from tests.unit.backups import T0, physical_manifest

pytestmark = pytest.mark.unit


def logical_manifest(hours: int, *, safety: bool = False) -> Manifest:
    physical = physical_manifest(hours)
    body = physical.model_dump(mode="json")
    body.update(
        kind="postgres-logical",
        id=physical.id.replace(physical.id[-4:], "beef"),
        labels={"kind": "safety"} if safety else {},
        details={"server": body["details"]["server"], "database": "wms"},
    )
    return Manifest.model_validate(body)


BACKUPS = [physical_manifest(h) for h in (1, 25, 49)] + [logical_manifest(h) for h in (2, 26)]


def test_latest_and_oldest_take_one_backup_of_each_type() -> None:
    now = T0 + timedelta(days=3)
    latest = pick_backups(BACKUPS, "latest", within=None, now=now)
    assert [(m.type, m.id) for m in latest] == [
        ("logical", BACKUPS[4].id),
        ("physical", BACKUPS[2].id),
    ]
    oldest = pick_backups(BACKUPS, "oldest", within=None, now=now)
    assert [m.id for m in oldest] == [BACKUPS[3].id, BACKUPS[0].id]


def test_random_picks_among_the_window_only() -> None:
    now = T0 + timedelta(hours=50)
    seen: set[str] = set()
    for seed in range(40):
        chosen = pick_backups(
            BACKUPS, "random", within=timedelta(hours=30), now=now, chooser=random.Random(seed)
        )
        seen.update(m.id for m in chosen)
    # finished within 30 h of now: physical 25 and 49, logical 26
    assert seen == {BACKUPS[1].id, BACKUPS[2].id, BACKUPS[4].id}


def test_safety_backups_are_not_drilled_and_an_empty_choice_says_why() -> None:
    safety = logical_manifest(60, safety=True)
    chosen = pick_backups([*BACKUPS, safety], "latest", within=None, now=T0)
    assert safety.id not in {m.id for m in chosen}
    with pytest.raises(BackupNotFoundError, match="no backup finished in the last 1h to drill"):
        pick_backups(BACKUPS, "latest", within=timedelta(hours=1), now=T0 + timedelta(days=9))


def test_a_drill_within_its_objectives_with_good_evidence_passes() -> None:
    reasons = verdict_reasons(
        problems=[],
        tables=[TableComparison("wms.public.lots", 10, 10)],
        checks=[CheckResult("qc", True, "true", 0.1)],
        rto_seconds=100.0,
        rpo_seconds=50.0,
        objectives=Objectives.parse("4h", "1h"),
    )
    assert reasons == []


def test_every_reason_of_a_failed_drill_is_given() -> None:
    reasons = verdict_reasons(
        problems=["pg_restore failed: boom"],
        tables=[
            TableComparison("wms.public.lots", 10, 9),
            TableComparison("wms.public.x", 3, None),
        ],
        checks=[CheckResult("qc", False, "returned false", 0.1)],
        rto_seconds=3 * 3600 + 61,
        rpo_seconds=7200.0,
        objectives=Objectives.parse("3h", "1h"),
    )
    assert reasons == [
        "pg_restore failed: boom",
        "wms.public.lots: 9 rows, backup has 10",
        "wms.public.x: missing rows, backup has 3",
        "check 'qc' failed: returned false",
        "recovery took 3 h 1 min, over the RTO objective of 3h",
        "2 h of changes would have been lost, over the RPO objective of 1h",
    ]


def test_a_redis_or_files_drill_names_what_its_evidence_counts() -> None:
    from lifeboat.policy.drill import evidence_units

    reasons = verdict_reasons(
        problems=[],
        tables=[TableComparison("db0", 52, 51)],
        checks=[],
        rto_seconds=2.0,
        rpo_seconds=1.0,
        objectives=Objectives(),
        kind="redis",
    )
    assert reasons == ["db0: 51 keys, backup has 52"]
    assert evidence_units("files") == ("paths", "entries")
    assert evidence_units("sqlite") == evidence_units("logical") == ("tables", "rows")


def test_no_objectives_judge_only_the_restore_and_a_restore_that_never_ended_fails() -> None:
    assert (
        verdict_reasons(
            problems=[],
            tables=[],
            checks=[],
            rto_seconds=10**6,
            rpo_seconds=10**6,
            objectives=Objectives(),
        )
        == []
    )
    reasons = verdict_reasons(
        problems=["WAL segment 000000010000000000000003 is missing"],
        tables=[],
        checks=[],
        rto_seconds=None,
        rpo_seconds=None,
        objectives=Objectives.parse("1h", None),
    )
    assert reasons[-1].startswith("no recovery time measured")


def test_seconds_read_like_durations() -> None:
    assert seconds_text(42.26) == "42.3 s"
    assert seconds_text(725) == "12 min 5 s"
    assert seconds_text(3 * 3600 + 120) == "3 h 2 min"
    assert seconds_text(4 * 86400) == "4 d"


def test_a_drill_to_a_time_takes_a_physical_backup_finished_by_then() -> None:
    now = T0 + timedelta(days=3)
    # BACKUPS[1] (25 h) finished 5 minutes after its start: the newest one that can stop at 30 h
    until = T0 + timedelta(hours=30)
    assert pick_backups(BACKUPS, "latest", within=None, now=now, until=until) == [BACKUPS[1]]
    assert pick_backups(BACKUPS, "oldest", within=None, now=now, until=until) == [BACKUPS[0]]
    with pytest.raises(BackupNotFoundError, match="no physical backup finished by 2026"):
        pick_backups(BACKUPS, "latest", within=None, now=now, until=T0)


def test_a_named_backup_must_be_able_to_stop_at_the_drill_s_time() -> None:
    check_reaches(BACKUPS[1], T0 + timedelta(hours=30))
    with pytest.raises(UsageError, match="after --to-time"):
        check_reaches(BACKUPS[1], T0 + timedelta(hours=25, minutes=1))
    with pytest.raises(UsageError, match="is logical"):
        check_reaches(BACKUPS[3], T0 + timedelta(days=2))
