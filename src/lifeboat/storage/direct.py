"""Writing a large object to a local file without the page cache (O_DIRECT).

A backup writes each object once and reads it back rarely: going through the page cache
costs a copy of every byte into it, memory taken from what the machine caches for its own
work, and the final fsync then flushing it all at once. Measured on a 1 GB object, a
buffered write and fsync took 1.6 to 2.9 s, of which 1.3 to 2.5 s kernel CPU (the copy into
fresh page-cache pages); the same write direct took 0.7 to 0.9 s and 0.3 to 0.4 s.

Direct writes need an aligned buffer, length and file offset, so the bytes are gathered in
one page-aligned buffer and written a whole buffer at a time: every offset is then a
multiple of the buffer's size. What is left at the end (less than a buffer, so all of an
object smaller than one) is written the ordinary way. A file system that refuses O_DIRECT
(EINVAL, as tmpfs before Linux 6.6 does) gets ordinary writes throughout."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import mmap
import os
from typing import Protocol

BUFFER = 4 << 20  # a multiple of every logical block size (512 to 4096 bytes)
_O_DIRECT = getattr(os, "O_DIRECT", 0)


class RawFile(Protocol):
    """An unbuffered file (open(..., buffering=0)): its write() is one write(2)."""

    def write(self, data: memoryview, /) -> int | None: ...

    def fileno(self) -> int: ...


class AlignedWriter:
    """Writes what it is given to a file: whole buffers direct, the rest buffered."""

    def __init__(self, handle: RawFile) -> None:
        self._handle = handle
        self._fd = handle.fileno()
        self._buffer = mmap.mmap(-1, BUFFER)  # anonymous mappings start on a page
        self._view = memoryview(self._buffer)
        self._filled = 0
        self.direct = _O_DIRECT != 0 and _set_direct(self._fd, True)

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            take = min(len(view), BUFFER - self._filled)
            self._view[self._filled : self._filled + take] = view[:take]
            self._filled += take
            view = view[take:]
            if self._filled == BUFFER:
                self._flush()

    def finish(self) -> None:
        """Write what is left (ordinarily: its length need not be aligned)."""
        if self.direct:
            _set_direct(self._fd, False)
            self.direct = False
        self._flush()

    def close(self) -> None:
        self._view.release()
        self._buffer.close()

    def _flush(self) -> None:
        done = 0
        while done < self._filled:
            try:
                # released on the way out, even when the write fails, so close() can unmap
                with self._view[done : self._filled] as pending:
                    written = self._handle.write(pending)
            except OSError as exc:
                if not (self.direct and exc.errno == errno.EINVAL):
                    raise
                # this file system takes no direct writes after all: nothing was written
                self.direct = False
                _set_direct(self._fd, False)
                continue
            done += written or 0
            if self.direct and done < self._filled:
                # a short direct write leaves an unaligned offset: go on the ordinary way
                self.direct = False
                _set_direct(self._fd, False)
        self._filled = 0


def _set_direct(fd: int, on: bool) -> bool:
    """Turn O_DIRECT on or off for fd; whether it is on now."""
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    wanted = flags | _O_DIRECT if on else flags & ~_O_DIRECT
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, fcntl.F_SETFL, wanted)
        return on
    return False
