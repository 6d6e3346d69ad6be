"""Child processes and other processes: draining a child's stderr, telling whether a pid
still runs, stopping a long-running command on SIGTERM or Ctrl-C. One place for these, so
every tool Lifeboat runs is watched the same way."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)


class StderrCollector(threading.Thread):
    """Drains a process's stderr (or any pipe) so it never blocks, keeping the last bytes
    for messages. `on_line`, when given, sees each line as it arrives (to log it)."""

    def __init__(
        self,
        stream: IO[bytes],
        keep: int | None = 64 * 1024,
        *,
        on_line: Callable[[str], None] | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(daemon=True, name=name)
        self._stream = stream
        self._keep = keep
        self._on_line = on_line
        self._data = bytearray()

    def run(self) -> None:
        for line in self._stream:
            self._data += line
            if self._keep is not None and len(self._data) > self._keep:
                del self._data[: len(self._data) - self._keep]
            if self._on_line is not None:
                text = line.decode("utf-8", "replace").strip()
                if text:
                    self._on_line(text)

    @property
    def text(self) -> str:
        return self._data.decode("utf-8", "replace")

    def last_line(self) -> str:
        lines = self.lines()
        return lines[-1] if lines else ""

    def lines(self) -> list[str]:
        return [line.strip() for line in self.text.splitlines() if line.strip()]

    def error_line(self) -> str:
        return error_line(self.lines())


def error_line(lines: Sequence[str]) -> str:
    """A failed tool's own word for a one-line error: its first line saying error, else its
    last line; empty when it said nothing (the caller names the exit code then)."""
    said = [line.strip() for line in lines if line.strip()]
    errors = [line for line in said if "error" in line.lower()]
    return errors[0] if errors else (said[-1] if said else "")


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this host (signal 0 asks without sending)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: it runs
    return True


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event | Callable[[], None], then: str) -> Iterator[None]:
    """For the block, SIGTERM and SIGINT set stop (or call it) instead of ending the
    process, so a loop can finish what it does first (`then` says what, in the log line);
    the previous handlers come back afterwards."""

    def handler(signum: int, frame: object) -> None:
        log.info("received %s: %s", signal.Signals(signum).name, then)
        if isinstance(stop, threading.Event):
            stop.set()
        else:
            stop()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def interrupt_on_sigterm() -> Iterator[None]:
    """For the block, SIGTERM interrupts as Ctrl-C does (KeyboardInterrupt), so that the
    block's `with` and `finally` clean up what it holds (a drill's scratch server and
    folder) when a service manager or `timeout` stops it, instead of leaving it running."""

    def handler(signum: int, frame: object) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def boot_id() -> str | None:
    """This boot's identity: start ticks only compare within one boot."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
