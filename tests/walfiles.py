"""WAL files for tests that run no server: the long page header PostgreSQL writes at the
start of every segment (see src/lifeboat/postgres/walheader.py), then WAL-like bytes."""

from __future__ import annotations

import random
import struct
from pathlib import Path

from lifeboat.postgres.wal import is_whole_segment_name

SYSTEM_ID = 7316872931234567890
OTHER_SYSTEM_ID = 7316873055512345678
PG15_MAGIC = 0xD110
PG17_MAGIC = 0xD116
XLP_LONG_HEADER = 0x0002
# the first page after a crash that lost a record continued across the segment boundary
# (XLP_FIRST_IS_OVERWRITE_CONTRECORD | XLP_LONG_HEADER, with XLP_FIRST_IS_CONTRECORD or not)
AFTER_LOST_CONTRECORD = (0x000A, 0x000B)
SMALLEST_SEGMENT = 1 << 20  # initdb --wal-segsize=1: keeps the tests fast


def long_header(
    *,
    system_identifier: int = SYSTEM_ID,
    segment_size: int = SMALLEST_SEGMENT,
    magic: int = PG17_MAGIC,
    info: int = XLP_LONG_HEADER,
    block_size: int = 8192,
    page_address: int = 0,
    byte_order: str = "<",
) -> bytes:
    return struct.pack(
        byte_order + "HHIQI4xQII",
        magic,
        info,
        1,
        page_address,
        0,
        system_identifier,
        segment_size,
        block_size,
    )


def segment_bytes(
    *,
    size: int = SMALLEST_SEGMENT,
    seed: int = 1,
    system_identifier: int = SYSTEM_ID,
    written: int | None = None,
    magic: int = PG17_MAGIC,
    info: int = XLP_LONG_HEADER,
) -> bytes:
    """A whole segment: its header, `written` bytes of varied records (a quarter of it by
    default), zeros after them as in a segment PostgreSQL has not filled."""
    written = size // 4 if written is None else written
    body = bytearray(size)
    body[:written] = (random.Random(seed).randbytes(64) * (written // 64 + 1))[:written]
    body[:40] = long_header(
        system_identifier=system_identifier, segment_size=size, magic=magic, info=info
    )
    return bytes(body)


def segment_file(folder: Path, name: str, **options: int) -> Path:
    """folder/name holding segment_bytes(**options)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(segment_bytes(**options))
    return path


def wal_file(folder: Path, name: str, seed: int = 1, size: int = SMALLEST_SEGMENT) -> Path:
    """folder/name as PostgreSQL's archiver hands it over: a whole segment (with its page
    header) for a segment or .partial name, else (a history file, a backup label, a stray
    file) `size` bytes of WAL-like content: a quarter varied, then zeros."""
    if is_whole_segment_name(name):
        return segment_file(folder, name, size=size, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    body = bytearray(size)
    body[: size // 4] = (random.Random(seed).randbytes(64) * (size // 256))[: size // 4]
    body[0] = seed % 256
    path = folder / name
    path.write_bytes(bytes(body))
    return path
