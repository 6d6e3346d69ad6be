"""What only the runner knows: each job's last run (time, result, duration), the daemon's
job-run counters and its heartbeat. Failed runs leave nothing in a repository, so these are
the only metrics of them.

The last runs are kept alike by the daemon (in memory) and by the one-shot commands (in
the textfile they rewrite, read back before each rewrite), so the same alert fires
whichever runs the jobs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from lifeboat.context import Context
from lifeboat.metrics.collect import RepositoryCollector, refresh_of

# how a run ended: "cancelled" is a run stopped by the daemon's shutdown or its timeout
Outcome = Literal["succeeded", "failed", "cancelled"]
OUTCOMES: tuple[Outcome, ...] = ("succeeded", "failed", "cancelled")

LAST_RUN_TIME = "lifeboat_last_run_timestamp_seconds"
LAST_RUN_SUCCESS = "lifeboat_last_run_success"
LAST_RUN_DURATION = "lifeboat_last_run_duration_seconds"
HEARTBEAT = "lifeboat_daemon_heartbeat_timestamp_seconds"


@dataclass(frozen=True)
class Run:
    finished_at: float  # Unix time
    success: bool
    seconds: float


# (kind, source, type): "" for a run over every source, and for a job that is no backup
RunKey = tuple[str, str, str]


class LastRuns(Collector):
    """The newest run of each kind of job (backup, verify, drill, prune, copy, report) per
    source ("" for a run over every source) and, for backups, per type (logical,
    physical): an hourly logical backup's success must not hide a nightly physical one's
    failure."""

    def __init__(self, runs: dict[RunKey, Run] | None = None) -> None:
        self._lock = threading.Lock()
        self._runs: dict[RunKey, Run] = dict(runs or {})

    def record(
        self, kind: str, source: str | None, run: Run, backup_type: str | None = None
    ) -> None:
        with self._lock:
            self._runs[(kind, source or "", backup_type or "")] = run

    def runs(self) -> dict[RunKey, Run]:
        with self._lock:
            return dict(self._runs)

    def collect(self) -> Iterable[Metric]:
        labels = ["kind", "source", "type"]
        at = GaugeMetricFamily(
            LAST_RUN_TIME,
            "When the newest run of the job kind for the source ended.",
            labels=labels,
        )
        success = GaugeMetricFamily(
            LAST_RUN_SUCCESS, "Whether that run succeeded: 1 yes, 0 no.", labels=labels
        )
        took = GaugeMetricFamily(LAST_RUN_DURATION, "How long that run took.", labels=labels)
        for key, run in sorted(self.runs().items()):
            at.add_metric(list(key), run.finished_at)
            success.add_metric(list(key), 1.0 if run.success else 0.0)
            took.add_metric(list(key), run.seconds)
        return [at, success, took]

    def describe(self) -> Iterable[Metric]:
        return self.collect()


class DaemonMetrics:
    """The registry the daemon serves: the repositories' gauges, the last runs, the job-run
    counters and the heartbeat. The daemon calls record_job after each run and heartbeat
    from its loop."""

    def __init__(
        self,
        ctx: Context,
        clock: Callable[[], float] = time.time,
        repositories: RepositoryCollector | None = None,
    ) -> None:
        self._clock = clock
        self.registry = CollectorRegistry()
        self.repositories = repositories or RepositoryCollector(ctx, refresh_of(ctx))
        self.registry.register(self.repositories)
        self.last_runs = LastRuns()
        self.registry.register(self.last_runs)
        self._runs = Counter(
            "lifeboat_job_runs",
            "Runs of the daemon's scheduled jobs, by job name, kind and result.",
            ["job", "kind", "result"],
            registry=self.registry,
        )
        # every scheduled job's series from 0, so that increase() sees its first failure
        for name, job in ctx.config.schedule.items():
            for outcome in OUTCOMES:
                self._runs.labels(name, job.job, outcome)
        self._heartbeat = Gauge(
            HEARTBEAT, "When the daemon's scheduler loop last went round.", registry=self.registry
        )
        self._beat: float | None = None

    def record_job(
        self,
        job: str,
        kind: str,
        source: str | None,
        outcome: Outcome,
        duration: float,
        backup_type: str | None = None,
    ) -> None:
        """One run of a scheduled job has ended (a backup's: of backup_type)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r} (one of {', '.join(OUTCOMES)})")
        self._runs.labels(job, kind, outcome).inc()
        run = Run(self._clock(), outcome == "succeeded", duration)
        self.last_runs.record(kind, source, run, backup_type)
        # what the job wrote shows at the next scrape, not a refresh later
        self.repositories.invalidate()

    def record_backups(self, runs: Iterable[tuple[str, bool, float, str]]) -> None:
        """The backups a group's job made, each source's (source, ok, seconds, type) its
        own last run, as `backup SOURCE` would leave it."""
        for source, ok, seconds, backup_type in runs:
            self.last_runs.record("backup", source, Run(self._clock(), ok, seconds), backup_type)

    def heartbeat(self) -> None:
        self._beat = self._clock()
        self._heartbeat.set(self._beat)

    def heartbeat_age(self) -> float | None:
        """Seconds since the last heartbeat, None before the first."""
        return None if self._beat is None else self._clock() - self._beat

    def health(self, within: float) -> tuple[bool, str]:
        """/healthz's answer: healthy while the heartbeat is at most `within` seconds old."""
        age = self.heartbeat_age()
        if age is None:
            return False, "no heartbeat yet"
        if age > within:
            return False, f"heartbeat {age:.0f} s old (more than {within:.0f} s)"
        return True, f"ok: heartbeat {age:.0f} s old"
