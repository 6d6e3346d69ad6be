"""The compliance report's time grids: the calendar of a period, the GFS retention grid of
the seven years before its end, calendar quarters, and the interval the retention tiers
promise. Pure functions over the report's rows; no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta, tzinfo

from lifeboat.ops.report_model import BackupRow, CalendarDay, CoverageCell, DayOutcome, Tier
from lifeboat.policy.retention import Policy

GRID_YEARS = 7
TIERS: tuple[Tier, ...] = ("daily", "weekly", "monthly", "yearly")
# the smallest tier a policy keeps sets how often backups are expected
INTERVAL_OF_TIER = {
    "hourly": timedelta(hours=1),
    "daily": timedelta(days=1),
    "weekly": timedelta(weeks=1),
    "monthly": timedelta(days=31),
    "yearly": timedelta(days=366),
}
# a gap up to half an interval longer than the interval is a late run, not a missed one:
# a daily backup at 02:00 that once starts at 03:00 and runs for hours is still daily
SLACK = 0.5


def expected_interval(policy: Policy | None) -> tuple[str, timedelta] | None:
    """The smallest tier the policy promises, and its interval; None when it promises none
    (keep_last or keep_within alone ask for no regular backups)."""
    if policy is None:
        return None
    for tier, interval in INTERVAL_OF_TIER.items():
        if policy.tier_count(tier) > 0:
            return tier, interval
    return None


def longest_allowed_gap(interval: timedelta) -> timedelta:
    return interval * (1 + SLACK)


def last_instant(end: datetime) -> datetime:
    """The last moment of a half-open period ending at end."""
    return end - timedelta(microseconds=1)


def days(start: datetime, end: datetime) -> Iterator[date]:
    """Every UTC day the period [start, end) touches."""
    day = start.astimezone(UTC).date()
    last = last_instant(end).astimezone(UTC).date()
    while day <= last:
        yield day
        day += timedelta(days=1)


def calendar(
    start: datetime,
    end: datetime,
    now: datetime,
    backups: Iterable[BackupRow],
    interval: timedelta | None,
    history_start: datetime | None,
) -> list[CalendarDay]:
    """Every day of the period: ok (a backup finished, not failed verification), failed
    (only failed ones), missing (daily or more often expected, none, within the history
    and over), not-expected (otherwise)."""
    finished: dict[date, list[BackupRow]] = {}
    for row in backups:
        finished.setdefault(row.finished_at.astimezone(UTC).date(), []).append(row)
    daily = interval is not None and interval <= timedelta(days=1)
    first = history_start.astimezone(UTC).date() if history_start else None
    today = now.astimezone(UTC).date()
    result = []
    for day in days(start, end):
        rows = finished.get(day, [])
        outcome: DayOutcome
        if rows:
            good = any(row.verification != "failed" for row in rows)
            outcome = "ok" if good else "failed"
        elif daily and first is not None and first <= day < today:
            outcome = "missing"
        else:
            outcome = "not-expected"
        result.append(CalendarDay(day, outcome, [row.id for row in rows]))
    return result


# --- the GFS grid ------------------------------------------------------------------------


def cell_start(tier: Tier, day: date) -> date:
    if tier == "daily":
        return day
    if tier == "weekly":
        return day - timedelta(days=day.weekday())
    if tier == "monthly":
        return day.replace(day=1)
    return day.replace(month=1, day=1)


def cell_label(tier: Tier, start: date) -> str:
    if tier == "daily":
        return start.isoformat()
    if tier == "weekly":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    if tier == "monthly":
        return f"{start:%Y-%m}"
    return f"{start:%Y}"


def _next_cell(tier: Tier, start: date) -> date:
    if tier == "daily":
        return start + timedelta(days=1)
    if tier == "weekly":
        return start + timedelta(weeks=1)
    if tier == "monthly":
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start.replace(year=start.year + 1)


def grid_cells(tier: Tier, last_day: date) -> list[date]:
    """The starts of the tier's cells over the GRID_YEARS years ending on last_day."""
    try:
        first_day = last_day.replace(year=last_day.year - GRID_YEARS)
    except ValueError:  # 29 February, seven years before a leap year's
        first_day = last_day.replace(year=last_day.year - GRID_YEARS, day=28)
    first_day += timedelta(days=1)
    if tier == "yearly":
        first_day = date(last_day.year - GRID_YEARS + 1, 1, 1)
    cells = []
    start = cell_start(tier, first_day)
    while start <= last_day:
        cells.append(start)
        start = _next_cell(tier, start)
    return cells


def coverage(
    end: datetime,
    now: datetime,
    kept: Iterable[BackupRow],
    ever_started: Iterable[datetime],
    policy: Policy | None,
    zone: tzinfo,
) -> list[CoverageCell]:
    """The daily, weekly, monthly and yearly cells of the seven years before end (in the
    policy's time zone). A cell is covered by the newest backup kept now that started in it.
    The policy promises the newest keep_<tier> cells that had a backup, counted back from
    now as prune counts them (for the current period, from its end): a report made after
    its period does not hold the period's daily backups, pruned since as promised, against
    it. No cell before the first backup ever is promised."""
    last_day = last_instant(end).astimezone(zone).date()
    starts = sorted(s.astimezone(zone).date() for s in ever_started if s <= now)
    newest: dict[tuple[Tier, date], BackupRow] = {}
    for row in sorted(kept, key=lambda r: r.started_at):
        for tier in TIERS:
            newest[(tier, cell_start(tier, row.started_at.astimezone(zone).date()))] = row
    cells: list[CoverageCell] = []
    for tier in TIERS:
        with_backups = sorted({cell_start(tier, day) for day in starts}, reverse=True)
        count = policy.tier_count(tier) if policy is not None else 0
        promised = set(with_backups[:count])
        for start in grid_cells(tier, last_day):
            covering = newest.get((tier, start))
            cells.append(
                CoverageCell(
                    tier=tier,
                    label=cell_label(tier, start),
                    start=start,
                    promised=start in promised,
                    backup=covering.id if covering else None,
                    held=covering.held if covering else False,
                )
            )
    return cells


# --- quarters -----------------------------------------------------------------------------


def quarter_of(moment: datetime) -> tuple[str, datetime, datetime]:
    """The calendar quarter (UTC) holding moment: its label and bounds [start, end)."""
    moment = moment.astimezone(UTC)
    first_month = 3 * ((moment.month - 1) // 3) + 1
    start = datetime(moment.year, first_month, 1, tzinfo=UTC)
    end = (
        datetime(moment.year + 1, 1, 1, tzinfo=UTC)
        if first_month == 10
        else datetime(moment.year, first_month + 3, 1, tzinfo=UTC)
    )
    return f"{moment.year}-Q{(first_month - 1) // 3 + 1}", start, end


def quarters(start: datetime, end: datetime) -> list[tuple[str, datetime, datetime]]:
    """The calendar quarters overlapping [start, end), oldest first."""
    found = []
    moment = start
    while moment < end:
        quarter = quarter_of(moment)
        found.append(quarter)
        moment = quarter[2]
    return found
