"""A job's timing as cron and as OnCalendar: conversions, time zones, jitter, refusals."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from lifeboat.config.model import ScheduleConfig
from lifeboat.errors import EXIT_USAGE
from lifeboat.export.schedule import (
    NotExportable,
    cron_expression,
    cron_fields,
    fixed_delay_seconds,
    jitter_seconds,
    on_calendar,
)


def job(**timing: Any) -> ScheduleConfig:
    return ScheduleConfig.model_validate({"job": "prune", **timing})


@pytest.mark.parametrize(
    ("cron", "calendar"),
    [
        ("0 * * * *", "*-*-* *:00:00 UTC"),
        ("*/15 * * * *", "*-*-* *:00/15:00 UTC"),
        ("5 2 * * *", "*-*-* 02:05:00 UTC"),
        ("0 4 1 */3 *", "*-01/3-01 04:00:00 UTC"),
        ("30 1 * * 1-5", "Mon..Fri *-*-* 01:30:00 UTC"),
        ("0 6 * * 0", "Sun *-*-* 06:00:00 UTC"),
        ("0 6 * * 7", "Sun *-*-* 06:00:00 UTC"),
        ("0 6 * * 6,0", "Sat,Sun *-*-* 06:00:00 UTC"),
        ("0 6 * * sat-sun", "Sat,Sun *-*-* 06:00:00 UTC"),
        ("0 0,12 1,15 * *", "*-*-01,15 00,12:00:00 UTC"),
        ("10-40/10 8-18 * jan,jul *", "*-01,07-* 08..18:10,20,30,40:00 UTC"),
        ("0 0 * * *", "*-*-* 00:00:00 UTC"),
        ("@daily", "*-*-* 00:00:00 UTC"),
        ("@weekly", "Sun *-*-* 00:00:00 UTC"),
        ("0 0 1 1 *", "*-01-01 00:00:00 UTC"),
        # every weekday given is every day: no weekday part
        ("0 3 * * 0-6", "*-*-* 03:00:00 UTC"),
    ],
)
def test_cron_becomes_the_same_calendar(cron: str, calendar: str) -> None:
    assert on_calendar(job(cron=cron), "schedule.x") == calendar


def test_the_calendar_is_read_in_the_jobs_time_zone() -> None:
    spec = on_calendar(job(cron="0 2 * * *", timezone="Europe/Berlin"), "schedule.x")
    assert spec == "*-*-* 02:00:00 Europe/Berlin"


@pytest.mark.parametrize(
    ("every", "cron"),
    [
        ("1m", "* * * * *"),
        ("15m", "*/15 * * * *"),
        ("60m", "0 * * * *"),
        ("1h", "0 * * * *"),
        ("6h", "0 */6 * * *"),
        ("12h", "0 */12 * * *"),
        ("24h", "0 0 * * *"),
        ("1d", "0 0 * * *"),
    ],
)
def test_every_becomes_a_step_from_midnight(every: str, cron: str) -> None:
    assert cron_expression(job(every=every), "schedule.x") == cron


@pytest.mark.parametrize("every", ["7h", "90m", "45m", "30s", "2d", "1w", "1h30m"])
def test_an_interval_cron_cannot_keep_is_refused(every: str) -> None:
    with pytest.raises(NotExportable, match=r"schedule\.x: every = .* cannot be written") as err:
        cron_expression(job(every=every), "schedule.x")
    assert err.value.exit_code == EXIT_USAGE


@pytest.mark.parametrize(
    ("daily_at", "cron", "calendar"),
    [
        ("02:00", "0 2 * * *", "*-*-* 02:00:00 UTC"),
        ("23:59", "59 23 * * *", "*-*-* 23:59:00 UTC"),
        ("7:05", "5 7 * * *", "*-*-* 07:05:00 UTC"),
    ],
)
def test_daily_at_becomes_one_time_a_day(daily_at: str, cron: str, calendar: str) -> None:
    assert cron_expression(job(daily_at=daily_at), "schedule.x") == cron
    assert on_calendar(job(daily_at=daily_at), "schedule.x") == calendar


@pytest.mark.parametrize("daily_at", ["24:00", "2am", "02:60", "02:00:00"])
def test_a_daily_at_that_is_no_time_is_refused(daily_at: str) -> None:
    # the configuration refuses it on load, before the daemon or an export reads it
    with pytest.raises(ValidationError, match="not a time of day as HH:MM"):
        job(daily_at=daily_at)


def test_both_days_restricted_is_refused_for_systemd_only() -> None:
    # cron runs on the 1st AND on every Monday; OnCalendar would run on Mondays the 1st
    monthly_or_monday = job(cron="0 4 1 * 1")
    with pytest.raises(NotExportable, match=r"schedule\.x: .*both the day of month and the day"):
        on_calendar(monthly_or_monday, "schedule.x")
    # cron and Kubernetes read it as cron does: kept as written
    assert cron_expression(monthly_or_monday, "schedule.x") == "0 4 1 * 1"


@pytest.mark.parametrize(
    ("cron", "named"),
    [
        ("0 0 L * *", "'L'"),
        ("0 0 15W * *", "'W'"),
        ("0 0 * * 5#2", "'#'"),
    ],
)
def test_what_classic_cron_lacks_is_refused_by_name(cron: str, named: str) -> None:
    for convert in (cron_expression, on_calendar):
        with pytest.raises(NotExportable, match=rf"schedule\.x: cron = .* uses {named}"):
            convert(job(cron=cron), "schedule.x")


@pytest.mark.parametrize("cron", ["0 0 * *", "0 0 0 * * *", "0 0 * * * 2027"])
def test_not_five_fields_is_refused(cron: str) -> None:
    with pytest.raises(NotExportable, match="is not a five-field cron expression"):
        cron_fields(cron, "schedule.x")


@pytest.mark.parametrize("cron", ["61 * * * *", "0 25 * * *", "0 0 32 * *", "0 0 * 13 *"])
def test_a_value_out_of_range_is_refused(cron: str) -> None:
    with pytest.raises(NotExportable, match=r"schedule\.x: cron = .* is not valid"):
        cron_fields(cron, "schedule.x")


@pytest.mark.parametrize("cron", ["0 0 * * 5L", "H 0 * * *"])
def test_what_croniter_cannot_read_is_refused_on_load(cron: str) -> None:
    with pytest.raises(ValidationError, match="not a five-field cron expression"):
        job(cron=cron)


def test_an_unknown_time_zone_is_refused_on_load() -> None:
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Olympus'"):
        job(cron="0 0 * * *", timezone="Mars/Olympus")


def test_the_fixed_delay_stays_below_the_jitter_and_is_the_same_each_time() -> None:
    jittered = job(cron="0 * * * *", jitter="5m")
    assert jitter_seconds(jittered) == 300
    delays = {name: fixed_delay_seconds(name, jittered) for name in map(str, range(200))}
    assert all(0 <= delay < 300 for delay in delays.values())
    # a name always gets its delay; different names spread over the window
    assert all(fixed_delay_seconds(n, jittered) == d for n, d in delays.items())
    assert len(set(delays.values())) > 100


def test_no_jitter_no_delay() -> None:
    assert jitter_seconds(job(cron="0 * * * *")) == 0
    assert fixed_delay_seconds("wms", job(cron="0 * * * *")) == 0
