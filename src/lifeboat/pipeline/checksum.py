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
    """Running sha256 and byte count."""

    def __init__(self, progress: Progress | None = None) -> None:
        self._hash = hashlib.sha256()
        self.size = 0
        self._progress = progress

    def update(self, data: bytes | memoryview) -> None:
        self._hash.update(data)
        self.size += len(data)
        if self._progress is not None:
            self._progress(len(data))

    @property
    def sha256(self) -> str:
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
