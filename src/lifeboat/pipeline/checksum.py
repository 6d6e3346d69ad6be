"""Taps that hash and count the bytes flowing through a stream."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Protocol

Progress = Callable[[int], None]


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class Writable(Protocol):
    def write(self, data: bytes, /) -> int | None: ...


class Tap:
    """Running sha256 and byte count (the count alone when digest is False)."""

    def __init__(self, progress: Progress | None = None, *, digest: bool = True) -> None:
        self._hash = hashlib.sha256()
        self._digest = digest
        self.size = 0
        self._progress = progress

    def update(self, data: bytes | memoryview) -> None:
        if self._digest:
            self._hash.update(data)
        self.size += len(data)
        if self._progress is not None:
            self._progress(len(data))

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


class BackgroundTap(Tap):
    """A Tap that hashes on a thread of its own, in order, while the stage that feeds it
    goes on (hashlib lets go of the GIL): reading, hashing and compressing a backup then
    use two cores instead of taking turns on one. Call close() when done, even on failure."""

    DEPTH = 8

    def __init__(self, progress: Progress | None = None) -> None:
        super().__init__(progress)
        import queue
        import threading

        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=self.DEPTH)
        self._thread = threading.Thread(target=self._run, name="sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            self._hash.update(item)

    def update(self, data: bytes | memoryview) -> None:
        # the hashing runs later: it needs bytes nobody will change
        self._queue.put(data if isinstance(data, bytes) else bytes(data))
        self.size += len(data)
        if self._progress is not None:
            self._progress(len(data))

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    @property
    def sha256(self) -> str:
        self.close()
        return self._hash.hexdigest()


class HashingReader:
    """Reads from source and taps every byte read."""

    def __init__(self, source: Readable, tap: Tap) -> None:
        self._source = source
        self.tap = tap

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        if data:
            self.tap.update(data)
        return data

    def readable(self) -> bool:
        return True


class HashingWriter:
    """Taps every byte written, then passes it on to sink."""

    def __init__(self, sink: Writable, tap: Tap) -> None:
        self._sink = sink
        self.tap = tap

    def write(self, data: bytes) -> int:
        self.tap.update(data)
        self._sink.write(data)
        return len(data)

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        flush = getattr(self._sink, "flush", None)
        if flush is not None:
            flush()
