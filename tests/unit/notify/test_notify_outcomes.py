"""The events built from jobs' outcomes: what they say, and that they carry no secret."""

from __future__ import annotations

from lifeboat.notify import outcomes
from lifeboat.notify.ping import ping_target


def test_a_drill_event_carries_verdict_rto_and_rpo() -> None:
    event = outcomes.drill_finished(
        "wms", "b1", False, 42.345, 600.0, ["row count of lots differs"]
    )
    assert event.kind == "drill_failed" and event.failed
    assert event.summary == "drill of wms/b1 failed: row count of lots differs"
    assert dict(event.details) == {
        "backup_id": "b1",
        "verdict": "FAIL",
        "rto_seconds": 42.3,
        "rpo_seconds": 600.0,
        "error": "row count of lots differs",
    }
    passed = outcomes.drill_finished("wms", "b2", True, 10.0, None, [])
    assert passed.kind == "drill_passed" and passed.details["error"] is None


def test_an_error_line_loses_its_credentials_and_other_lines() -> None:
    event = outcomes.backup_failed(
        "wms",
        "cannot connect to postgresql://backup:hunter2@db/wms password=hunter3\n  detail line",
    )
    assert event.details["error"] == "cannot connect to postgresql://backup:***@db/wms password=***"
    assert "hunter" not in event.text()


def test_the_job_names_the_incident_of_a_job_failure() -> None:
    failed = outcomes.job_failed("prune", "wms", "storage unreachable")
    assert failed.incident() == "job_failed/prune/wms"
    assert outcomes.job_succeeded("prune", "wms").incident("job_failed") == failed.incident()
    assert outcomes.job_failed("copy", "wms", "x").incident() != failed.incident()


def test_a_prune_event_lists_what_went() -> None:
    event = outcomes.prune_applied("wms", "offsite", ["b1", "b2"], 5, 12)
    assert event.summary == "prune of wms in offsite: 2 backup(s) deleted, 5 kept"
    assert event.details["deleted"] == "b1, b2" and event.details["wal_files_expired"] == 12


def test_ping_targets_keep_a_query_string() -> None:
    assert ping_target("https://hc-ping.com/abc/", "start") == "https://hc-ping.com/abc/start"
    assert ping_target("https://hc-ping.com/abc", "success") == "https://hc-ping.com/abc"
    assert (
        ping_target("https://hc.example/ping/k?rid=1", "fail")
        == "https://hc.example/ping/k/fail?rid=1"
    )
