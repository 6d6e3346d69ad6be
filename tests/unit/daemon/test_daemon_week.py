"""A week in compressed time through the real runner and its threads: 1,008 runs of three
jobs against a repository in memory, each run exactly once at its time, and no file
descriptor left behind. (bench/bench_daemon_soak.py runs the real verify and prune jobs
for the week and measures memory.)"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from lifeboat.daemon.jobs import Outcome
from lifeboat.daemon.runner import JobRun
from lifeboat.storage.memory import MemoryStorage
from tests.unit.backups import commit_physical
from tests.unit.helpers import initialised

from .fakes import START, FakeClock, FakeSleeper, config_with, make_runner


def test_a_week_of_runs_each_once_at_its_time(tmp_path: Path) -> None:
    config = config_with(
        {
            "backup": {"job": "backup", "source": "wms", "cron": "0 * * * *"},
            "verify": {"job": "verify", "source": "wms", "every": "15m"},
            "crm": {"job": "backup", "source": "crm", "daily_at": "02:00", "jitter": "1h"},
        }
    )
    repository = initialised("memory", MemoryStorage())
    clock = FakeClock()
    runs: list[tuple[str, datetime, datetime]] = []
    backups = iter(range(10_000))

    def run_job(run: JobRun) -> Outcome:
        runs.append((run.name, run.fire, run.started))
        if run.name == "backup":
            commit_physical(repository, next(backups))
        else:
            repository.list_backups("crm")  # a read, of a listing that stays small
        return Outcome(True, "done")

    sleeper = FakeSleeper(clock, until=START + timedelta(days=7))
    runner = make_runner(config, run_job, tmp_path / "state.json", clock, sleeper)
    fds_before = len(os.listdir("/proc/self/fd"))
    assert runner.run() == 0
    assert len(os.listdir("/proc/self/fd")) <= fds_before

    hours = [START + timedelta(hours=h) for h in range(1, 7 * 24 + 1)]
    quarters = [START + timedelta(minutes=15 * q) for q in range(1, 7 * 24 * 4 + 1)]
    crm = [run for run in runs if run[0] == "crm"]
    assert [(name, fire) for name, fire, _ in runs if name == "backup"] == [
        ("backup", hour) for hour in hours
    ]
    # verify waits while the hourly backup of its source runs: late by nothing (the
    # simulated jobs take no time), never skipped, never twice
    assert [fire for name, fire, _ in runs if name == "verify"] == quarters
    assert len(crm) == 7
    assert len({fire.date() for _, fire, _ in crm}) == 7
    assert all(started >= fire for _, fire, started in runs)
    assert len(runs) == 168 + 672 + 7
    assert len(repository.list_backups("wms")) == 168
