"""A backup whose newest restore drill failed counts for no retention rule, as one whose
newest verification failed; a later passing drill clears it. Drill records outlive prune."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lifeboat.ops.prune import prune
from lifeboat.policy.retention import Policy
from lifeboat.repo.drills import drills_prefix, read_drills, write_drill
from tests.unit.drill_records import make_record
from tests.unit.ops.test_prune import repository_with_backups

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def test_the_newest_failed_drill_makes_the_next_backup_take_its_place() -> None:
    repo, storage, ids = repository_with_backups(3)
    write_drill(storage, make_record(ids[2], NOW - timedelta(days=2), "pass"))
    write_drill(storage, make_record(ids[2], NOW - timedelta(days=1), "fail"))
    report = prune(repo, "wms", Policy(keep_last=1), "UTC", dry_run=True, now=NOW)
    decisions = {d.backup.id: d for d in report.decisions}
    assert not decisions[ids[2]].keep
    assert decisions[ids[2]].explanation == ["its newest restore drill failed: counted by no rule"]
    assert decisions[ids[1]].keep and "newest" in decisions[ids[1]].rules
    summary = {b["id"]: b for b in report.summary()["backups"]}
    assert summary[ids[2]]["drill_failed"] is True
    assert summary[ids[1]]["drill_failed"] is False


def test_a_drill_that_only_missed_its_objectives_leaves_the_backup_counted() -> None:
    # e.g. the oldest yearly backup: restored and checked, but its RPO is years
    repo, storage, ids = repository_with_backups(3)
    missed = make_record(ids[2], NOW - timedelta(days=1), "fail", reasons=["RPO over"])
    missed.restore_proved = True
    write_drill(storage, missed)
    unrestorable = make_record(ids[1], NOW - timedelta(days=1), "fail")
    unrestorable.restore_proved = False
    write_drill(storage, unrestorable)
    report = prune(repo, "wms", Policy(keep_last=2), "UTC", dry_run=True, now=NOW)
    decisions = {d.backup.id: d for d in report.decisions}
    assert decisions[ids[2]].keep and not decisions[ids[2]].backup.drill_failed
    assert not decisions[ids[1]].keep and decisions[ids[1]].backup.drill_failed
    assert decisions[ids[0]].keep


def test_a_later_passing_drill_clears_a_failed_one() -> None:
    repo, storage, ids = repository_with_backups(3)
    write_drill(storage, make_record(ids[2], NOW - timedelta(days=2), "fail"))
    write_drill(storage, make_record(ids[2], NOW - timedelta(days=1), "pass"))
    report = prune(repo, "wms", Policy(keep_last=1), "UTC", dry_run=True, now=NOW)
    assert [d.backup.id for d in report.decisions if d.keep] == [ids[2]]


def test_prune_keeps_the_drill_records_of_the_backups_it_deletes() -> None:
    repo, storage, ids = repository_with_backups(3)
    records = [make_record(backup, NOW - timedelta(days=1), "pass") for backup in ids]
    for record in records:
        write_drill(storage, record)
    report = prune(repo, "wms", Policy(keep_last=1), "UTC", dry_run=False, now=NOW)
    assert report.deleted == ids[:2]
    assert read_drills(storage, "wms") == records
    assert not [k for k in storage.deleted if k.startswith(drills_prefix("wms"))]
