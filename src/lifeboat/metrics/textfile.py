"""The metrics as a textfile for node_exporter's textfile collector, for one-shot runs
(cron, systemd timers, Kubernetes CronJobs): `backup`, `drill`, `verify`, `prune` and `copy`
rewrite `[metrics] textfile` when they finish (wal-push does not: it runs every few seconds).

The file is written whole into a temporary file beside it and renamed over it, so
node_exporter reads the old file or the new one, never half of one; mode 0644, as
node_exporter runs as another user. The last runs of the other commands are read back from
the file before it is rewritten, under a lock beside it so that two commands finishing
together both keep their run. A file that cannot be written is one warning: a backup does
not fail for its metrics."""

from __future__ import annotations

import logging
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from lifeboat.context import Context
from lifeboat.errors import LifeboatError
from lifeboat.metrics.collect import NO_CACHE, RepositoryCollector
from lifeboat.metrics.runs import (
    LAST_RUN_DURATION,
    LAST_RUN_SUCCESS,
    LAST_RUN_TIME,
    LastRuns,
    Run,
    RunKey,
)
from lifeboat.util.fs import write_atomically
from lifeboat.util.singleton import held_or_none

log = logging.getLogger(__name__)

TEXTFILE_MODE = 0o644
# how long a command waits for another one writing the file
LOCK_PATIENCE = 30.0


def lock_path(path: Path) -> Path:
    # hidden and without .prom: node_exporter reads only *.prom files
    return path.with_name(f".{path.name}.lock")


def previous_runs(path: Path) -> dict[RunKey, Run]:
    """The last runs a previous rewrite left in the file; none from a missing or
    unreadable file (it is rewritten whole anyway)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, UnicodeDecodeError):
        return {}
    values: dict[str, dict[RunKey, float]] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                key = (
                    sample.labels.get("kind", ""),
                    sample.labels.get("source", ""),
                    sample.labels.get("type", ""),
                )
                values.setdefault(sample.name, {})[key] = sample.value
    except ValueError as exc:
        log.debug("%s is not in the exposition format (%s): its last runs are dropped", path, exc)
        return {}
    times = values.get(LAST_RUN_TIME, {})
    success = values.get(LAST_RUN_SUCCESS, {})
    seconds = values.get(LAST_RUN_DURATION, {})
    return {
        key: Run(at, success.get(key, 0.0) == 1.0, seconds.get(key, 0.0))
        for key, at in times.items()
        if key[0]
    }


def render(ctx: Context, runs: LastRuns) -> bytes:
    """The repositories' gauges, read now, and the last runs, in the text format."""
    registry = CollectorRegistry()
    registry.register(RepositoryCollector(ctx, refresh=NO_CACHE))
    registry.register(runs)
    return generate_latest(registry)


# a run to record: kind, source, how it went, a backup's type
RunEntry = tuple[str, str | None, Run, str | None]


def write_textfile(ctx: Context, path: Path, run: RunEntry | None, *more: RunEntry) -> None:
    """Rewrite path with the metrics of now, the file's last runs and `run` (and `more`:
    `backup --all`'s sources, in one rewrite) if given. Raises OSError (TimeoutError when
    another command holds the file's lock too long)."""
    with held_or_none(lock_path(path), LOCK_PATIENCE) as held:
        if not held:
            raise TimeoutError(f"another command kept {lock_path(path)} for {LOCK_PATIENCE:.0f} s")
        runs = LastRuns(previous_runs(path))
        for entry in ([run] if run is not None else []) + list(more):
            runs.record(*entry)
        write_atomically(path, render(ctx, runs), mode=TEXTFILE_MODE)


def after_runs(ctx: Context, entries: list[RunEntry]) -> None:
    """A one-shot command has finished its runs (several at once for the sources of
    `backup --all`: the repositories are read once for all of them): rewrite the configured
    textfile, if any. Never raises for the file: one warning line instead, the command's
    exit unchanged."""
    path = ctx.config.metrics.textfile
    if path is None or not entries:
        return
    try:
        write_textfile(ctx, path, *entries)
    except OSError as exc:
        log.warning("metrics textfile %s not written: %s", path, exc.strerror or exc)
    except LifeboatError as exc:
        log.warning("metrics textfile %s not written: %s", path, exc.message)
    except Exception as exc:  # a backup must not fail for its metrics, whatever went wrong
        log.warning(
            "metrics textfile %s not written: unexpected %s: %s", path, type(exc).__name__, exc
        )
