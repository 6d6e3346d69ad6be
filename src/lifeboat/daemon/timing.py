"""When a scheduled job fires: pure functions of its [schedule.NAME] table and an instant.

Schedules are read in local wall time of the job's time zone and then placed on the real
time line. A wall time the spring change skips fires once, at the moment the clocks jump
(right after the gap); a wall time the autumn change repeats fires once, at its first
occurrence. Every instant returned is timezone-aware UTC."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from lifeboat.config.model import ScheduleConfig
from lifeboat.policy.retention import parse_duration

DAY = timedelta(days=1)
# wall times looked at before a schedule is declared never to fire again (croniter gives
# up on its own for a 30 February; this bounds the others)
_MAX_CANDIDATES = 10_000


def jitter_offset(name: str, jitter: str | None) -> timedelta:
    """The job's fixed delay in [0, jitter), whole seconds: from a hash of its name, so it
    is the same after a restart and on every host, and differs between jobs."""
    if not jitter:
        return timedelta(0)
    span = int(parse_duration(jitter).total_seconds())
    if span <= 0:
        return timedelta(0)
    digest = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")
    return timedelta(seconds=digest % span)


def next_fire(name: str, job: ScheduleConfig, after: datetime) -> datetime:
    """The first fire time of the job strictly after `after` (aware), jitter included."""
    offset = jitter_offset(name, job.jitter)
    zone = ZoneInfo(job.timezone)
    base_after = after.astimezone(UTC) - offset
    start = base_after.astimezone(zone).replace(tzinfo=None)
    for count, wall in enumerate(_wall_times(job, start)):
        instant = placed(wall, zone)
        if instant > base_after:
            return instant + offset
        if count >= _MAX_CANDIDATES:
            break
    raise ValueError(f"schedule {name} never fires after {after.isoformat()}")


def placed(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant (UTC) a naive local wall time names: its first occurrence when the
    autumn change repeats it, the end of the gap when the spring change skips it."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    return _gap_end(wall, zone)


def _gap_end(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant the clocks jumped over `wall`. zoneinfo reads a skipped wall time with
    the offset before the change (fold=0, a later instant) or after it (fold=1, an earlier
    one); the change lies between the two: found by bisection to the second."""
    low = int(wall.replace(tzinfo=zone, fold=1).timestamp())
    high = int(wall.replace(tzinfo=zone, fold=0).timestamp())
    before = datetime.fromtimestamp(low, zone).utcoffset()
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == before:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)


def _wall_times(job: ScheduleConfig, start: datetime) -> Iterator[datetime]:
    """The job's naive local wall times strictly after `start` (naive local), in order."""
    if job.cron:
        times = croniter(job.cron, start)
        while True:
            yield times.get_next(datetime)
    elif job.time_of_day is not None:
        hour, minute = job.time_of_day
        day = start.date()
        while True:
            candidate = datetime.combine(day, time(hour, minute))
            if candidate > start:
                yield candidate
            day += DAY
    else:
        assert job.every is not None  # the config allows exactly one of the three
        yield from _every(parse_duration(job.every), start)


def _every(step: timedelta, start: datetime) -> Iterator[datetime]:
    """Every `step` from local midnight, each day anew (6h: 00:00, 06:00, 12:00, 18:00);
    a step of several days: midnight of every Nth day, counted from 1 January of year 1."""
    day = start.date()
    if step > DAY:
        days = step.days
        while True:
            if day.toordinal() % days == 0:
                midnight = datetime.combine(day, time())
                if midnight > start:
                    yield midnight
            day += DAY
    while True:
        midnight = datetime.combine(day, time())
        # the first multiple of step after start, without walking the day step by step
        done = (start - midnight) // step + 1 if start >= midnight else 0
        candidate = midnight + step * done
        while candidate < midnight + DAY:
            yield candidate
            candidate += step
        day += DAY
