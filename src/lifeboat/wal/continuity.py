"""Which WAL segments recovery from a base backup reads, and how far the archive takes it.

Pure functions over segment numbers and parsed history files; no I/O. verify and restore
both ask continuity(), so they agree on where a gap is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from lifeboat.postgres import wal


class TimelineSpan(NamedTuple):
    """Recovery reads segments first..last (last None: to the end) of this timeline."""

    timeline: int
    first: int
    last: int | None

    def covers(self, number: int) -> bool:
        return self.first <= number and (self.last is None or number <= self.last)


def single_timeline(timeline: int) -> list[TimelineSpan]:
    """The path of a recovery that stays on one timeline."""
    return [TimelineSpan(timeline, 0, None)]


def recovery_path(
    target: int, history: list[wal.Switch], segment_size: int = wal.DEFAULT_SEGMENT_SIZE
) -> list[TimelineSpan]:
    """The timelines recovery into `target` follows, oldest first, from the target
    timeline's history file (its ancestors and where each one ended). A segment holding a
    switch point is on both sides: the parent's copy holds the WAL up to it and the child's
    starts with that same WAL, so either serves."""
    spans: list[TimelineSpan] = []
    first = 0
    for switch in history:
        last = (switch.lsn - 1) // segment_size
        spans.append(TimelineSpan(switch.parent, first, last))
        first = switch.lsn // segment_size
    spans.append(TimelineSpan(target, first, None))
    return spans


@dataclass(frozen=True)
class Continuity:
    """How far the archive takes recovery from a base backup along a timeline path."""

    # the first segment recovery needs that the archive lacks (None: nothing missing)
    missing: wal.Segment | None
    # the last segment recovery replays: the one before `missing`, else the newest
    reachable: wal.Segment | None
    # the newest archived segment on the path
    newest: wal.Segment | None
    # False: `missing` is one the backup needs to become consistent
    consistent: bool


def owner_timeline(path: list[TimelineSpan], number: int) -> int:
    """The timeline recovery reads segment `number` from: the newest one covering it."""
    return next(s.timeline for s in reversed(path) if s.covers(number))


def continuity(
    archived: dict[int, set[int]], path: list[TimelineSpan], first: int, needed_until: int
) -> Continuity:
    """Walk the segments from the backup's first (`first`) to the newest archived one on
    `path`; segments up to `needed_until` (the backup's end) make the backup consistent."""
    path = [s for s in path if s.last is None or s.last >= first]
    if not path or not path[0].covers(first):
        # the backup's timeline is not on the path: nothing on it is reachable
        return Continuity(None, None, None, consistent=True)

    def have(number: int) -> bool:
        return any(s.covers(number) and number in archived.get(s.timeline, ()) for s in path)

    def at(number: int) -> wal.Segment:
        return wal.Segment(owner_timeline(path, number), number)

    on_path = [n for s in path for n in archived.get(s.timeline, ()) if s.covers(n) and n >= first]
    newest = at(max(on_path)) if on_path else None
    end = max(needed_until, newest.number if newest else needed_until)
    for number in range(first, end + 1):
        if not have(number):
            reachable = at(number - 1) if number > first else None
            return Continuity(at(number), reachable, newest, consistent=number > needed_until)
    return Continuity(None, newest, newest, consistent=True)
