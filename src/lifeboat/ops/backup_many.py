"""`lifeboat backup --all` / `--group NAME`: several sources backed up, at most N at a
time, one failure not stopping the others, one outcome per source.

Each source runs as `backup SOURCE` would (ops/backup_one.py) in a worker thread, with a
Context of its own: a Context caches the repositories it opened (their storage clients),
which are not shared between threads, as in the daemon, where each job has its own too
(S3 sessions, Azure and GCS clients are made per storage). The configuration is shared:
it is never changed after loading. Two sources writing to one repository each take their
own source's lock, and the audit trail's appends are safe between writers (exclusive
creates, repo/audit.py). Two live progress bars cannot be shown at once (rich allows one
live display), so with more than one source at a time each reports its tasks as log
lines. What is told about each source (its notification) is sent from the calling thread
as each one ends, in the order they end."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from lifeboat.config.model import LifeboatConfig
from lifeboat.context import Context
from lifeboat.errors import UsageError, describe_failure
from lifeboat.notify import outcomes
from lifeboat.notify.event import Event
from lifeboat.ops.backup_one import SourceBackup, back_up, missed
from lifeboat.sources.registry import BackupOptions, backup_type_of
from lifeboat.util.progress import Reporter

log = logging.getLogger(__name__)


def sources_of(config: LifeboatConfig, every: bool, group: str | None) -> list[str]:
    """The sources `--all` (every configured one, in the file's order) or `--group NAME`
    names."""
    if every:
        if not config.sources:
            raise UsageError("no source is configured: --all has nothing to back up")
        return list(config.sources)
    assert group is not None
    members = config.groups.get(group)
    if members is None:
        known = ", ".join(sorted(config.groups)) or "none configured"
        raise UsageError(f"unknown group {group!r} (groups: {known})")
    return list(members)


@dataclass(frozen=True)
class SourceOutcome:
    """How one source's backup ended: done (maybe missing from some repositories), or
    failed with its one line."""

    source: str
    backup_type: str  # logical, physical, redis, files, sqlite
    seconds: float
    done: SourceBackup | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.done is not None and not self.done.failed

    @property
    def problem(self) -> str | None:
        """Why the source counts as failed: its error, or a repository that lacks it."""
        if self.error is not None:
            return self.error
        if self.done is not None and self.done.failed:
            return missed(self.done.failed)
        return None

    def event(self) -> Event:
        """The notification `backup SOURCE` sends for this outcome."""
        if self.done is not None:
            return self.done.event()
        return outcomes.backup_failed(self.source, self.error or "", backup_type=self.backup_type)

    def summary(self) -> dict[str, Any]:
        summary = self.done.summary if self.done is not None else {}
        return {
            "source": self.source,
            "type": self.backup_type,
            "ok": self.ok,
            "id": summary.get("id"),
            "seconds": round(self.seconds, 3),
            "stored_size": summary.get("stored_size"),
            "plain_size": summary.get("plain_size"),
            "repositories": summary.get("repositories", []),
            "failed_repositories": summary.get("failed_repositories", {}),
            "error": self.problem,
        }


@dataclass
class ManyBackups:
    outcomes: list[SourceOutcome] = field(default_factory=list)
    seconds: float = 0.0  # the whole run's, from the first start to the last end

    @property
    def failed(self) -> list[SourceOutcome]:
        return [o for o in self.outcomes if not o.ok]

    def summary(self) -> dict[str, Any]:
        """The outcomes in the sources' order, and the totals."""
        return {
            "sources": [o.summary() for o in self.outcomes],
            "totals": {
                "sources": len(self.outcomes),
                "succeeded": len(self.outcomes) - len(self.failed),
                "failed": len(self.failed),
                "stored_size": sum(
                    o.done.summary.get("stored_size") or 0 for o in self.outcomes if o.done
                ),
                "seconds": round(self.seconds, 3),
            },
        }


# backs up one source in its own Context: ops/backup_one.back_up, or a test's stand-in
BackUp = Callable[[Context, str, BackupOptions], SourceBackup]


def _run_one(
    ctx: Context, source: str, options: BackupOptions, back_up_one: BackUp
) -> SourceOutcome:
    backup_type = backup_type_of(ctx.config.sources[source], options.backup_type)
    started = time.monotonic()
    try:
        done = back_up_one(ctx, source, options)
    except Exception as exc:  # one source's failure, whatever it is, does not stop the others
        line = describe_failure(exc)[0]
        log.debug("backup of %s failed", source, exc_info=True)
        return SourceOutcome(source, backup_type, time.monotonic() - started, error=line)
    return SourceOutcome(source, backup_type, time.monotonic() - started, done)


def backup_many(
    ctx: Context,
    sources: list[str],
    parallel: int = 1,
    options: BackupOptions | None = None,
    on_done: Callable[[SourceOutcome], None] | None = None,
    back_up_one: BackUp = back_up,
) -> ManyBackups:
    """Back up each source, at most `parallel` at a time, past any failure; on_done is
    called on this thread as each one ends (its notification). The outcomes come back in
    the order of sources."""
    if parallel < 1:
        raise UsageError(f"--parallel must be at least 1, not {parallel}")
    options = options or BackupOptions()
    for source in sources:
        ctx.source(source)  # an unknown one is a usage error before any backup starts
    reporter = ctx.reporter if parallel == 1 else Reporter()
    started = time.monotonic()
    ended: dict[str, SourceOutcome] = {}
    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="backup") as pool:
        running: dict[Future[SourceOutcome], str] = {
            pool.submit(
                _run_one,
                Context(ctx.config, ctx.config_path, reporter),
                source,
                options,
                back_up_one,
            ): source
            for source in sources
        }
        try:
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    running.pop(future)
                    outcome = future.result()
                    ended[outcome.source] = outcome
                    if on_done is not None:
                        on_done(outcome)
        except BaseException:
            # an interrupt: start no other source; the running ones end with their tools
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return ManyBackups([ended[source] for source in sources], time.monotonic() - started)
