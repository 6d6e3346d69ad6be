"""How often a source's backups are expected, for `status` and the backup-overdue alert:
from its scheduled backup jobs, else from its retention tiers. Pure functions of the
configuration and a moment."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from croniter import croniter

from lifeboat.config.model import LifeboatConfig, ScheduleConfig
from lifeboat.errors import UsageError
from lifeboat.ops.prune import policy_for
from lifeboat.ops.report_grid import expected_interval as report_expected_interval
from lifeboat.policy.retention import parse_duration
from lifeboat.sources.registry import backup_type_of

# a cron schedule's gaps are measured over its next runs (enough to meet weekends and month
# ends), and around each change of its time zone's offset in the coming year
_RUNS_MEASURED = 200
_HORIZON = timedelta(days=366)
_AROUND_CHANGE = timedelta(days=2)


def cron_expression(job: ScheduleConfig) -> str | None:
    """The job's timing as a cron expression: its own, or its daily_at as one; None for
    `every`."""
    if job.cron:
        return job.cron
    if job.time_of_day is not None:
        hour, minute = job.time_of_day
        return f"{minute} {hour} * * *"
    return None


def offset_changes(zone: ZoneInfo, start: datetime, horizon: timedelta) -> list[datetime]:
    """The days (as their start's moment, within a day after the change) on which the
    zone's UTC offset changes between start and start + horizon."""
    days = [start + timedelta(days=n) for n in range(horizon.days + 1)]
    return [
        day
        for before, day in pairwise(days)
        if before.astimezone(zone).utcoffset() != day.astimezone(zone).utcoffset()
    ]


def _longest_between(expression: str, start: datetime, end: datetime) -> timedelta:
    """The longest wait between two runs from start, up to the first run after end (or
    _RUNS_MEASURED runs)."""
    runs = croniter(expression, start)
    previous: datetime = runs.get_next(datetime)
    longest = timedelta(0)
    for _ in range(_RUNS_MEASURED):
        moment: datetime = runs.get_next(datetime)
        # in UTC: between two times of one zone, Python subtracts the wall clocks
        longest = max(longest, moment.astimezone(UTC) - previous.astimezone(UTC))
        if moment > end:
            break
        previous = moment
    return longest


def longest_gap(job: ScheduleConfig, now: datetime) -> timedelta:
    """The longest wait between two runs of the job (before its jitter), in real time: a
    day across a DST change is 23 or 25 hours, a weekday schedule waits over the weekend."""
    expression = cron_expression(job)
    if expression is None:
        return parse_duration(str(job.every))
    zone = ZoneInfo(job.timezone)
    start = now.astimezone(zone)
    windows = [(start, start + _HORIZON)] + [
        (change - _AROUND_CHANGE, change + _AROUND_CHANGE)
        for change in offset_changes(zone, start, _HORIZON)
    ]
    return max(_longest_between(expression, begin, end) for begin, end in windows)


def expected_interval(job: ScheduleConfig, now: datetime) -> timedelta:
    """The longest wait between two of the job's backups, its jitter included."""
    jitter = parse_duration(job.jitter) if job.jitter else timedelta(0)
    return longest_gap(job, now) + jitter


def retention_interval(config: LifeboatConfig, source: str, repository: str) -> timedelta | None:
    """The period of the source's shortest retention tier that keeps anything, as the
    compliance report's frequency control reads it; None when only keep_last or keep_within
    are set (or no policy at all)."""
    try:
        policy, _ = policy_for(config, source, repository)
    except UsageError:  # no retention policy
        return None
    tier = report_expected_interval(policy)
    return None if tier is None else tier[1]


def backup_intervals(
    config: LifeboatConfig, source: str, types_held: Iterable[str], now: datetime
) -> dict[str, timedelta]:
    """How often a backup of each type of the source is expected. A source with scheduled
    backup jobs: each scheduled type, the shortest of its jobs' intervals. Without any:
    the retention policy's shortest tier, for each type the repositories hold (the default
    type when they hold none yet), checked against the source's first repository."""
    source_config = config.sources.get(source)
    if source_config is None:
        return {}
    scheduled: dict[str, timedelta] = {}
    for job in config.schedule.values():
        # its own backup jobs, and those of a group it is in
        if job.job != "backup" or source not in config.job_sources(job):
            continue
        # the type the job's backups are told by: logical by default for PostgreSQL, the
        # source's own for the other kinds
        kind = backup_type_of(source_config, job.type)
        interval = expected_interval(job, now)
        scheduled[kind] = min(interval, scheduled.get(kind, interval))
    if scheduled:
        return scheduled
    first = (source_config.repositories or list(config.repositories))[0]
    period = retention_interval(config, source, first)
    if period is None:
        return {}
    default = backup_type_of(source_config, None)  # when the repositories hold none yet
    return {kind: period for kind in sorted(set(types_held) or {default})}
