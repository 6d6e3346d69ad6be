"""What the daemon tells of its runs and of the sources' health: the events, as the
commands of each kind send them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from lifeboat.daemon.attach import health_events, job_event, run_events
from lifeboat.daemon.jobs import Outcome
from lifeboat.daemon.runner import JobRun
from lifeboat.notify.event import Event
from tests.unit.daemon.fakes import job


def run_of(kind: str, source: str | None = "wms") -> JobRun:
    fields: dict[str, Any] = {"job": kind, "cron": "0 * * * *"}
    if source is not None:
        fields["source"] = source
    if kind == "copy":
        fields |= {"repository": "local", "to": "offsite"}
    moment = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
    return JobRun("nightly", job(**fields), moment, 1, moment)


@pytest.mark.parametrize(
    ("kind", "ok", "event"),
    [
        ("backup", True, "backup_succeeded"),
        ("backup", False, "backup_failed"),
        ("drill", True, "drill_passed"),
        ("drill", False, "drill_failed"),
        ("verify", True, "verification_passed"),
        ("verify", False, "verification_failed"),
        ("prune", True, "job_succeeded"),
        ("prune", False, "job_failed"),
        ("copy", False, "job_failed"),
    ],
)
def test_each_kind_of_run_tells_what_its_command_tells(kind: str, ok: bool, event: str) -> None:
    told = job_event(run_of(kind), Outcome(ok, "what happened"))
    assert (told.kind, told.source, told.job) == (event, "wms", "nightly")
    assert "what happened" in told.summary or ok


def test_a_backup_run_tells_what_backup_source_tells_with_what_was_stored() -> None:
    from lifeboat.ops.backup_one import SourceBackup

    summary = {
        "id": "20261207T030000Z-ab12",
        "type": "redis",
        "stored_size": 2048,
        "plain_size": 8192,
        "duration_s": 1.5,
        "repositories": ["local", "offsite"],
    }
    done = SourceBackup("wms", "redis", summary, {})
    told = job_event(run_of("backup"), Outcome(True, "backup done", told=done.event()))
    assert (told.kind, told.source, told.job) == ("backup_succeeded", "wms", "nightly")
    assert told.details["backup_id"] == "20261207T030000Z-ab12"
    assert told.details["stored_bytes"] == 2048
    assert told.details["repositories"] == "local, offsite"
    assert told.details["type"] == "redis"


def test_a_cancelled_backup_is_a_failed_one_naming_why() -> None:
    told = job_event(run_of("backup"), Outcome(False, "cancelled: the daemon stopped", True))
    assert told.kind == "backup_failed"
    assert "cancelled: the daemon stopped" in told.summary


def status(breached: bool, overdue: dict[str, bool], error: str | None = None) -> dict[str, Any]:
    return {
        "source": "wms",
        "rpo": {"breached": breached, "age_s": 7200.0, "objective_s": 3600.0},
        "repositories": [
            {
                "name": "local",
                "error": error,
                "backups": {kind: {"overdue": late} for kind, late in overdue.items()},
            }
        ],
    }


def test_a_healthy_source_tells_nothing() -> None:
    assert health_events(status(False, {"logical": False, "physical": False})) == []


def test_an_rpo_breach_and_each_overdue_backup_type_are_told_apart() -> None:
    told = health_events(status(True, {"logical": True, "physical": True}))
    assert [(e.kind, e.source, e.details.get("type")) for e in told] == [
        ("rpo_breached", "wms", None),
        ("backup_overdue", "wms", "logical"),
        ("backup_overdue", "wms", "physical"),
    ]
    assert told[1].details["repositories"] == "local"
    assert told[0].details["objective_seconds"] == 3600.0
    # each type is its own incident: one's backup does not end the other's lateness
    assert told[1].incident() != told[2].incident()


def test_an_unreadable_repository_is_not_called_overdue() -> None:
    # status names the unreadable repository itself; its stale figures prove nothing
    assert health_events(status(False, {"logical": True}, error="gone")) == []


def test_a_prune_that_deleted_also_tells_prune_applied_under_its_schedule() -> None:
    applied = Event("prune_applied", "wms", "prune", "prune of wms in local: 1 deleted")
    told = run_events(run_of("prune"), Outcome(True, "1 backup(s) deleted", events=(applied,)))
    assert [(e.kind, e.source, e.job) for e in told] == [
        ("job_succeeded", "wms", "nightly"),
        ("prune_applied", "wms", "nightly"),
    ]
