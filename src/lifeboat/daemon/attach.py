"""What `lifeboat daemon` runs beside its scheduler, from the configuration:

- each run's outcome sent through the notification channels (as the command of its kind
  sends it) and its schedule's dead-man's-switch (`ping_url`) pinged at start and end;
- the sources' health watched: an RPO over its objective or a backup overdue is notified,
  once per incident (notify/incidents.py), until a backup ends it;
- the Prometheus endpoint (`[metrics] listen`) with the job-run counters, and the heartbeat
  of the scheduler's loop.

The hooks run on the scheduler's thread, so whatever waits on the network (a channel, a
ping) is handed to one sender thread, which keeps their order."""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from lifeboat.config.model import LifeboatConfig
from lifeboat.context import Context
from lifeboat.daemon.jobs import Outcome
from lifeboat.daemon.runner import JobRun
from lifeboat.daemon.service import DaemonHooks
from lifeboat.errors import LifeboatError
from lifeboat.metrics.runs import DaemonMetrics
from lifeboat.metrics.runs import Outcome as RunResult
from lifeboat.metrics.server import daemon_server
from lifeboat.notify import outcomes
from lifeboat.notify.deliver import announce
from lifeboat.notify.event import Event
from lifeboat.notify.ping import ping
from lifeboat.sources.registry import backup_type_of

log = logging.getLogger(__name__)

# how often the sources' repositories are read for their health
HEALTH_EVERY_SECONDS = 300.0


def job_event(run: JobRun, outcome: Outcome, backup_type: str | None = None) -> Event:
    """The notification of a scheduled run's outcome: the events the command of its kind
    sends, with the schedule's name as the job. backup_type: a backup's (default: the
    job's type, else logical)."""
    kind, source, name, line = run.job.job, run.job.source, run.name, outcome.message
    if outcome.told is not None:
        return replace(outcome.told, job=name)
    if kind == "backup" and run.job.group is not None:
        # each source's own notification is in outcome.events; this is the group's run
        if outcome.ok:
            return outcomes.job_succeeded(name, run.job.group)
        return outcomes.job_failed(name, run.job.group, line)
    if kind == "backup":
        assert source is not None  # the configuration requires it
        backup_type = backup_type or run.job.type or "logical"  # `lifeboat backup`'s default
        if outcome.ok:
            return Event(
                "backup_succeeded", source, name, f"{source}: {line}", {"type": backup_type}
            )
        return outcomes.backup_failed(source, line, job=name, backup_type=backup_type)
    if kind == "drill":
        if outcome.ok:
            return Event("drill_passed", source, name, f"{source}: {line}")
        return outcomes.drill_failed(source, line, job=name)
    if kind == "verify":
        return outcomes.verification(source, [] if outcome.ok else [line], job=name)
    if outcome.ok:
        return outcomes.job_succeeded(name, source)
    return outcomes.job_failed(name, source, line)


def run_events(run: JobRun, outcome: Outcome, backup_type: str | None = None) -> list[Event]:
    """The outcome's notification, then what the run told beside it (a prune's
    prune_applied), each with the schedule's name as the job."""
    return [job_event(run, outcome, backup_type)] + [
        replace(e, job=run.name) for e in outcome.events
    ]


def health_events(status: dict[str, Any]) -> list[Event]:
    """rpo_breached and backup_overdue from one source's status (ops/status.source_status)."""
    source = status["source"]
    events = []
    rpo = status["rpo"]
    if rpo["breached"]:
        events.append(
            Event(
                "rpo_breached",
                source,
                "daemon",
                f"the newest restorable moment of {source} is older than its RPO objective",
                {"age_seconds": rpo["age_s"], "objective_seconds": rpo["objective_s"]},
            )
        )
    # one incident per backup type (notify/event.py), naming every repository it is late in
    late: dict[str, list[str]] = {}
    for repo in status["repositories"]:
        if repo["error"]:
            continue  # status names an unreadable repository itself
        for kind, backup in sorted(repo["backups"].items()):
            if backup["overdue"]:
                late.setdefault(kind, []).append(repo["name"])
    for kind, repositories in late.items():
        events.append(
            Event(
                "backup_overdue",
                source,
                "daemon",
                f"{kind} backup of {source} overdue in {', '.join(repositories)}",
                {"type": kind, "repositories": ", ".join(repositories)},
            )
        )
    return events


def _backup_type(config: LifeboatConfig, run: JobRun) -> str | None:
    """A backup job's type as `backup SOURCE` tells it: its type, else logical for a
    PostgreSQL source, else the source's own (redis...); None for a group's run and the
    other jobs."""
    if run.job.job != "backup" or run.job.source is None:
        return None
    return backup_type_of(config.sources[run.job.source], run.job.type)


class Sender:
    """One thread that runs what the hooks hand it (deliveries, pings), in order."""

    def __init__(self) -> None:
        self._work: queue.SimpleQueue[Callable[[], object] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="notifications", daemon=True)

    def put(self, work: Callable[[], object]) -> None:
        self._work.put(work)

    def _run(self) -> None:
        while (work := self._work.get()) is not None:
            try:
                work()
            except Exception:  # never the daemon's end: each sender logs its own failures
                log.exception("a notification failed")

    @contextlib.contextmanager
    def running(self) -> Iterator[Sender]:
        self._thread.start()
        try:
            yield self
        finally:
            self._work.put(None)  # what was handed over before the stop is still sent
            self._thread.join()


@contextlib.contextmanager
def health_watch(
    ctx: Context, sender: Sender, every: float = HEALTH_EVERY_SECONDS
) -> Iterator[None]:
    """Read each source's health now and every `every` seconds; announce what is wrong."""
    from lifeboat.ops.status import source_status

    stop = threading.Event()

    def watch() -> None:
        while True:
            for source in ctx.config.sources:
                try:
                    events = health_events(source_status(ctx, source))
                except LifeboatError as exc:
                    log.warning("health of %s not read: %s", source, exc.message)
                    continue
                except Exception:
                    log.exception("health of %s not read", source)
                    continue
                for event in events:
                    sender.put(functools.partial(announce, ctx.config, event))
            if stop.wait(every):
                return

    thread = threading.Thread(target=watch, name="health-watch", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextlib.contextmanager
def serving(metrics: DaemonMetrics, listen: str) -> Iterator[None]:
    server = daemon_server(metrics, listen)
    server.start()  # a port in use: the daemon's error before its first job
    try:
        yield
    finally:
        server.stop()


def daemon_hooks(ctx: Context, health_every: float = HEALTH_EVERY_SECONDS) -> DaemonHooks:
    """The hooks and services of the daemon for ctx's configuration."""
    config = ctx.config
    sender = Sender()
    metrics = DaemonMetrics(ctx)
    hooks = DaemonHooks()
    if config.metrics.listen:
        hooks.services.append(serving(metrics, config.metrics.listen))
    hooks.services.append(sender.running())
    hooks.services.append(health_watch(ctx, sender, health_every))
    hooks.on_tick.append(metrics.heartbeat)

    def started(run: JobRun) -> None:
        url = run.job.ping_url
        if url:
            sender.put(lambda: ping(url, "start"))

    def finished(run: JobRun, outcome: Outcome) -> None:
        duration = (datetime.now(UTC) - run.started).total_seconds()
        result: RunResult = (
            "succeeded" if outcome.ok else "cancelled" if outcome.cancelled else "failed"
        )
        backup_type = _backup_type(config, run)
        source = run.job.source or run.job.group
        metrics.record_job(run.name, run.job.job, source, result, duration, backup_type)
        metrics.record_backups(outcome.source_runs)
        for event in run_events(run, outcome, backup_type):
            sender.put(functools.partial(announce, config, event))
        url = run.job.ping_url
        if url:
            body = "" if outcome.ok else outcome.message
            sender.put(lambda: ping(url, "success" if outcome.ok else "fail", body))

    hooks.on_job_started.append(started)
    hooks.on_job_finished.append(finished)
    return hooks
