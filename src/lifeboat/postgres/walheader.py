"""The long page header that starts every WAL segment: which cluster wrote it, and how
large its segments are. Pure parsing, no I/O.

XLogLongPageHeaderData (src/include/access/xlog_internal.h), in the server's byte order:

    offset  0  uint16 xlp_magic        WAL format version, one per PostgreSQL major
            2  uint16 xlp_info         flags; XLP_LONG_HEADER on a segment's first page
            4  uint32 xlp_tli          timeline of the page's first record
            8  uint64 xlp_pageaddr     LSN of the page
           16  uint32 xlp_rem_len      continuation bytes of a record from the page before
           20  (4 bytes of padding)
           24  uint64 xlp_sysid        the cluster's system identifier (pg_control)
           32  uint32 xlp_seg_size     WAL segment size (initdb --wal-segsize)
           36  uint32 xlp_xlog_blcksz  WAL page size
"""

from __future__ import annotations

import struct
from typing import Literal, NamedTuple

LONG_HEADER_SIZE = 40
XLP_LONG_HEADER = 0x0002
# XLP_FIRST_IS_CONTRECORD 0x1, XLP_LONG_HEADER 0x2, XLP_BKP_REMOVABLE 0x4 and
# XLP_FIRST_IS_OVERWRITE_CONTRECORD 0x8 (PostgreSQL 15, back-patched to 10): a segment that
# follows a crash which lost a record continued across the segment boundary starts with 0x000A
XLP_ALL_FLAGS = 0x000F

# XLOG_PAGE_MAGIC of each major version; every one so far is 0xDxxx, which also tells the
# byte order. A version this table lacks (newer than this Lifeboat) still parses.
MAJOR_OF_MAGIC = {
    0xD097: 10,
    0xD098: 11,
    0xD101: 12,
    0xD106: 13,
    0xD10D: 14,
    0xD110: 15,
    0xD113: 16,
    0xD116: 17,
    0xD118: 18,
}

_LAYOUT = "HHIQI4xQII"  # struct format without the byte order prefix


class SegmentHeader(NamedTuple):
    magic: int
    info: int
    timeline: int
    page_address: int
    remaining_length: int
    system_identifier: int
    segment_size: int
    block_size: int

    @property
    def major(self) -> int | None:
        """The PostgreSQL major version that wrote the segment, when this Lifeboat knows it."""
        return MAJOR_OF_MAGIC.get(self.magic)


def _byte_order(data: bytes) -> Literal["<", ">"] | None:
    """PostgreSQL writes WAL in the server's byte order, which a streamed segment need not
    share with this host: the magic tells."""
    if int.from_bytes(data[:2], "little") >> 12 == 0xD:
        return "<"
    if int.from_bytes(data[:2], "big") >> 12 == 0xD:
        return ">"
    return None


def _power_of_two_within(value: int, low: int, high: int) -> bool:
    return low <= value <= high and value & (value - 1) == 0


def parse_long_header(data: bytes) -> SegmentHeader:
    """The long header at the start of a WAL segment; ValueError (saying why) when data
    does not start with one."""
    if len(data) < LONG_HEADER_SIZE:
        raise ValueError(
            f"it is {len(data)} bytes long, too short for a WAL page header "
            f"({LONG_HEADER_SIZE} bytes)"
        )
    head = data[:LONG_HEADER_SIZE]
    order = _byte_order(head)
    if order is None:
        raise ValueError(f"it does not start with a WAL page header (magic 0x{head[:2].hex()})")
    header = SegmentHeader(*struct.unpack(order + _LAYOUT, head))
    if not header.info & XLP_LONG_HEADER or header.info & ~XLP_ALL_FLAGS:
        raise ValueError(
            f"its first page has no long WAL page header (xlp_info 0x{header.info:04x})"
        )
    if not _power_of_two_within(header.segment_size, 1 << 20, 1 << 30):
        raise ValueError(f"its page header gives an invalid segment size ({header.segment_size})")
    if not _power_of_two_within(header.block_size, 1 << 10, 1 << 16):
        raise ValueError(f"its page header gives an invalid WAL page size ({header.block_size})")
    return header


def whole_segment_header(name: str, head: bytes, size: int) -> SegmentHeader:
    """The header of the WAL file `name`, `size` bytes long, that starts with head; a
    ValueError saying in one line why it is not a whole segment (archiving one cut short
    would lose the WAL after the cut, and the archive could never take the whole one)."""
    try:
        header = parse_long_header(head)
    except ValueError as exc:
        raise ValueError(f"{name} is not a WAL segment: {exc}; refusing to archive it") from None
    if size != header.segment_size:
        raise ValueError(
            f"{name} is {size} bytes, but its page header gives the segment size "
            f"{header.segment_size}: a truncated or damaged segment, refusing to archive it"
        )
    return header
