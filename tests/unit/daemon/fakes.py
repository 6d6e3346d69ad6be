"""A simulated clock and sleeper for the scheduler's loop: time moves only when the loop
sleeps with no job running, so a week passes in a moment and nothing depends on the
machine's speed."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lifeboat.config.model import LifeboatConfig, ScheduleConfig
from lifeboat.daemon.jobs import Outcome
from lifeboat.daemon.overlap import claims_of
from lifeboat.daemon.runner import JobRun, Runner
from lifeboat.daemon.state import StateFile

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday


class FakeClock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class FakeSleeper:
    """Sleeping moves the clock; with jobs running it waits (for real) until one ends,
    unless `jobs_take_time`, then the clock moves on while they run. Past `until`, the
    runner is asked to stop."""

    def __init__(self, clock: FakeClock, until: datetime, jobs_take_time: bool = False) -> None:
        self.clock = clock
        self.until = until
        self.jobs_take_time = jobs_take_time
        self.runner: Runner | None = None
        self.sleeps = 0

    def wait(self, seconds: float | None, woken: threading.Event, busy: bool) -> None:
        self.sleeps += 1
        if woken.is_set():
            return
        if busy and (seconds is None or not self.jobs_take_time):
            woken.wait()
            return
        assert seconds is not None, "the loop would sleep forever"
        target = self.clock.now + timedelta(seconds=seconds)
        if target > self.until:
            assert self.runner is not None
            self.clock.now = max(self.clock.now, self.until)
            self.runner.request_stop()
            return
        self.clock.now = target


def config_with(schedule: Mapping[str, dict[str, object]], repositories: int = 1) -> LifeboatConfig:
    """Sources wms and crm, repositories r0..rN-1, and the given [schedule.NAME] tables."""
    return LifeboatConfig.model_validate(
        {
            "repositories": {f"r{n}": {"url": f"/backups/r{n}"} for n in range(repositories)},
            "encryption": {"age_recipients": ["age1example"]},
            "sources": {
                "wms": {"type": "postgres", "dsn": "postgresql://db/wms"},
                "crm": {"type": "postgres", "dsn": "postgresql://db/crm"},
            },
            "schedule": dict(schedule),
        }
    )


def make_runner(
    config: LifeboatConfig,
    execute: Callable[[JobRun], Outcome],
    state_path: Path,
    clock: FakeClock,
    sleeper: FakeSleeper,
    grace: timedelta = timedelta(minutes=5),
) -> Runner:
    runner = Runner(
        jobs=config.schedule,
        claims={name: claims_of(job, config) for name, job in config.schedule.items()},
        execute=execute,
        state=StateFile(state_path),
        clock=clock,
        sleeper=sleeper,
        grace=grace,
    )
    sleeper.runner = runner
    return runner


def job(**fields: object) -> ScheduleConfig:
    return ScheduleConfig.model_validate(fields)
