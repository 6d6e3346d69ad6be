"""zstd stages: standard frames with content checksums, so `zstd -d` can read them."""

from __future__ import annotations

import os
from typing import Any, Protocol

import zstandard

from lifeboat.pipeline.checksum import Readable, Writable

READ_SIZE = 1 << 20


class Compression(Protocol):
    """The zstd settings of a write (the configuration's [compression] table is one)."""

    @property
    def level(self) -> int: ...

    @property
    def threads(self) -> int: ...


def compressing_reader(source: Readable, level: int, threads: int) -> Any:
    """A readable that yields the zstd compression of source, pulled on demand."""
    workers = threads or (os.cpu_count() or 1)
    compressor = zstandard.ZstdCompressor(level=level, threads=workers, write_checksum=True)
    return compressor.stream_reader(source, read_size=READ_SIZE)  # type: ignore[arg-type]


def decompressing_writer(sink: Writable) -> Any:
    """A writable that decompresses what it is given into sink."""
    decompressor = zstandard.ZstdDecompressor()
    return decompressor.stream_writer(sink, write_size=READ_SIZE, closefd=False)  # type: ignore[arg-type]


ZstdError = zstandard.ZstdError
