"""A live progress bar for the commands, when both stdout and stderr are a terminal."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from lifeboat.util.progress import Advance, Reporter


class LiveReporter(Reporter):
    """Shows each running task as a transient rich bar on stderr."""

    @contextmanager
    def shown(self, description: str) -> Iterator[Advance]:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TransferSpeedColumn,
        )

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            transient=True,
            console=Console(stderr=True),
        ) as bar:
            task_id = bar.add_task(description, total=None)
            yield lambda n: bar.update(task_id, advance=n)


def for_terminal() -> Reporter:
    """A live bar on a terminal, log lines otherwise."""
    return LiveReporter() if sys.stdout.isatty() and sys.stderr.isatty() else Reporter()
