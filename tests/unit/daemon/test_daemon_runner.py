"""The scheduler's loop over a simulated clock: catch-up once, retries with backoff, no two
jobs of a source at once, prune alone per repository, the grace period and cancellation,
timeouts, the state file. Jobs run in real threads; no test sleeps to wait."""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from lifeboat.daemon.jobs import Outcome
from lifeboat.daemon.runner import JobRun
from lifeboat.daemon.state import JobRecord, StateFile

from .fakes import START, FakeClock, FakeSleeper, config_with, make_runner

HOURLY = {"cron": "0 * * * *"}


class Recorder:
    """An execute function noting (job, clock time) of every run; fails the jobs named."""

    def __init__(self, clock: FakeClock, failing: set[str] | None = None) -> None:
        self.clock = clock
        self.failing = failing or set()
        self.runs: list[tuple[str, datetime]] = []
        self.lock = threading.Lock()

    def __call__(self, run: JobRun) -> Outcome:
        with self.lock:
            self.runs.append((run.name, self.clock()))
        if run.name in self.failing:
            return Outcome(False, "the database is down")
        return Outcome(True, "done")

    def times(self, name: str) -> list[datetime]:
        return [when for job, when in self.runs if job == name]


def test_a_run_missed_while_the_daemon_was_down_is_caught_up_once(tmp_path: Path) -> None:
    config = config_with(
        {
            "hourly": {"job": "backup", "source": "wms", **HOURLY},
            "new": {"job": "backup", "source": "crm", **HOURLY},
        }
    )
    state = StateFile(tmp_path / "state.json")
    # down for three days: 72 hourly runs missed
    state.records["hourly"] = JobRecord(
        since=START - timedelta(days=10), last_started=START - timedelta(days=3)
    )
    state.save()
    clock = FakeClock(START + timedelta(minutes=7))
    recorder = Recorder(clock)
    sleeper = FakeSleeper(clock, until=START + timedelta(hours=2, minutes=30))
    assert make_runner(config, recorder, state.path, clock, sleeper).run() == 0
    assert recorder.times("hourly") == [
        START + timedelta(minutes=7),  # the catch-up, at once
        START + timedelta(hours=1),
        START + timedelta(hours=2),
    ]
    # a job the daemon never ran has nothing to catch up: it starts at its next time
    assert recorder.times("new") == [START + timedelta(hours=1), START + timedelta(hours=2)]


def test_a_failed_run_is_retried_with_doubling_backoff_then_given_up(tmp_path: Path) -> None:
    config = config_with(
        {
            "broken": {
                "job": "backup",
                "source": "wms",
                "retries": 3,
                "retry_backoff": "1m",
                **HOURLY,
            }
        }
    )
    clock = FakeClock()
    recorder = Recorder(clock, failing={"broken"})
    sleeper = FakeSleeper(clock, until=START + timedelta(hours=1, minutes=30))
    runner = make_runner(config, recorder, tmp_path / "state.json", clock, sleeper)
    assert runner.run() == 0
    hour = START + timedelta(hours=1)
    assert recorder.times("broken") == [hour + timedelta(minutes=m) for m in (0, 1, 3, 7)]
    record = runner.state.records["broken"]
    assert (record.last_result, record.last_error) == ("failed", "the database is down")
    assert record.retry_at is None and record.failures == 0


def test_a_retry_that_succeeds_ends_the_retries(tmp_path: Path) -> None:
    config = config_with({"flaky": {"job": "verify", "source": "wms", **HOURLY}})
    clock = FakeClock()
    calls: list[datetime] = []

    def fails_once(run: JobRun) -> Outcome:
        calls.append(clock())
        return Outcome(len(calls) > 1, "ok" if len(calls) > 1 else "timeout")

    sleeper = FakeSleeper(clock, until=START + timedelta(hours=1, minutes=30))
    runner = make_runner(config, fails_once, tmp_path / "state.json", clock, sleeper)
    runner.run()
    hour = START + timedelta(hours=1)
    assert calls == [hour, hour + timedelta(minutes=1)]
    assert runner.state.records["flaky"].last_result == "ok"


class Overlap:
    """An execute function counting the jobs running at once per key (the job's source or
    repository); each job stays a moment, so that wrongly overlapping ones would meet."""

    def __init__(self, key_of: dict[str, str]) -> None:
        self.key_of = key_of
        self.active: collections.Counter[str] = collections.Counter()
        self.most: collections.Counter[str] = collections.Counter()
        self.runs: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()

    def __call__(self, run: JobRun) -> Outcome:
        key = self.key_of[run.name]
        with self.lock:
            self.active[key] += 1
            self.most[key] = max(self.most[key], self.active[key])
            self.runs[run.name] += 1
        threading.Event().wait(0.02)  # holds the job open, waits for nothing
        with self.lock:
            self.active[key] -= 1
        return Outcome(True, "done")


def test_two_jobs_of_one_source_never_run_at_once_and_none_is_dropped(tmp_path: Path) -> None:
    config = config_with(
        {
            "backup": {"job": "backup", "source": "wms", **HOURLY},
            "verify": {"job": "verify", "source": "wms", **HOURLY},
            "drill": {"job": "drill", "source": "wms", **HOURLY},
        }
    )
    clock = FakeClock()
    overlap = Overlap({"backup": "wms", "verify": "wms", "drill": "wms"})
    sleeper = FakeSleeper(clock, until=START + timedelta(hours=5, minutes=30))
    make_runner(config, overlap, tmp_path / "state.json", clock, sleeper).run()
    assert overlap.most["wms"] == 1
    assert overlap.runs == {"backup": 5, "verify": 5, "drill": 5}


def test_jobs_of_different_sources_run_together(tmp_path: Path) -> None:
    config = config_with(
        {
            "wms": {"job": "backup", "source": "wms", **HOURLY},
            "crm": {"job": "backup", "source": "crm", **HOURLY},
        }
    )
    clock = FakeClock()
    meeting = threading.Barrier(2, timeout=30)

    def meet(run: JobRun) -> Outcome:
        meeting.wait()  # passes only when both run at the same time
        return Outcome(True, "met")

    sleeper = FakeSleeper(clock, until=START + timedelta(hours=1, minutes=30))
    runner = make_runner(config, meet, tmp_path / "state.json", clock, sleeper)
    runner.run()
    assert {r.last_result for r in runner.state.records.values()} == {"ok"}


def test_prune_has_its_repository_to_itself(tmp_path: Path) -> None:
    config = config_with(
        {
            "prune": {"job": "prune", "repository": "r0", **HOURLY},
            "wms": {"job": "backup", "source": "wms", **HOURLY},
            "crm": {"job": "backup", "source": "crm", **HOURLY},
            "copy": {"job": "copy", "repository": "r0", "to": "r1", **HOURLY},
        },
        repositories=2,
    )
    clock = FakeClock()
    # every job writes r0: prune and copy must each have it alone
    overlap = Overlap({"prune": "r0-alone", "copy": "r0-alone", "wms": "r0", "crm": "r0"})
    beside_alone: list[str] = []
    original = overlap.__call__

    def execute(run: JobRun) -> Outcome:
        with overlap.lock:
            if overlap.active["r0-alone"] or (
                run.name in ("prune", "copy") and overlap.active["r0"]
            ):
                beside_alone.append(run.name)
        return original(run)

    sleeper = FakeSleeper(clock, until=START + timedelta(hours=4, minutes=30))
    make_runner(config, execute, tmp_path / "state.json", clock, sleeper).run()
    assert beside_alone == []
    assert overlap.runs == {"prune": 4, "copy": 4, "wms": 4, "crm": 4}


def test_a_stop_lets_the_running_job_finish_within_the_grace_period(tmp_path: Path) -> None:
    config = config_with({"backup": {"job": "backup", "source": "wms", **HOURLY}})
    clock = FakeClock()
    running, release = threading.Event(), threading.Event()

    def slow_backup(run: JobRun) -> Outcome:
        running.set()
        assert release.wait(60), "never released"
        return Outcome(True, "backup done")

    sleeper = FakeSleeper(clock, until=START + timedelta(days=1))
    runner = make_runner(config, slow_backup, tmp_path / "state.json", clock, sleeper)
    result: list[int] = []
    loop = threading.Thread(target=lambda: result.append(runner.run()))
    loop.start()
    assert running.wait(60)
    runner.request_stop()
    release.set()
    loop.join(60)
    assert result == [0]
    assert runner.state.records["backup"].last_result == "ok"


def cancellable(running: threading.Event, cleaned: threading.Event) -> Callable[[JobRun], Outcome]:
    def forever(run: JobRun) -> Outcome:
        running.set()
        try:
            tick = threading.Event()
            while True:  # Python work, as a backup's copy loop: a cancellation lands here
                tick.wait(0.01)
        finally:
            cleaned.set()

    return forever


@pytest.mark.parametrize("second_signal", [False, True])
def test_a_job_outlasting_the_grace_period_is_cancelled_cleanly(
    tmp_path: Path, second_signal: bool
) -> None:
    config = config_with({"backup": {"job": "backup", "source": "wms", **HOURLY}})
    clock = FakeClock()
    running, cleaned = threading.Event(), threading.Event()
    # with a second signal, the grace period is long and the signal cuts it short
    grace = timedelta(hours=1) if second_signal else timedelta(0)
    sleeper = FakeSleeper(clock, until=START + timedelta(days=1))
    state = tmp_path / "state.json"
    runner = make_runner(config, cancellable(running, cleaned), state, clock, sleeper, grace)
    result: list[int] = []
    loop = threading.Thread(target=lambda: result.append(runner.run()))
    loop.start()
    assert running.wait(60)
    runner.request_stop()
    if second_signal:
        runner.request_stop()
    loop.join(90)
    assert result == [1]
    assert cleaned.is_set(), "the job's finally did not run"
    record = StateFile(runner.state.path)
    record.load()
    cut = record.records["backup"]
    assert cut.last_result == "cancelled"
    assert cut.last_error == "cancelled: the daemon stopped"
    # it runs again as soon as the daemon is back
    assert cut.retry_at == START + timedelta(hours=1)


def test_a_job_over_its_timeout_is_cancelled_and_failed(tmp_path: Path) -> None:
    config = config_with(
        {"drill": {"job": "drill", "source": "wms", "timeout": "20m", "retries": 0, **HOURLY}}
    )
    clock = FakeClock()
    running, cleaned = threading.Event(), threading.Event()
    sleeper = FakeSleeper(clock, until=START + timedelta(hours=1, minutes=30), jobs_take_time=True)
    state = tmp_path / "state.json"
    runner = make_runner(config, cancellable(running, cleaned), state, clock, sleeper)
    assert runner.run() == 0
    assert cleaned.is_set()
    record = runner.state.records["drill"]
    assert (record.last_result, record.last_error) == ("cancelled", "timed out after 20m")
    assert record.last_finished == START + timedelta(hours=1, minutes=20)


def test_a_damaged_state_file_is_one_warning_and_an_empty_state(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.json"
    path.write_text('{"format": 1, "jobs": {"backup": {"since": "yesterday"')
    config = config_with({"backup": {"job": "backup", "source": "wms", **HOURLY}})
    clock = FakeClock()
    recorder = Recorder(clock)
    sleeper = FakeSleeper(clock, until=START + timedelta(hours=1, minutes=30))
    with caplog.at_level(logging.WARNING):
        make_runner(config, recorder, path, clock, sleeper).run()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "state file" in warnings[0], warnings
    assert recorder.times("backup") == [START + timedelta(hours=1)]
    reread = StateFile(path)
    reread.load()
    assert reread.records["backup"].last_started == START + timedelta(hours=1)


def test_once_runs_what_is_due_and_says_whether_it_failed(tmp_path: Path) -> None:
    config = config_with(
        {
            "due": {"job": "backup", "source": "wms", **HOURLY},
            "later": {"job": "backup", "source": "crm", "daily_at": "23:00"},
        }
    )
    state = StateFile(tmp_path / "state.json")
    state.records = {
        "due": JobRecord(since=START - timedelta(hours=2)),  # 23:00 passed
        "later": JobRecord(since=START - timedelta(minutes=30)),  # 23:00 is ahead
    }
    state.save()
    clock = FakeClock()
    recorder = Recorder(clock)
    sleeper = FakeSleeper(clock, until=START + timedelta(days=1))
    assert make_runner(config, recorder, state.path, clock, sleeper).run(once=True) == 0
    assert recorder.runs == [("due", START)]
    failing = Recorder(clock, failing={"due"})
    clock.now += timedelta(hours=1)
    assert make_runner(config, failing, state.path, clock, sleeper).run(once=True) == 1
    assert failing.runs == [("due", clock.now)]
