"""Which archived WAL files a set of kept physical backups no longer needs: pure.

Recovery from a base backup replays WAL from the segment the backup started in onwards, so
WAL older than the start of the oldest kept physical backup serves no restore. Everything
from there on is kept, whatever its timeline: the backups' own WAL (needed for consistency)
and the WAL after them (needed for point-in-time recovery). History files are tiny and
tell timelines apart; they are always kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from lifeboat.postgres.wal import DEFAULT_SEGMENT_SIZE, Segment, is_history_name


class WalExpiry(NamedTuple):
    boundary: str | None  # the oldest segment kept (None: nothing expires)
    expired: list[str]  # archive file names older than it


def _segment_number(name: str, segment_size: int) -> int | None:
    """The segment a segment, .partial or .backup file belongs to."""
    if is_history_name(name):
        return None
    try:
        return Segment.parse(name[:24], segment_size).number
    except ValueError:
        return None


def expire_wal(
    names: Iterable[str],
    kept_backup_starts: Iterable[str],
    segment_size: int = DEFAULT_SEGMENT_SIZE,
) -> WalExpiry:
    """The archive file names older than the oldest start among kept_backup_starts (the
    start_wal of each kept physical backup). Without a kept physical backup nothing expires:
    the WAL may belong to a base backup still being taken."""
    starts = [Segment.parse(start, segment_size) for start in kept_backup_starts]
    if not starts:
        return WalExpiry(None, [])
    oldest = min(starts, key=lambda segment: segment.number)
    expired = []
    for name in names:
        number = _segment_number(name, segment_size)
        if number is not None and number < oldest.number:
            expired.append(name)
    return WalExpiry(oldest.name(segment_size), sorted(expired))
