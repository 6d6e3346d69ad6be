"""Whether the archived WAL replays without a gap from a backup on: the first missing segment,
the segments a backup needs, timelines followed through their history (wal/continuity.py)."""

from __future__ import annotations

from lifeboat.postgres import wal
from lifeboat.wal.continuity import (
    TimelineSpan,
    continuity,
    recovery_path,
    single_timeline,
)

SIZE = wal.DEFAULT_SEGMENT_SIZE


def seg(timeline: int, number: int) -> wal.Segment:
    return wal.Segment(timeline, number)


def test_a_continuous_archive_reaches_its_newest_segment() -> None:
    found = continuity({1: {2, 3, 4, 5, 6}}, single_timeline(1), 2, 3)
    assert found.missing is None and found.consistent
    assert found.reachable == found.newest == seg(1, 6)


def test_the_first_gap_after_the_backup_is_named_with_the_last_segment_before_it() -> None:
    found = continuity({1: {2, 3, 4, 5, 7, 8, 10}}, single_timeline(1), 2, 3)
    assert (found.missing, found.reachable, found.newest) == (seg(1, 6), seg(1, 5), seg(1, 10))
    assert found.consistent


def test_a_segment_the_backup_needs_is_a_consistency_problem() -> None:
    found = continuity({1: {2, 4, 5}}, single_timeline(1), 2, 4)
    assert found.missing == seg(1, 3) and not found.consistent


def test_segments_before_the_backup_do_not_count() -> None:
    found = continuity({1: {1, 5, 6, 7}}, single_timeline(1), 5, 5)
    assert found.missing is None and found.newest == seg(1, 7)


def test_recovery_path_follows_the_history_file() -> None:
    # 00000003.history: timeline 1 ended at 0/5800000, timeline 2 at 0/8000000 (a boundary)
    history = wal.parse_history("1\t0/5800000\tno recovery target\n2\t0/8000000\tbefore x\n")
    assert recovery_path(3, history, SIZE) == [
        TimelineSpan(1, 0, 5),
        TimelineSpan(2, 5, 7),
        TimelineSpan(3, 8, None),
    ]


def test_continuity_across_timelines_takes_each_segment_from_its_timeline() -> None:
    path = recovery_path(2, wal.parse_history("1\t0/5800000\tend\n"), SIZE)
    # the switch segment 5 is archived only on the new timeline, as after a promotion
    archived = {1: {2, 3, 4, 9}, 2: {5, 6, 7}}
    found = continuity(archived, path, 2, 3)
    # timeline 1's segment 9 is a future recovery does not follow
    assert found.missing is None and found.newest == seg(2, 7)
    found = continuity({1: {2, 3, 4}, 2: {5, 7}}, path, 2, 3)
    assert (found.missing, found.reachable) == (seg(2, 6), seg(2, 5))
    # and a segment of the new timeline missing right at the switch point is named there
    found = continuity({1: {2, 3}, 2: {6, 7}}, path, 2, 3)
    assert found.missing == seg(1, 4)
    found = continuity({1: {2, 3, 4}, 2: {6, 7}}, path, 2, 3)
    assert found.missing == seg(2, 5)
