"""What `lifeboat schedule` shows: each job's next run, in its time zone and in UTC, and
how its last run went, from the configuration and the daemon's state file."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from lifeboat.config.model import ScheduleConfig
from lifeboat.daemon.state import JobRecord
from lifeboat.daemon.timing import jitter_offset, next_fire


def timing_text(job: ScheduleConfig) -> str:
    if job.cron:
        return f"cron {job.cron}"
    if job.daily_at:
        return f"daily at {job.daily_at}"
    return f"every {job.every}"


def job_overview(
    name: str, job: ScheduleConfig, record: JobRecord | None, now: datetime
) -> dict[str, Any]:
    """One job's row. Next run as the daemon decides it (Runner.due): a pending retry, else
    the first fire after its last start, or after the daemon first saw it (when that
    passed: now, the daemon catches it up); a job the daemon never saw: from now."""
    if record is None:
        upcoming = next_fire(name, job, now)
    elif record.retry_at is not None:
        upcoming = record.retry_at
    else:
        upcoming = next_fire(name, job, record.last_started or record.since)
    overdue = upcoming <= now
    local = upcoming.astimezone(ZoneInfo(job.timezone))
    return {
        "name": name,
        "job": job.job,
        "source": job.source,
        "group": job.group,
        "schedule": timing_text(job),
        "timezone": job.timezone,
        "jitter_seconds": int(jitter_offset(name, job.jitter).total_seconds()),
        "next_run": local.isoformat(),
        "next_run_utc": upcoming.isoformat(),
        "catching_up": overdue,
        "last_started": _moment(record.last_started if record else None),
        "last_finished": _moment(record.last_finished if record else None),
        "last_result": record.last_result if record else None,
        "last_error": record.last_error if record else None,
    }


def _moment(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
