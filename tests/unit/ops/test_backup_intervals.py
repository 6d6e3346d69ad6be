"""How often a backup is expected: the longest wait of its schedule in real time (weekends,
DST changes, jitter), else the retention policy's shortest tier."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lifeboat.config.model import LifeboatConfig, ScheduleConfig
from lifeboat.ops.backup_intervals import backup_intervals, expected_interval

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def job(**timing: Any) -> ScheduleConfig:
    return ScheduleConfig.model_validate({"source": "wms", "job": "backup", **timing})


def config(schedule: dict[str, Any], retention: dict[str, Any] | None = None) -> LifeboatConfig:
    body: dict[str, Any] = {
        "repositories": {"main": {"url": "/srv/backups"}},
        "encryption": {"age_recipients": ["age1example"]},
        "sources": {"wms": {"dsn": "dbname=wms"}},
        "schedule": schedule,
    }
    if retention is not None:
        body["retention"] = retention
    return LifeboatConfig.model_validate(body)


@pytest.mark.parametrize(
    ("timing", "expected"),
    [
        ({"cron": "0 * * * *"}, timedelta(hours=1)),
        # Friday 02:00 to Monday 02:00
        ({"cron": "0 2 * * 1-5"}, timedelta(days=3)),
        ({"every": "6h", "jitter": "5m"}, timedelta(hours=6, minutes=5)),
        # the night the clocks go back in October lasts an hour longer
        ({"daily_at": "03:00", "timezone": "Europe/Berlin"}, timedelta(hours=25)),
        ({"daily_at": "03:00"}, timedelta(days=1)),
        # the 31st: months without one are skipped (31 March to 31 May)
        ({"cron": "0 0 31 * *"}, timedelta(days=61)),
    ],
)
def test_the_longest_wait_of_a_schedule(timing: dict[str, Any], expected: timedelta) -> None:
    assert expected_interval(job(**timing), NOW) == expected


def test_the_shortest_scheduled_job_of_each_type_sets_the_interval() -> None:
    schedule = {
        "hourly": {"source": "wms", "job": "backup", "cron": "0 * * * *"},
        "daily": {"source": "wms", "job": "backup", "daily_at": "02:00"},
        "weekly": {"source": "wms", "job": "backup", "type": "physical", "cron": "0 3 * * 0"},
        "drill": {"source": "wms", "job": "drill", "cron": "0 4 1 * *"},
    }
    assert backup_intervals(config(schedule), "wms", {"logical"}, NOW) == {
        "logical": timedelta(hours=1),
        "physical": timedelta(weeks=1),
    }


def test_without_a_schedule_the_shortest_retention_tier_counts_for_each_type_held() -> None:
    retention = {"keep_last": 2, "keep_weekly": 4, "keep_monthly": 12}
    found = backup_intervals(config({}, retention), "wms", {"logical", "physical"}, NOW)
    assert found == {"logical": timedelta(weeks=1), "physical": timedelta(weeks=1)}
    # nothing held yet: the type `lifeboat backup` takes by default
    assert backup_intervals(config({}, retention), "wms", set(), NOW) == {
        "logical": timedelta(weeks=1)
    }


def test_nothing_is_expected_without_a_schedule_or_a_tier() -> None:
    assert backup_intervals(config({}), "wms", {"logical"}, NOW) == {}
    assert backup_intervals(config({}, {"keep_last": 3}), "wms", {"logical"}, NOW) == {}
