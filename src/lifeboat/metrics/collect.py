"""The collector of the newest-state gauges, computed from the repositories, so that a
restarted daemon reports the truth at its first scrape.

Reading the repositories lists every source's backups, WAL, verification and drill
records: on a large S3 bucket, a few hundred requests. Prometheus scrapes every 15 s or so,
so the snapshot is kept for `[metrics] refresh` (default 1m) and scrapes within it are
answered from memory; the ages in it (RPO, spool lag) are still computed at each scrape.
`invalidate()` (the daemon calls it after each job) makes the next scrape read again, so a
finished backup shows at once. Concurrent scrapes wait for one refresh rather than each
starting their own."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from lifeboat.context import Context
from lifeboat.metrics.facts import Snapshot, take_snapshot
from lifeboat.metrics.families import families
from lifeboat.policy.retention import parse_duration

DEFAULT_REFRESH = timedelta(minutes=1)
NO_CACHE = timedelta(0)  # a one-shot rendering reads the repositories each time


def refresh_of(ctx: Context) -> timedelta:
    """The configured refresh, `[metrics] refresh`."""
    return parse_duration(ctx.config.metrics.refresh)


class RepositoryCollector(Collector):
    """The gauges of every configured source, read at most once per `refresh`."""

    def __init__(
        self,
        ctx: Context,
        refresh: timedelta = DEFAULT_REFRESH,
        clock: Callable[[], float] = time.monotonic,
        read: Callable[[Context], Snapshot] = take_snapshot,
    ) -> None:
        self._ctx = ctx
        self._refresh = refresh.total_seconds()
        self._clock = clock
        self._read = read
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._read_at = 0.0

    def invalidate(self) -> None:
        """The next scrape reads the repositories again (something was just written)."""
        with self._lock:
            self._snapshot = None

    def snapshot(self) -> Snapshot:
        with self._lock:
            fresh = self._clock() - self._read_at < self._refresh
            if self._snapshot is None or not fresh:
                self._snapshot = self._read(self._ctx)
                self._read_at = self._clock()
            return self._snapshot

    def collect(self) -> Iterable[Metric]:
        snapshot = self.snapshot()
        return list(families(snapshot, datetime.now(UTC)))

    def describe(self) -> Iterable[Metric]:
        # registering must not read the repositories: the names are checked by the tests
        return []
