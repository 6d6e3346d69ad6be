"""A scheduled job runs the command's library call against real local repositories and
ends as an Outcome: ok with what it did, or failed with the command's one line."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from lifeboat.config.model import LifeboatConfig, ScheduleConfig
from lifeboat.context import Context
from lifeboat.daemon.jobs import Outcome, execute, previous_quarter
from lifeboat.repo import layout
from tests.unit.backups import commit_physical
from tests.unit.helpers import AgeKey, local_repository

NOW = datetime(2026, 5, 20, 3, 0, tzinfo=UTC)


def context(tmp_path: Path, age_key: AgeKey, **extra: object) -> Context:
    config = LifeboatConfig.model_validate(
        {
            "repositories": {
                "r0": {"url": str(tmp_path / "r0")},
                "r1": {"url": str(tmp_path / "r1")},
            },
            "encryption": {
                "age_recipients": [age_key.public],
                "age_identity_file": str(age_key.identity_file),
            },
            "sources": {"wms": {"type": "postgres", "dsn": "postgresql://db/wms"}},
            **extra,
        }
    )
    return Context(config, tmp_path / "lifeboat.toml")


def run(ctx: Context, reports: Path, **job: object) -> Outcome:
    return execute(ctx, ScheduleConfig.model_validate({**job, "every": "1h"}), NOW, reports)


def test_verify_and_copy_run_the_library_calls(tmp_path: Path, age_key: AgeKey) -> None:
    origin = local_repository(tmp_path, "r0")
    local_repository(tmp_path, "r1")
    # the WAL the test backup needs to be consistent
    origin.storage.write(
        layout.wal_key("wms", "000000010000000000000002", "e" * 64, ".age"), [b"w"]
    )
    commit_physical(origin, 1)
    ctx = context(tmp_path, age_key)
    assert run(ctx, tmp_path, job="verify", source="wms", repository="r0") == Outcome(
        True, "1 backup(s) verified"
    )
    assert run(ctx, tmp_path, job="copy", repository="r0", to="r1") == Outcome(
        True, "1 backup(s) copied"
    )
    assert len(ctx.repository("r1").list_backups("wms")) == 1


def test_a_failing_call_is_its_one_line(tmp_path: Path, age_key: AgeKey) -> None:
    local_repository(tmp_path, "r0")
    ctx = context(tmp_path, age_key)
    outcome = run(ctx, tmp_path, job="prune", source="wms")
    assert not outcome.ok
    assert outcome.message.startswith("no retention policy for source wms: add a [retention]")


def test_report_writes_the_previous_quarter(tmp_path: Path, age_key: AgeKey) -> None:
    local_repository(tmp_path, "r0")
    local_repository(tmp_path, "r1")
    ctx = context(tmp_path, age_key)
    outcome = run(
        ctx, tmp_path / "default", job="report", source="wms", output=str(tmp_path / "out")
    )
    written = tmp_path / "out" / "report-wms-2026-Q1.html"
    assert written.read_text().lstrip().lower().startswith("<!doctype html")
    # no backups in the quarter: the frequency control fails, as `lifeboat report` exits 1
    assert not outcome.ok
    assert outcome.message.startswith(f"report written to {written}; controls not passed: ")


def test_previous_quarter() -> None:
    assert previous_quarter(NOW) == (
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 4, 1, tzinfo=UTC),
    )
    assert previous_quarter(datetime(2027, 2, 1, tzinfo=UTC)) == (
        datetime(2026, 10, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )


def test_a_prune_that_deletes_tells_it_as_the_command_does(tmp_path: Path, age_key: AgeKey) -> None:
    origin = local_repository(tmp_path, "r0")
    origin.storage.write(
        layout.wal_key("wms", "000000010000000000000002", "e" * 64, ".age"), [b"w"]
    )
    older, newer = commit_physical(origin, 1), commit_physical(origin, 2)
    ctx = context(tmp_path, age_key, retention={"keep_last": 1})
    outcome = run(ctx, tmp_path, job="prune", source="wms", repository="r0")
    assert outcome.ok, outcome.message
    assert [b.id for b in origin.list_backups("wms")] == [newer.id]
    assert [(e.kind, e.source, e.details["deleted"]) for e in outcome.events] == [
        ("prune_applied", "wms", str(older.id))
    ]
