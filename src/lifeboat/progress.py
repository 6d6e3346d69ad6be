"""Progress on long work: a live bar on a terminal, start/finish log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger("lifeboat")

Advance = Callable[[int], None]


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


class Reporter:
    """Hands out byte counters for named tasks."""

    def __init__(self, live: bool) -> None:
        self.live = live

    @contextmanager
    def task(self, description: str) -> Iterator[Advance]:
        started = time.monotonic()
        done = [0]
        if self.live:
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
                console=_stderr_console(),
            ) as bar:
                task_id = bar.add_task(description, total=None)

                def advance_live(n: int) -> None:
                    done[0] += n
                    bar.update(task_id, advance=n)

                yield advance_live
        else:
            log.info("%s: started", description)

            def advance(n: int) -> None:
                done[0] += n

            yield advance
        elapsed = time.monotonic() - started
        rate = done[0] / elapsed if elapsed > 0 else 0.0
        log.info(
            "%s: %s in %.1f s (%s/s)", description, human_bytes(done[0]), elapsed, human_bytes(rate)
        )


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def quiet() -> Reporter:
    return Reporter(live=False)


def for_terminal() -> Reporter:
    return Reporter(live=sys.stdout.isatty() and sys.stderr.isatty())
