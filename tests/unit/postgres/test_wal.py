"""WAL arithmetic against values PostgreSQL itself prints (pg_walfile_name, pg_lsn)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifeboat.postgres import wal

SIZES = st.sampled_from([1 << 20, 16 << 20, 64 << 20, 1 << 30])


def test_lsn_round_trip_examples() -> None:
    assert wal.parse_lsn("16/B374D848") == 0x16B374D848
    assert wal.format_lsn(0x16B374D848) == "16/B374D848"
    assert wal.parse_lsn("0/0") == 0
    with pytest.raises(ValueError):
        wal.parse_lsn("16B374D848")


@given(st.integers(min_value=0, max_value=(1 << 64) - 1))
def test_lsn_round_trip(lsn: int) -> None:
    assert wal.parse_lsn(wal.format_lsn(lsn)) == lsn


def test_segment_names_match_postgres() -> None:
    # SELECT pg_walfile_name('16/B374D848') on timeline 1 with 16 MiB segments
    segment = wal.Segment.of_lsn(1, wal.parse_lsn("16/B374D848"))
    assert segment.name() == "0000000100000016000000B3"
    assert wal.Segment.parse("0000000100000016000000B3") == segment
    # the last segment of one xlogid is followed by the first of the next
    last = wal.Segment.parse("0000000100000016000000FF")
    assert last.next().name() == "000000010000001700000000"
    # with 64 MiB segments there are only 64 per xlogid
    assert wal.Segment.parse("00000002000000000000003F", 64 << 20).next().name(64 << 20) == (
        "000000020000000100000000"
    )
    with pytest.raises(ValueError):
        wal.Segment.parse("000000020000000000000040", 64 << 20)


@given(st.integers(1, 0xFFFFFFFF), st.integers(0, (1 << 63) - 1), SIZES)
def test_segment_name_round_trip(timeline: int, lsn: int, size: int) -> None:
    segment = wal.Segment.of_lsn(timeline, lsn, size)
    assert wal.Segment.parse(segment.name(size), size) == segment
    assert segment.start_lsn(size) <= lsn < segment.next().start_lsn(size)
    assert wal.timeline_of_name(segment.name(size)) == timeline


@given(st.integers(0, 1 << 40), st.integers(0, 1 << 32), SIZES)
def test_segments_between_covers_the_range(start: int, length: int, size: int) -> None:
    segments = list(wal.segments_between(3, start, start + length, size))
    assert segments[0].start_lsn(size) <= start
    assert segments[-1].next().start_lsn(size) > start + length
    assert all(b.number == a.number + 1 for a, b in itertools.pairwise(segments))


def test_archive_file_kinds() -> None:
    assert wal.is_segment_name("000000010000000000000001")
    assert not wal.is_segment_name("000000010000000000000001.partial")
    assert wal.is_partial_name("000000010000000000000001.partial")
    assert wal.is_history_name("00000002.history") and wal.history_name(2) == "00000002.history"
    assert wal.is_backup_label_name("000000010000000000000002.00000028.backup")
    assert wal.timeline_of_name("0000000A.history") == 10
    with pytest.raises(ValueError):
        wal.timeline_of_name("archive_status")


def test_history_file() -> None:
    text = "1\t0/3000000\tno recovery target specified\n\n2\t0/5000A28\tbefore 2026-03-03 14:30\n"
    history = wal.parse_history(text)
    assert history == [
        wal.Switch(1, 0x3000000, "no recovery target specified"),
        wal.Switch(2, 0x5000A28, "before 2026-03-03 14:30"),
    ]
    assert wal.timeline_at(history, 3, 0x2FFFFFF) == 1
    assert wal.timeline_at(history, 3, 0x3000000) == 2
    assert wal.timeline_at(history, 3, 0x6000000) == 3
    with pytest.raises(ValueError):
        wal.parse_history("2\t0/1\tx\n1\t0/2\ty\n")
