"""Pure WAL arithmetic: LSNs, segment names, timelines and history files. No I/O."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024

_SEGMENT = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$")
_HISTORY = re.compile(r"^([0-9A-F]{8})\.history$")
_PARTIAL = re.compile(r"^([0-9A-F]{24})\.partial$")
_BACKUP_LABEL = re.compile(r"^([0-9A-F]{24})\.([0-9A-F]{8})\.backup$")
_LSN = re.compile(r"^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$")


def parse_lsn(text: str) -> int:
    """'16/B374D848' -> 0x16B374D848."""
    match = _LSN.match(text.strip())
    if not match:
        raise ValueError(f"invalid LSN {text!r} (expected like 16/B374D848)")
    return (int(match[1], 16) << 32) | int(match[2], 16)


def format_lsn(lsn: int) -> str:
    if not 0 <= lsn < 1 << 64:
        raise ValueError(f"LSN out of range: {lsn}")
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def _check_segment_size(segment_size: int) -> int:
    if segment_size < 1 << 20 or segment_size > 1 << 30 or segment_size & (segment_size - 1):
        raise ValueError(f"invalid WAL segment size {segment_size}: a power of two, 1 MiB..1 GiB")
    return segment_size


def segments_per_xlogid(segment_size: int) -> int:
    return (1 << 32) // _check_segment_size(segment_size)


class Segment(NamedTuple):
    """A WAL segment file: timeline + segment number (in units of segment_size)."""

    timeline: int
    number: int

    @classmethod
    def parse(cls, name: str, segment_size: int = DEFAULT_SEGMENT_SIZE) -> Segment:
        match = _SEGMENT.match(name)
        if not match:
            raise ValueError(f"{name!r} is not a WAL segment name")
        timeline, log, seg = (int(part, 16) for part in match.groups())
        per_id = segments_per_xlogid(segment_size)
        if timeline == 0 or seg >= per_id:
            raise ValueError(f"{name!r} is not a WAL segment name for {segment_size} byte segments")
        return cls(timeline, log * per_id + seg)

    @classmethod
    def of_lsn(cls, timeline: int, lsn: int, segment_size: int = DEFAULT_SEGMENT_SIZE) -> Segment:
        return cls(timeline, lsn // _check_segment_size(segment_size))

    def name(self, segment_size: int = DEFAULT_SEGMENT_SIZE) -> str:
        per_id = segments_per_xlogid(segment_size)
        return f"{self.timeline:08X}{self.number // per_id:08X}{self.number % per_id:08X}"

    def start_lsn(self, segment_size: int = DEFAULT_SEGMENT_SIZE) -> int:
        return self.number * _check_segment_size(segment_size)

    def next(self) -> Segment:
        return Segment(self.timeline, self.number + 1)


def segments_between(
    timeline: int, start_lsn: int, end_lsn: int, segment_size: int = DEFAULT_SEGMENT_SIZE
) -> Iterator[Segment]:
    """Every segment holding WAL from start_lsn to end_lsn (both included) on one timeline."""
    if end_lsn < start_lsn:
        raise ValueError("end LSN before start LSN")
    first = Segment.of_lsn(timeline, start_lsn, segment_size).number
    last = Segment.of_lsn(timeline, end_lsn, segment_size).number
    for number in range(first, last + 1):
        yield Segment(timeline, number)


def is_segment_name(name: str) -> bool:
    return bool(_SEGMENT.match(name))


def is_history_name(name: str) -> bool:
    return bool(_HISTORY.match(name))


def is_partial_name(name: str) -> bool:
    return bool(_PARTIAL.match(name))


def is_whole_segment_name(name: str) -> bool:
    """A segment or a `.partial` one: a whole segment's size, starting with a page header
    (unlike `.history` and `.backup` files)."""
    return is_segment_name(name) or is_partial_name(name)


def is_backup_label_name(name: str) -> bool:
    return bool(_BACKUP_LABEL.match(name))


def history_name(timeline: int) -> str:
    return f"{timeline:08X}.history"


def timeline_of_name(name: str) -> int:
    """The timeline a WAL archive file belongs to (segment, partial, history, backup label)."""
    for pattern in (_SEGMENT, _HISTORY, _PARTIAL, _BACKUP_LABEL):
        match = pattern.match(name)
        if match:
            return int(match[1][:8], 16)
    raise ValueError(f"{name!r} is not a WAL archive file name")


class Switch(NamedTuple):
    """One line of a timeline history file: `parent` ended at `lsn`, for `reason`."""

    parent: int
    lsn: int
    reason: str


def parse_history(text: str) -> list[Switch]:
    """Parse a `<timeline>.history` file: tab-separated `parent LSN reason` lines."""
    switches = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(None, 2)
        if len(fields) < 2:
            raise ValueError(f"history line {number} is not 'timeline LSN reason': {raw!r}")
        switches.append(
            Switch(int(fields[0]), parse_lsn(fields[1]), fields[2] if len(fields) > 2 else "")
        )
    parents = [s.parent for s in switches]
    if parents != sorted(set(parents)):
        raise ValueError("history file timelines are not increasing")
    return switches


def timeline_at(history: list[Switch], timeline: int, lsn: int) -> int:
    """Which timeline of the ancestry ending in `timeline` holds lsn."""
    for switch in history:
        if lsn < switch.lsn:
            return switch.parent
    return timeline


def is_archive_name(name: str) -> bool:
    """A file the WAL archive takes: segment, .partial, .history or .backup."""
    return (
        is_segment_name(name)
        or is_partial_name(name)
        or is_history_name(name)
        or is_backup_label_name(name)
    )


def check_archive_name(name: str) -> str:
    """name, if it is a file the WAL archive takes (it becomes part of keys and paths)."""
    from lifeboat.errors import UsageError

    if not is_archive_name(name):
        raise UsageError(f"{name!r} is not a WAL segment, .partial, .history or .backup file name")
    return name
