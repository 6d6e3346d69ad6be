"""Progress on long work: a byte counter per task, and a log line when it finishes.

How a running task is shown is the caller's: this reporter logs a start line; the command
line's shows a live bar on a terminal (cli/progress.py)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

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

    @contextmanager
    def task(self, description: str) -> Iterator[Advance]:
        started = time.monotonic()
        done = [0]
        with self.shown(description) as show:

            def advance(n: int) -> None:
                done[0] += n
                show(n)

            yield advance
        elapsed = time.monotonic() - started
        rate = done[0] / elapsed if elapsed > 0 else 0.0
        log.info(
            "%s: %s in %.1f s (%s/s)", description, human_bytes(done[0]), elapsed, human_bytes(rate)
        )

    @contextmanager
    def shown(self, description: str) -> Iterator[Advance]:
        """Show the task while it runs, told each count of bytes done: a start line here."""
        log.info("%s: started", description)
        yield lambda n: None


def quiet() -> Reporter:
    return Reporter()
