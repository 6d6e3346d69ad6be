"""The scheduler's loop: over an injected clock and sleeper (tests drive it through a week
without sleeping), it starts the due jobs in worker threads as the overlap rules allow,
records each start and end, retries failures with backoff, and on a stop request takes no
new job, lets the running ones finish up to a grace period, then cancels them."""

from __future__ import annotations

import ctypes
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from lifeboat.config.model import ScheduleConfig
from lifeboat.daemon.jobs import Outcome
from lifeboat.daemon.overlap import Claims, startable
from lifeboat.daemon.state import JobRecord, StateFile
from lifeboat.daemon.timing import next_fire
from lifeboat.policy.retention import parse_duration

log = logging.getLogger(__name__)

# after cancelling, how long (real seconds) the jobs get to unwind (remove a drill's scratch
# server, a backup's unfinished upload) before the daemon exits anyway
CANCEL_UNWIND_SECONDS = 30.0


class JobCancelled(BaseException):
    """Raised inside a job's thread to cancel it: a BaseException, so that the job's
    `except Exception` does not swallow it while its `finally` and `with` clean up."""


@dataclass(frozen=True)
class JobRun:
    name: str
    job: ScheduleConfig
    # the scheduled time this run stands for (a late or retried run starts after it)
    fire: datetime
    attempt: int
    started: datetime


JobHook = Callable[[JobRun, Outcome], None]
StartHook = Callable[[JobRun], None]


class Sleeper(Protocol):
    def wait(self, seconds: float | None, woken: threading.Event, busy: bool) -> None:
        """Return after `seconds` (None: until woken), or earlier once `woken` is set. busy:
        jobs are running (a simulated clock waits for them instead of moving on)."""


class RealSleeper:
    # a long wait is cut into pieces: a clock set forward (NTP, a suspended VM) is noticed
    LONGEST_WAIT = 60.0

    def wait(self, seconds: float | None, woken: threading.Event, busy: bool) -> None:
        woken.wait(self.LONGEST_WAIT if seconds is None else min(seconds, self.LONGEST_WAIT))


@dataclass
class _Running:
    run: JobRun
    thread: threading.Thread
    deadline: datetime | None
    cancelled: str | None = None  # why, once cancelled


@dataclass
class Runner:
    jobs: Mapping[str, ScheduleConfig]
    claims: Mapping[str, Claims]
    execute: Callable[[JobRun], Outcome]
    state: StateFile
    clock: Callable[[], datetime]
    sleeper: Sleeper
    grace: timedelta
    # the daemon's hook points: notifications, metrics (called on the loop's thread)
    on_job_started: list[StartHook] = field(default_factory=list)
    on_job_finished: list[JobHook] = field(default_factory=list)
    # also called when a job is cancelled: e.g. stop the tools the job started
    on_cancel: list[Callable[[], None]] = field(default_factory=list)
    # called each time the loop goes round (at least every RealSleeper.LONGEST_WAIT): the
    # heartbeat of a loop that is not stuck
    on_tick: list[Callable[[], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._woken = threading.Event()
        self._stop = threading.Event()
        self._hurry = threading.Event()
        self._finished: queue.SimpleQueue[tuple[str, Outcome]] = queue.SimpleQueue()
        self._running: dict[str, _Running] = {}
        self.failed_runs = 0
        # jobs the stop left unfinished: the daemon then exits non-zero
        self.left_unfinished = 0

    # -- control, from a signal handler or another thread --

    def request_stop(self) -> None:
        """First call: take no new job, let the running ones finish within the grace
        period. A second call: cancel them at once."""
        if self._stop.is_set():
            self._hurry.set()
        self._stop.set()
        self._woken.set()

    # -- the loop --

    def run(self, once: bool = False) -> int:
        """Run until stopped (once: until the jobs due now have run, without retries).
        0, or 1 when a job had to be cancelled (once: or failed)."""
        self._remember_jobs()
        while not self._stop.is_set():
            self._woken.clear()
            for hook in self.on_tick:
                _call_hook(hook)
            now = self.clock()
            self._collect(now, retry=not once)
            started = self._start_due(now)
            if once and not self._running and not started:
                break
            wake = self._next_wake(now, once)
            seconds = None if wake is None else max(0.0, (wake - now).total_seconds())
            self.sleeper.wait(seconds, self._woken, busy=bool(self._running))
        self._finish_running(retry=not once)
        if self.left_unfinished or (once and self.failed_runs):
            return 1
        return 0

    def due(self, now: datetime) -> list[tuple[datetime, str]]:
        """(when, name) of every job not running, due at `when`: a pending retry, else the
        first fire after its last start (one, however many passed while the daemon was
        down), else the first fire after it was first seen."""
        result = []
        for name, job in self.jobs.items():
            if name in self._running:
                continue
            record = self.state.records[name]
            if record.retry_at is not None:
                result.append((record.retry_at, name))
            else:
                result.append((next_fire(name, job, record.last_started or record.since), name))
        return sorted(result)

    def _remember_jobs(self) -> None:
        now = self.clock()
        self.state.load()
        for name in list(self.state.records):
            if name not in self.jobs:
                del self.state.records[name]  # removed from the config
        for name in self.jobs:
            self.state.records.setdefault(name, JobRecord(since=now))
        self._save()

    def _start_due(self, now: datetime) -> int:
        if self._stop.is_set():
            return 0
        due = self.due(now)
        fires = {name: when for when, name in due}
        waiting = [(name, self.claims[name]) for when, name in due if when <= now]
        chosen = startable(waiting, [self.claims[name] for name in self._running])
        for name in chosen:
            self._start(name, fires[name], now)
        return len(chosen)

    def _start(self, name: str, fire: datetime, now: datetime) -> None:
        job = self.jobs[name]
        record = self.state.records[name]
        run = JobRun(name, job, fire, record.failures + 1, now)
        record.last_started = now
        record.retry_at = None
        self._save()
        thread = threading.Thread(target=self._work, args=(run,), name=f"job {name}", daemon=True)
        deadline = now + parse_duration(job.timeout) if job.timeout else None
        self._running[name] = _Running(run, thread, deadline)
        retry = f" (attempt {run.attempt})" if run.attempt > 1 else ""
        log.info("job %s started: %s%s", name, _what(job), retry)
        for hook in self.on_job_started:
            _call_hook(hook, run)
        thread.start()

    def _work(self, run: JobRun) -> None:
        outcome = Outcome(False, "cancelled")
        try:
            outcome = self.execute(run)
        except JobCancelled:
            pass
        except BaseException as exc:  # the thread must report, whatever happened
            outcome = Outcome(False, f"unexpected {type(exc).__name__}: {exc}")
        finally:
            self._finished.put((run.name, outcome))
            self._woken.set()

    def _collect(self, now: datetime, retry: bool) -> None:
        """Record the jobs that ended; cancel those past their timeout."""
        while True:
            try:
                name, outcome = self._finished.get_nowait()
            except queue.Empty:
                break
            running = self._running.pop(name, None)
            if running is None:
                continue  # recorded already as lost below
            running.thread.join()
            if running.cancelled is not None:
                outcome = Outcome(False, running.cancelled, cancelled=True)
            self._record(running, outcome, now, retry)
        for name, running in list(self._running.items()):
            # a cancellation that struck after the job's report was sent ends its thread
            # silently
            if running.cancelled is not None and not running.thread.is_alive():
                del self._running[name]
                self._record(running, Outcome(False, running.cancelled, cancelled=True), now, retry)
        for running in self._running.values():
            if running.deadline is not None and now >= running.deadline and not running.cancelled:
                self._cancel(running, f"timed out after {running.run.job.timeout}")

    def _record(self, running: _Running, outcome: Outcome, now: datetime, retry: bool) -> None:
        run = running.run
        record = self.state.records[run.name]
        record.last_finished = now
        record.last_error = None if outcome.ok else outcome.message
        record.last_result = "ok" if outcome.ok else "cancelled" if running.cancelled else "failed"
        if outcome.ok:
            record.failures = 0
            log.info("job %s succeeded: %s", run.name, outcome.message)
        elif running.cancelled and self._stop.is_set():
            # cut short by the stop, not failed by itself: it runs again at the next start
            self.left_unfinished += 1
            record.retry_at = now
            log.error("job %s left unfinished: %s", run.name, outcome.message)
        else:
            self.failed_runs += 1
            record.failures += 1
            if retry and record.failures <= run.job.retries:
                backoff = parse_duration(run.job.retry_backoff) * 2 ** (record.failures - 1)
                record.retry_at = now + backoff
                log.warning(
                    "job %s failed: %s; retry %d of %d at %s",
                    run.name,
                    outcome.message,
                    record.failures,
                    run.job.retries,
                    record.retry_at.isoformat(timespec="seconds"),
                )
            else:
                log.error("job %s failed: %s", run.name, outcome.message)
                record.failures = 0
        self._save()
        for hook in self.on_job_finished:
            _call_hook(hook, run, outcome)

    def _next_wake(self, now: datetime, once: bool) -> datetime | None:
        times = [] if once else [when for when, _ in self.due(now)]
        times += [r.deadline for r in self._running.values() if r.deadline and not r.cancelled]
        return min(times, default=None)

    def _finish_running(self, retry: bool) -> None:
        """After a stop: wait for the running jobs up to the grace period, then cancel."""
        if self._running:
            log.info(
                "stopping: waiting up to %s for %s", self.grace, ", ".join(sorted(self._running))
            )
        deadline = self.clock() + self.grace
        while self._running:
            self._woken.clear()
            for hook in self.on_tick:
                _call_hook(hook)
            now = self.clock()
            self._collect(now, retry=False)
            if not self._running:
                break
            if now >= deadline or self._hurry.is_set():
                for running in self._running.values():
                    if not running.cancelled:
                        self._cancel(running, "cancelled: the daemon stopped")
                self._unwind()
                return
            self.sleeper.wait((deadline - now).total_seconds(), self._woken, busy=True)

    def _cancel(self, running: _Running, why: str) -> None:
        log.warning("job %s: %s", running.run.name, why)
        running.cancelled = why
        raise_in_thread(running.thread, JobCancelled)
        for hook in self.on_cancel:
            hook()

    def _unwind(self) -> None:
        """Give the cancelled jobs a moment of real time to clean up, record them; the
        rest is left to the repository's commit protocol (nothing unfinished is listed)."""
        deadline = time.monotonic() + CANCEL_UNWIND_SECONDS
        for running in list(self._running.values()):
            running.thread.join(max(0.0, deadline - time.monotonic()))
        self._collect(self.clock(), retry=False)
        for name in list(self._running):
            self.left_unfinished += 1
            log.error("job %s did not stop in time: leaving it unfinished", name)

    def _save(self) -> None:
        try:
            self.state.save()
        except OSError as exc:
            # the jobs go on; a restart may then repeat or catch up a run
            log.error("cannot write the daemon's state file %s: %s", self.state.path, exc)


def raise_in_thread(thread: threading.Thread, exception: type[BaseException]) -> None:
    """Make `exception` raise in `thread` at its next Python instruction (one blocked in a
    system call sees it when the call returns: the daemon also stops the job's tools).
    Nothing when the thread has ended: its id may already be another thread's (the C
    library reuses them), which would get the exception instead."""
    if thread.ident is not None and thread.is_alive():
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(thread.ident), ctypes.py_object(exception)
        )


def _what(job: ScheduleConfig) -> str:
    target = (
        job.source
        or (f"group {job.group}" if job.group else None)
        or job.repository
        or "every source"
    )
    return f"{job.job} of {target}" + (f" ({job.type})" if job.type else "")


def _call_hook(hook: Callable[..., None], *args: object) -> None:
    # a notification or metric that fails must not stop the scheduler
    try:
        hook(*args)
    except Exception:
        log.exception("a job hook failed")
