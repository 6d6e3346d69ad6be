"""A scheduled job's timing as the schedulers Lifeboat exports to write it: a cron expression
(crontab, Kubernetes) and a systemd OnCalendar= specification, plus the fixed delay of its
jitter. Pure functions of the job: no clock, no file."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from croniter import CroniterError, croniter

from lifeboat.config.model import CRON_MACROS, ScheduleConfig
from lifeboat.errors import ConfigError
from lifeboat.policy.retention import parse_duration


class NotExportable(ConfigError):
    """A job's schedule that the target scheduler cannot express (exit 2: the config must
    change, or the job be left to the daemon)."""


_NAMES = {
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    "sun", "mon", "tue", "wed", "thu", "fri", "sat",
}  # fmt: skip
# what a classic five-field cron field may hold: numbers, names, * ? / , -
_FIELD = re.compile(r"[0-9A-Za-z*?/,\-]+")
WEEKDAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")
# (lowest, highest) of minute, hour, day of month, month, day of week
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))


@dataclass(frozen=True)
class CronFields:
    """The values of each field of a cron expression; None where every value is allowed."""

    minutes: tuple[int, ...] | None
    hours: tuple[int, ...] | None
    days: tuple[int, ...] | None
    months: tuple[int, ...] | None
    weekdays: tuple[int, ...] | None  # 0 = Sunday


def cron_expression(job: ScheduleConfig, where: str) -> str:
    """The job's timing as a five-field cron expression read in its time zone: cron as
    written, `every` and `daily_at` converted. Refuses what classic cron cannot run."""
    if job.cron is not None:
        text = " ".join(job.cron.split())
        cron_fields(text, where)  # refuses what classic crons do not know
        return text
    if job.time_of_day is not None:
        hour, minute = job.time_of_day
        return f"{minute} {hour} * * *"
    assert job.every is not None
    return _every_as_cron(job.every, where)


def _every_as_cron(every: str, where: str) -> str:
    """An interval counted from midnight: one that divides an hour into whole minutes, or
    a day into whole hours; cron's steps restart each hour and each day, so no other
    interval keeps its length across them."""
    seconds = int(parse_duration(every).total_seconds())
    minutes, rest = divmod(seconds, 60)
    if rest == 0 and 0 < minutes < 60 and 60 % minutes == 0:
        return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
    hours, rest = divmod(seconds, 3600)
    if rest == 0 and 0 < hours <= 24 and 24 % hours == 0:
        if hours == 24:
            return "0 0 * * *"
        return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"
    raise NotExportable(
        f"{where}: every = {every!r} cannot be written as a cron schedule (an interval must "
        "divide an hour in whole minutes or a day in whole hours); give cron = instead"
    )


def cron_fields(expression: str, where: str) -> CronFields:
    """The expanded fields of a classic five-field expression (or an @macro); L, W, #, H
    and a seconds or year field are refused: Vixie cron, cronie and Kubernetes lack them."""
    text = CRON_MACROS.get(expression.strip().lower(), expression)
    parts = text.split()
    if len(parts) != 5:
        raise NotExportable(
            f"{where}: cron = {expression!r} is not a five-field cron expression "
            "(minute hour day-of-month month day-of-week)"
        )
    for part in parts:
        words = re.findall(r"[A-Za-z]+", part)
        unknown = [w for w in words if w.lower() not in _NAMES]
        if not _FIELD.fullmatch(part) or unknown:
            extra = (unknown or [c for c in part if not _FIELD.fullmatch(c)])[0]
            raise NotExportable(
                f"{where}: cron = {expression!r} uses {extra!r}, which classic cron, systemd "
                "and Kubernetes do not all know (no L, W, # or H)"
            )
    try:
        # the second part, the weekday#n of each field, is empty: # is refused above
        expanded, _ = croniter.expand(text)
    except (CroniterError, ValueError) as exc:
        raise NotExportable(f"{where}: cron = {expression!r} is not valid: {exc}") from None
    values = [_values(field, bounds) for field, bounds in zip(expanded, _BOUNDS, strict=True)]
    weekdays = values[4]
    if weekdays is not None:
        weekdays = tuple(sorted({day % 7 for day in weekdays}))
        if len(weekdays) == 7:
            weekdays = None
    return CronFields(values[0], values[1], values[2], values[3], weekdays)


def _values(field: Sequence[object], bounds: tuple[int, int]) -> tuple[int, ...] | None:
    if "*" in field:
        return None
    numbers = tuple(sorted({int(str(v)) for v in field}))
    low, high = bounds
    full = tuple(range(low, high + 1))
    return None if numbers == full else numbers


def on_calendar(job: ScheduleConfig, where: str) -> str:
    """The OnCalendar= specification of the job, in its time zone (systemd reads a zone
    name at the end). systemd ANDs the day of month and the day of week where cron ORs
    them when both are restricted: such an expression is refused, not silently changed."""
    zone = job.timezone  # a zone zoneinfo knows: the configuration checked it
    expression = cron_expression(job, where)
    fields = cron_fields(expression, where)
    if fields.days is not None and fields.weekdays is not None:
        raise NotExportable(
            f"{where}: cron = {expression!r} restricts both the day of month and the day of "
            "week, which cron reads as either and systemd as both; split it into two jobs"
        )
    weekdays = "" if fields.weekdays is None else _weekdays(fields.weekdays) + " "
    date = f"*-{_component(fields.months, 1, 12)}-{_component(fields.days, 1, 31)}"
    time = f"{_component(fields.hours, 0, 23)}:{_component(fields.minutes, 0, 59)}:00"
    return f"{weekdays}{date} {time} {zone}"


def _component(values: tuple[int, ...] | None, low: int, high: int) -> str:
    """One calendar component: * for every value, START/STEP for a step running to the end
    (as */N and A/N in cron), else a list of values and A..B ranges."""
    if values is None:
        return "*"
    if len(values) > 2:
        step = values[1] - values[0]
        if values == tuple(range(values[0], high + 1, step)):
            return f"{values[0]:02d}/{step}"
    return ",".join(
        f"{start:02d}" if start == end else f"{start:02d}..{end:02d}"
        for start, end in _runs(values)
    )


def _weekdays(days: tuple[int, ...]) -> str:
    # systemd's week starts on Monday: count Monday as 0 and Sunday (cron's 0) as 6
    keys = tuple(sorted((day + 6) % 7 for day in days))
    return ",".join(
        _weekday(start) if start == end else f"{_weekday(start)}..{_weekday(end)}"
        for start, end in _runs(keys)
    )


def _weekday(key: int) -> str:
    return WEEKDAYS[(key + 1) % 7]


def _runs(values: tuple[int, ...]) -> list[tuple[int, int]]:
    """Sorted values as (first, last) of each run of consecutive ones; a run of two stays
    two single values (01,02 reads better than 01..02)."""
    runs: list[list[int]] = []
    for value in values:
        if runs and value == runs[-1][1] + 1:
            runs[-1][1] = value
        else:
            runs.append([value, value])
    out: list[tuple[int, int]] = []
    for start, end in runs:
        if end - start == 1:
            out += [(start, start), (end, end)]
        else:
            out.append((start, end))
    return out


def jitter_seconds(job: ScheduleConfig) -> int:
    return int(parse_duration(job.jitter).total_seconds()) if job.jitter else 0


def fixed_delay_seconds(name: str, job: ScheduleConfig) -> int:
    """The job's jitter as one fixed delay, the same at every run and on every export
    (from the job's name), below the jitter: hosts with differently named jobs spread out,
    and one job keeps a regular interval."""
    jitter = jitter_seconds(job)
    if jitter == 0:
        return 0
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big") % jitter
