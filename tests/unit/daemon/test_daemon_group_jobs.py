"""A scheduled backup of a [groups] entry: it runs as `backup --group NAME --parallel N`
(every source past a failure, each one's notification told beside the run's own), claims
every member and its repositories against the other jobs, and is exported as that command
line. And a backup job of a source other than PostgreSQL tells its own type."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from lifeboat.config.model import LifeboatConfig, ScheduleConfig
from lifeboat.context import Context
from lifeboat.daemon.attach import job_event, run_events
from lifeboat.daemon.jobs import Outcome, execute
from lifeboat.daemon.overlap import claims_of
from lifeboat.daemon.runner import JobRun
from lifeboat.export.command import ScheduledJob, job_arguments
from lifeboat.metrics.runs import DaemonMetrics
from tests.unit.daemon.test_daemon_jobs import context
from tests.unit.helpers import AgeKey, local_repository

NOW = datetime(2026, 5, 20, 3, 0, tzinfo=UTC)
# nothing listens on port 1: the connection is refused at once
UNREACHABLE = "postgresql://backup@127.0.0.1:1/"


def config(tmp_path: Path, age_key: AgeKey) -> LifeboatConfig:
    return context(
        tmp_path,
        age_key,
        sources={
            "wms": {"dsn": UNREACHABLE + "wms", "repositories": ["r0"]},
            "erp": {"dsn": UNREACHABLE + "erp", "repositories": ["r1"]},
            "cache": {"type": "redis", "url": "redis://127.0.0.1:1", "repositories": ["r0"]},
        },
        groups={"nightly": ["wms", "erp"]},
        schedule={
            "nightly": {"job": "backup", "group": "nightly", "parallel": 2, "every": "1d"},
            "cache": {"job": "backup", "source": "cache", "every": "1h"},
            "wms": {"job": "backup", "source": "wms", "every": "1h"},
            "prune-r1": {"job": "prune", "repository": "r1", "every": "1d"},
        },
    ).config


def job_run(cfg: LifeboatConfig, name: str) -> JobRun:
    return JobRun(name, cfg.schedule[name], NOW, 1, NOW)


def test_a_group_job_backs_up_each_member_past_failures(tmp_path: Path, age_key: AgeKey) -> None:
    cfg = config(tmp_path, age_key)
    for name in ("r0", "r1"):
        local_repository(tmp_path, name)
    ctx = Context(cfg, tmp_path / "lifeboat.toml")
    outcome = execute(ctx, cfg.schedule["nightly"], NOW, tmp_path / "reports")
    assert not outcome.ok
    assert outcome.message.startswith("2 of 2 source(s) failed: wms: cannot reach database")
    assert "erp: cannot reach database" in outcome.message
    # each source's own notification, as `backup SOURCE` sends it, then the run's
    told = run_events(job_run(cfg, "nightly"), outcome)
    assert [(e.kind, e.source, e.job) for e in told] == [
        ("job_failed", "nightly", "nightly"),
        ("backup_failed", "wms", "nightly"),
        ("backup_failed", "erp", "nightly"),
    ]
    assert told[1].details["type"] == "logical"
    # and each source's last run, as `backup SOURCE` leaves it in the metrics
    assert [(s, ok, kind) for s, ok, _, kind in outcome.source_runs] == [
        ("wms", False, "logical"),
        ("erp", False, "logical"),
    ]
    metrics = DaemonMetrics(ctx, clock=lambda: 1000.0)
    metrics.record_job("nightly", "backup", "nightly", "failed", 2.0)
    metrics.record_backups(outcome.source_runs)
    runs = metrics.last_runs.runs()
    assert {key for key, run in runs.items() if not run.success} == {
        ("backup", "nightly", ""),
        ("backup", "wms", "logical"),
        ("backup", "erp", "logical"),
    }


def test_a_group_run_that_succeeds_is_quiet() -> None:
    cfg = ScheduleConfig.model_validate({"job": "backup", "group": "nightly", "every": "1d"})
    told = job_event(JobRun("nightly", cfg, NOW, 1, NOW), Outcome(True, "2 source(s) backed up"))
    assert (told.kind, told.source) == ("job_succeeded", "nightly")


def test_a_redis_backup_job_tells_its_own_type(tmp_path: Path, age_key: AgeKey) -> None:
    cfg = config(tmp_path, age_key)
    told = job_event(job_run(cfg, "cache"), Outcome(False, "cannot reach"), "redis")
    assert told.details["type"] == "redis"


def test_a_group_job_claims_its_members_and_their_repositories(
    tmp_path: Path, age_key: AgeKey
) -> None:
    cfg = config(tmp_path, age_key)
    claims = {name: claims_of(job, cfg) for name, job in cfg.schedule.items()}
    assert claims["nightly"].sources == {"wms", "erp"}
    assert claims["nightly"].shared == {"r0", "r1"}
    # not beside a backup of one of its members, nor a prune of one of their repositories
    assert claims["nightly"].conflicts(claims["wms"])
    assert claims["nightly"].conflicts(claims["prune-r1"])
    assert not claims["nightly"].conflicts(claims["cache"])


def test_a_group_job_is_exported_as_backup_group(tmp_path: Path, age_key: AgeKey) -> None:
    cfg = config(tmp_path, age_key)
    scheduled = ScheduledJob("nightly", cfg.schedule["nightly"])
    assert job_arguments(scheduled) == ["backup", "--group", "nightly", "--parallel", "2"]
    assert scheduled.lock_key == "nightly"


def test_the_schedule_names_a_jobs_group(tmp_path: Path, age_key: AgeKey) -> None:
    from lifeboat.daemon.overview import job_overview

    cfg = config(tmp_path, age_key)
    row = job_overview("nightly", cfg.schedule["nightly"], None, NOW)
    assert (row["job"], row["source"], row["group"]) == ("backup", None, "nightly")
