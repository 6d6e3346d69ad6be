"""`@writes_textfile(kind)`: a one-shot command rewrites `[metrics] textfile` when it
ends, with its own outcome (see metrics/textfile.py). Interrupted by the operator (Ctrl-C),
it writes nothing."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

from lifeboat.cli.main import state
from lifeboat.errors import LifeboatError

F = TypeVar("F", bound=Callable[..., Any])


def _write(
    kind: str, source: str | None, success: bool, started: float, backup_type: str | None
) -> None:
    write_runs(kind, [(source, success, time.monotonic() - started, backup_type)])


def write_runs(kind: str, runs: list[tuple[str | None, bool, float, str | None]]) -> None:
    """Record runs (source, success, seconds, a backup's type) in the textfile, if one is
    configured, in one rewrite: a command's, or the sources' of `backup --all`."""
    try:
        ctx = state().context()
    except LifeboatError:
        return  # no configuration: no textfile named; the command said why
    if ctx.config.metrics.textfile is None:
        return
    from lifeboat.metrics.runs import Run
    from lifeboat.metrics.textfile import after_runs
    from lifeboat.sources.registry import backup_type_of

    entries = []
    for source, success, seconds, backup_type in runs:
        if kind == "backup" and source in ctx.config.sources:
            # the type the backup was told by: --type, else the source's default (logical
            # for PostgreSQL, the source's own for redis, files, sqlite), as the daemon's
            backup_type = backup_type_of(ctx.config.sources[source], backup_type)
        entries.append((kind, source, Run(time.time(), success, seconds), backup_type))
    after_runs(ctx, entries)


def writes_textfile(kind: str) -> Callable[[F], F]:
    """Decorate a command's function (below its click decorators); its `source`
    argument, when it has one, labels the run."""

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> Any:
            started = time.monotonic()
            source = kwargs.get("source")
            # `backup --type`: each type's last run is its own
            backup_type = kwargs.get("kind") if kind == "backup" else None
            try:
                result = command(*args, **kwargs)
            except SystemExit as exc:
                _write(kind, source, exc.code in (None, 0), started, backup_type)
                raise
            except Exception:
                _write(kind, source, False, started, backup_type)
                raise
            _write(kind, source, True, started, backup_type)
            return result

        return run  # type: ignore[return-value]

    return decorate
