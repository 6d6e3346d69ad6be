"""Reading an object that survives a cut connection, for the object-storage backends.

A long restore streams gigabytes over one response; a reset in the middle must not start
it over. The reader keeps its position, and when the body fails it asks the backend for a
new one from that position, pinned by the backend to the same version of the object (an
ETag, a generation), so that an object replaced meanwhile fails instead of being spliced.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any, Protocol


class Body(Protocol):
    def read(self, size: int) -> bytes: ...

    def close(self) -> None: ...


class Truncated(ConnectionError):
    """The body ended before the bytes it was to hold: a cut connection."""


# reopen(position) -> a body from position on, or None when nothing is left there
Reopen = Callable[[int], Body | None]
# after_failure(error, failures so far): sleep before retrying, or raise what to report
AfterFailure = Callable[[Exception, int], None]


class ResumingReader(io.RawIOBase):
    """Bytes [position, end) of one object version (end None: to the body's end)."""

    def __init__(
        self,
        body: Body | None,
        position: int,
        end: int | None,
        reopen: Reopen,
        after_failure: AfterFailure,
        read_size: int,
    ) -> None:
        super().__init__()
        self._body = body
        self._position = position
        self._end = end
        self._reopen = reopen
        self._after_failure = after_failure
        self._read_size = read_size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._read(len(buffer))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        # in large reads: RawIOBase's own readall() would go 8 KiB at a time
        pieces = []
        while piece := self._read(self._read_size):
            pieces.append(piece)
        return b"".join(pieces)

    def _read(self, wanted: int) -> bytes:
        if self._end is not None:
            wanted = min(wanted, self._end - self._position)
        if wanted <= 0:
            return b""
        failures = 0
        while True:
            try:
                if self._body is None:
                    self._body = self._reopen(self._position)
                    if self._body is None:
                        self._end = self._position
                        return b""
                data = self._body.read(wanted)
                if not data and self._end is not None:
                    raise Truncated(f"the body ended at byte {self._position} of {self._end}")
            except Exception as exc:
                self._drop_body()
                failures += 1
                self._after_failure(exc, failures)  # raises, unless it is worth another try
                continue
            self._position += len(data)
            return data

    def _drop_body(self) -> None:
        if self._body is not None:
            try:
                self._body.close()
            except Exception:
                pass
            self._body = None

    def close(self) -> None:
        self._drop_body()
        super().close()


class ChunkBody:
    """A Body over an iterator of chunks (what some SDKs stream)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = memoryview(b"")

    def read(self, size: int) -> bytes:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return b""
            self._pending = memoryview(chunk)
        data, self._pending = self._pending[:size], self._pending[size:]
        return bytes(data)

    def close(self) -> None:
        self._chunks = iter(())
        self._pending = memoryview(b"")
