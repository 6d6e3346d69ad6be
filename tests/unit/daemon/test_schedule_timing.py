"""Fire times: DST changes both ways in Europe/Berlin and America/New_York, for cron and
daily_at and every; jitter bounds and stability. Pure functions, no clock."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from lifeboat.config.model import ScheduleConfig
from lifeboat.daemon.timing import jitter_offset, next_fire

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"


def fires(job: ScheduleConfig, after: datetime, count: int, name: str = "job") -> list[datetime]:
    found = []
    for _ in range(count):
        after = next_fire(name, job, after)
        found.append(after)
    return found


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def local(moment: datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S%z")


@pytest.mark.parametrize("form", [{"cron": "30 2 * * *"}, {"daily_at": "02:30"}])
def test_a_time_the_spring_change_skips_runs_once_when_the_clocks_jump(
    form: dict[str, str],
) -> None:
    # Berlin, 29 March 2026: 02:00 CET becomes 03:00 CEST, 02:30 does not exist
    job = ScheduleConfig(job="prune", timezone=BERLIN, **form)  # type: ignore[arg-type]
    got = fires(job, utc(2026, 3, 28, 12), 3)
    assert [local(t, BERLIN) for t in got] == [
        "2026-03-29 03:00:00+0200",
        "2026-03-30 02:30:00+0200",
        "2026-03-31 02:30:00+0200",
    ]


def test_several_skipped_times_run_once_together() -> None:
    job = ScheduleConfig(job="prune", cron="*/15 2 * * *", timezone=BERLIN)
    got = fires(job, utc(2026, 3, 28, 23), 2)
    assert got == [utc(2026, 3, 29, 1), utc(2026, 3, 30, 0)]


@pytest.mark.parametrize("form", [{"cron": "30 2 * * *"}, {"daily_at": "02:30"}])
def test_a_time_the_autumn_change_repeats_runs_once(form: dict[str, str]) -> None:
    # Berlin, 25 October 2026: 03:00 CEST becomes 02:00 CET, 02:30 happens twice
    job = ScheduleConfig(job="prune", timezone=BERLIN, **form)  # type: ignore[arg-type]
    got = fires(job, utc(2026, 10, 24, 12), 2)
    assert [local(t, BERLIN) for t in got] == [
        "2026-10-25 02:30:00+0200",
        "2026-10-26 02:30:00+0100",
    ]


def test_an_hourly_cron_over_the_autumn_change_never_runs_a_wall_time_twice() -> None:
    job = ScheduleConfig(job="prune", cron="0 * * * *", timezone=BERLIN)
    got = fires(job, utc(2026, 10, 24, 22), 6)
    walls = [t.astimezone(ZoneInfo(BERLIN)).strftime("%H:%M") for t in got]
    assert walls == ["01:00", "02:00", "03:00", "04:00", "05:00", "06:00"]
    assert got == sorted(set(got))


@pytest.mark.parametrize("form", [{"cron": "30 2 * * *"}, {"daily_at": "02:30"}])
def test_new_york_both_ways(form: dict[str, str]) -> None:
    job = ScheduleConfig(job="backup", source="wms", timezone=NEW_YORK, **form)  # type: ignore[arg-type]
    # 8 March 2026: 02:00 EST becomes 03:00 EDT
    spring = fires(job, utc(2026, 3, 7, 12), 2)
    assert [local(t, NEW_YORK) for t in spring] == [
        "2026-03-08 03:00:00-0400",
        "2026-03-09 02:30:00-0400",
    ]
    # 1 November 2026: 02:00 EDT becomes 01:00 EST; 02:30 happens once, in EST
    autumn = fires(job, utc(2026, 10, 31, 12), 2)
    assert [local(t, NEW_YORK) for t in autumn] == [
        "2026-11-01 02:30:00-0500",
        "2026-11-02 02:30:00-0500",
    ]


def test_a_repeated_new_york_time_runs_at_its_first_occurrence() -> None:
    job = ScheduleConfig(job="prune", daily_at="01:30", timezone=NEW_YORK)
    got = fires(job, utc(2026, 10, 31, 12), 2)
    assert got == [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]


def test_every_counts_from_local_midnight_across_the_change() -> None:
    job = ScheduleConfig(job="prune", every="6h", timezone=NEW_YORK)
    got = fires(job, utc(2026, 3, 8, 4), 5)
    assert [local(t, NEW_YORK) for t in got] == [
        "2026-03-08 00:00:00-0500",
        "2026-03-08 06:00:00-0400",
        "2026-03-08 12:00:00-0400",
        "2026-03-08 18:00:00-0400",
        "2026-03-09 00:00:00-0400",
    ]


def test_every_in_seconds_and_in_days() -> None:
    seconds = ScheduleConfig(job="prune", every="2s")
    assert fires(seconds, utc(2026, 1, 1, 0, 0, 1), 2) == [
        utc(2026, 1, 1, 0, 0, 2),
        utc(2026, 1, 1, 0, 0, 4),
    ]
    days = ScheduleConfig(job="prune", every="3d")
    got = fires(days, utc(2026, 1, 1), 3)
    assert [b - a for a, b in itertools.pairwise(got)] == [timedelta(days=3)] * 2
    assert all(t.time().isoformat() == "00:00:00" for t in got)


def test_the_next_fire_is_strictly_after_the_instant() -> None:
    job = ScheduleConfig(job="prune", cron="0 * * * *")
    assert next_fire("job", job, utc(2026, 1, 1, 5)) == utc(2026, 1, 1, 6)
    assert next_fire("job", job, utc(2026, 1, 1, 4, 59, 59)) == utc(2026, 1, 1, 5)


def test_jitter_is_bounded_stable_and_differs_between_jobs() -> None:
    names = [f"job-{n}" for n in range(300)]
    offsets = [jitter_offset(name, "5m") for name in names]
    assert all(timedelta(0) <= o < timedelta(minutes=5) for o in offsets)
    assert offsets == [jitter_offset(name, "5m") for name in names]
    # 300 names in 300 seconds: about 190 distinct, as birthdays go
    assert len(set(offsets)) > 150
    assert jitter_offset("job-1", None) == timedelta(0)


def test_jitter_delays_every_fire_by_the_same_offset() -> None:
    job = ScheduleConfig(job="prune", cron="0 * * * *", jitter="10m")
    offset = jitter_offset("wms-hourly", "10m")
    assert offset > timedelta(0)
    # midnight's run is still ahead at midnight: it fires `offset` later
    got = fires(job, utc(2026, 1, 1), 3, name="wms-hourly")
    assert got == [utc(2026, 1, 1, hour) + offset for hour in (0, 1, 2)]
    assert next_fire("wms-hourly", job, got[0] - timedelta(seconds=1)) == got[0]
