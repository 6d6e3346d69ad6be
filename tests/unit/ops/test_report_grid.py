"""The compliance report's grids: the GFS cells of seven years and the ones the policy
promises, the calendar of a period, quarters, and the interval the tiers expect."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from lifeboat.ops.report_grid import (
    calendar,
    coverage,
    expected_interval,
    grid_cells,
    quarters,
)
from lifeboat.ops.report_model import BackupRow
from lifeboat.policy.retention import Policy

pytestmark = pytest.mark.unit

DAY = timedelta(days=1)
END = datetime(2026, 4, 1, tzinfo=UTC)


def row(started: datetime, verification: str | None = "ok", held: bool = False) -> BackupRow:
    return BackupRow(
        id=f"{started:%Y%m%dT%H%M%S}.000000Z-ab12",
        kind="logical",
        started_at=started,
        finished_at=started + timedelta(minutes=5),
        stored_bytes=1,
        plain_bytes=1,
        encryption="age",
        recipients=["age:x"],
        repositories=["main"],
        verification=verification,  # type: ignore[arg-type]
        held=held,
    )


def every_day(first: date, last: date) -> list[BackupRow]:
    rows = []
    day = first
    while day <= last:
        rows.append(row(datetime(day.year, day.month, day.day, 2, tzinfo=UTC)))
        day += DAY
    return rows


def test_the_grid_spans_seven_years_in_each_tier() -> None:
    last = date(2026, 3, 31)
    assert len(grid_cells("daily", last)) == (last - date(2019, 3, 31)).days
    assert grid_cells("monthly", last)[0] == date(2019, 4, 1)
    assert len(grid_cells("monthly", last)) == 7 * 12
    assert grid_cells("yearly", last) == [date(y, 1, 1) for y in range(2020, 2027)]
    weeks = grid_cells("weekly", last)
    assert all(start.weekday() == 0 for start in weeks)
    assert weeks[-1] == date(2026, 3, 30)


def test_the_policy_promises_its_newest_cells_with_backups_and_kept_ones_cover_them() -> None:
    backups = every_day(date(2026, 1, 1), date(2026, 3, 31))
    kept = [*backups[-3:], backups[0]]
    cells = coverage(END, END, kept, [b.started_at for b in backups], Policy(keep_daily=3), UTC)
    promised = [c.label for c in cells if c.promised]
    assert promised == ["2026-03-29", "2026-03-30", "2026-03-31"]
    assert all(c.covered for c in cells if c.promised)
    covered_months = [c.label for c in cells if c.tier == "monthly" and c.covered]
    assert covered_months == ["2026-01", "2026-03"]
    january = next(c for c in cells if c.label == "2026-01")
    assert january.backup == backups[0].id


def test_nothing_before_the_first_backup_ever_is_promised() -> None:
    backups = every_day(date(2026, 3, 27), date(2026, 3, 31))
    policy = Policy(keep_daily=30, keep_monthly=12, keep_yearly=7)
    cells = coverage(END, END, backups, [b.started_at for b in backups], policy, UTC)
    assert [c.label for c in cells if c.promised] == [
        "2026-03-27",
        "2026-03-28",
        "2026-03-29",
        "2026-03-30",
        "2026-03-31",
        "2026-03",
        "2026",
    ]


def test_held_backups_are_flagged_and_days_count_in_the_policys_zone() -> None:
    late = row(datetime(2026, 3, 30, 23, 30, tzinfo=UTC), held=True)  # the 31st in Berlin
    cells = coverage(
        END, END, [late], [late.started_at], Policy(keep_daily=1), ZoneInfo("Europe/Berlin")
    )
    (promised,) = [c for c in cells if c.promised]
    assert promised.label == "2026-03-31"
    assert promised.backup == late.id
    assert promised.held


def test_the_calendar_names_ok_failed_missing_and_not_expected_days() -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    end = datetime(2026, 3, 8, tzinfo=UTC)
    backups = [
        row(datetime(2026, 3, 3, 2, tzinfo=UTC)),
        row(datetime(2026, 3, 4, 2, tzinfo=UTC), verification="failed"),
        row(datetime(2026, 3, 6, 2, tzinfo=UTC), verification=None),
    ]
    now = datetime(2026, 3, 7, 12, tzinfo=UTC)
    days = calendar(start, end, now, backups, DAY, backups[0].started_at)
    assert [d.outcome for d in days] == [
        "not-expected",  # before the first backup
        "not-expected",
        "ok",
        "failed",
        "missing",
        "ok",
        "not-expected",  # today: not over yet
    ]
    assert days[2].backups == [backups[0].id]
    weekly = calendar(start, end, now, backups, 7 * DAY, backups[0].started_at)
    assert weekly[4].outcome == "not-expected"


def test_quarters_overlapping_a_period() -> None:
    found = quarters(datetime(2025, 11, 15, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    assert [label for label, _, _ in found] == ["2025-Q4", "2026-Q1"]
    assert found[1][1:] == (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))


def test_the_smallest_promised_tier_sets_the_interval() -> None:
    assert expected_interval(Policy(keep_daily=7, keep_weekly=4)) == ("daily", DAY)
    assert expected_interval(Policy(keep_hourly=24, keep_daily=7)) == ("hourly", DAY / 24)
    assert expected_interval(Policy(keep_weekly=4)) == ("weekly", 7 * DAY)
    assert expected_interval(Policy(keep_last=5)) is None
    assert expected_interval(None) is None


def test_a_report_made_after_its_period_promises_what_prune_keeps_now() -> None:
    """Q1's report made on 10 April, keep_daily 7 and keep_weekly 4: March's daily backups
    are pruned as promised, the weeks still kept cover the end of March."""
    backups = every_day(date(2026, 1, 1), date(2026, 4, 10))
    sundays = [b for b in backups if b.started_at.weekday() == 6]
    kept = [*sundays, *backups[-7:]]
    now = datetime(2026, 4, 10, 12, tzinfo=UTC)
    policy = Policy(keep_daily=7, keep_weekly=4)
    cells = coverage(END, now, kept, [b.started_at for b in backups], policy, UTC)
    promised = [c for c in cells if c.promised]
    # the week of 30 March to 5 April starts in the period: its Sunday backup covers it
    assert [c.label for c in promised] == ["2026-W12", "2026-W13", "2026-W14"]
    assert all(c.covered for c in promised)
