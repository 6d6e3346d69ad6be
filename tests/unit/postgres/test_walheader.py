"""The long page header of a WAL segment (real segments of PostgreSQL 15 and 17, of several
sizes, are parsed in tests/integration/test_cluster_identity.py)."""

from __future__ import annotations

import pytest

from lifeboat.postgres.walheader import parse_long_header, whole_segment_header
from tests.walfiles import (
    AFTER_LOST_CONTRECORD,
    PG15_MAGIC,
    PG17_MAGIC,
    SYSTEM_ID,
    long_header,
    segment_bytes,
)


@pytest.mark.parametrize(("magic", "major"), [(PG15_MAGIC, 15), (PG17_MAGIC, 17)])
@pytest.mark.parametrize("segment_size", [1 << 20, 16 << 20, 1 << 30])
def test_a_segment_says_its_cluster_version_and_size(
    magic: int, major: int, segment_size: int
) -> None:
    header = parse_long_header(
        long_header(magic=magic, segment_size=segment_size, page_address=0x3000000)
    )
    assert header.system_identifier == SYSTEM_ID
    assert header.segment_size == segment_size
    assert header.major == major
    assert header.block_size == 8192
    assert header.page_address == 0x3000000
    assert header.timeline == 1


def test_a_big_endian_server_s_segment_parses_too() -> None:
    header = parse_long_header(long_header(byte_order=">", segment_size=64 << 20))
    assert (header.system_identifier, header.segment_size, header.major) == (
        SYSTEM_ID,
        64 << 20,
        17,
    )


@pytest.mark.parametrize("info", [0x0002, 0x0003, 0x0006, *AFTER_LOST_CONTRECORD, 0x000F])
def test_every_flag_postgresql_sets_on_a_first_page_is_accepted(info: int) -> None:
    assert parse_long_header(long_header(info=info)).info == info


def test_a_wal_format_newer_than_lifeboat_still_parses_without_a_version() -> None:
    header = parse_long_header(long_header(magic=0xD130))
    assert header.major is None and header.system_identifier == SYSTEM_ID


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (long_header()[:39], "39 bytes long, too short"),
        (bytes(40), "does not start with a WAL page header (magic 0x0000)"),
        (b"%PDF-1.7\n" + bytes(31), "does not start with a WAL page header"),
        (long_header(info=0), "no long WAL page header (xlp_info 0x0000)"),
        (long_header(info=0x0012), "no long WAL page header (xlp_info 0x0012)"),
        (long_header(info=0x0008), "no long WAL page header (xlp_info 0x0008)"),
        (long_header(info=0x001A), "no long WAL page header (xlp_info 0x001a)"),
        (long_header(segment_size=3 << 20), "invalid segment size (3145728)"),
        (long_header(segment_size=1 << 31), "invalid segment size"),
        (long_header(block_size=100), "invalid WAL page size (100)"),
    ],
)
def test_what_is_not_a_long_page_header_says_why(data: bytes, why: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_long_header(data)
    assert why in str(caught.value)


def test_a_whole_segment_has_the_size_its_header_gives() -> None:
    name = "000000010000000000000003"
    whole = segment_bytes(size=1 << 20)
    assert whole_segment_header(name, whole[:40], len(whole)).segment_size == 1 << 20
    with pytest.raises(ValueError) as caught:
        whole_segment_header(name, whole[:40], 8192)
    assert str(caught.value) == (
        f"{name} is 8192 bytes, but its page header gives the segment size 1048576: "
        "a truncated or damaged segment, refusing to archive it"
    )
    with pytest.raises(ValueError) as caught:
        whole_segment_header(name, bytes(40), 1 << 20)
    assert str(caught.value).startswith(f"{name} is not a WAL segment: it does not start")
