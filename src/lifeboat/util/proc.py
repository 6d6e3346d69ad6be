"""Child processes and other processes: draining a child's stderr, telling whether a pid
still runs. One place for both, so every tool Lifeboat runs is watched the same way."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import IO


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
