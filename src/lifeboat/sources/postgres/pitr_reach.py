"""How far the WAL archive takes a point-in-time recovery, decided before anything is
written: the timelines recovery follows (history files considered), the first segment it
would miss, and whether the target lies before that gap. After recovery, the point the
server reached is compared with it."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifeboat.errors import LifeboatError, RestoreError, UsageError
from lifeboat.policy.recovery import parse_time
from lifeboat.postgres import wal
from lifeboat.repo.manifest import Manifest
from lifeboat.storage.base import Storage
from lifeboat.wal.archive import archived_segments, history_names, read_archived
from lifeboat.wal.continuity import (
    Continuity,
    TimelineSpan,
    continuity,
    owner_timeline,
    recovery_path,
    single_timeline,
)

if TYPE_CHECKING:
    from lifeboat.pipeline.crypto import Decryptor
    from lifeboat.policy.recovery import RecoveryTarget

log = logging.getLogger(__name__)

# pg_waldump's description of a commit or abort record, its time printed in UTC (TZ=UTC)
_TRANSACTION_END = re.compile(
    r"desc: (?:COMMIT|ABORT) (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) UTC"
)

# how pg_waldump says the WAL it was given ends
_END_OF_WAL = ("could not find file", "error in WAL record")


@dataclass(frozen=True)
class Reach:
    """What recovery from one base backup can replay, and the target it is given."""

    continuity: Continuity
    segment_size: int
    # the target recovery is configured with: "latest" when --accept-gap took a target
    # beyond the gap back to the gap
    target: RecoveryTarget

    def name(self, segment: wal.Segment | None) -> str | None:
        return None if segment is None else segment.name(self.segment_size)

    def gap_text(self) -> str | None:
        """For an accepted gap: how far recovery goes, and which segment stops it."""
        found = self.continuity
        if found.missing is None:
            return None
        missing = f"segment {self.name(found.missing)} is missing"
        if self.target.kind == "latest":
            return f"recovers only up to {self.name(found.reachable)}: {missing}"
        return f"recovery can go no further than {self.name(found.reachable)}: {missing}"

    def summary(self) -> dict[str, Any]:
        found = self.continuity
        return {
            "archive_end": self.name(found.newest),
            "gap": None
            if found.missing is None
            else {
                "missing": self.name(found.missing),
                "recovers_up_to": self.name(found.reachable),
                "message": self.gap_text(),
            },
        }

    def shortfall(self, replay_lsn: int | None) -> str | None:
        """What recovery to the end of the archive fell short of, from the server's last
        replayed LSN; None when it reached the last segment it could."""
        expected = self.continuity.reachable
        if self.target.kind != "latest" or expected is None or replay_lsn is None:
            # a named target is checked by the server itself: since PostgreSQL 13 recovery
            # that ends before its target stops with a FATAL instead of promoting
            return None
        # the end of the last record: a WAL switch record's end is the next segment's start
        achieved = max(replay_lsn - 1, 0) // self.segment_size
        if achieved >= expected.number:
            return None
        reached = wal.Segment(expected.timeline, achieved).name(self.segment_size)
        return (
            f"recovery ended at {wal.format_lsn(replay_lsn)} in segment {reached}, before the "
            f"archive's WAL up to {self.name(expected)}: a segment after {reached} is damaged "
            "or does not continue it"
        )


def timeline_path(
    storage: Storage,
    source: str,
    manifest: Manifest,
    timeline: str,
    decryptor_for: Callable[[str], Decryptor],
) -> list[TimelineSpan]:
    """The timelines recovery_target_timeline = `timeline` makes recovery from manifest
    follow, from the archived history files."""
    span = manifest.physical
    assert span is not None
    names = set(history_names(storage, source))
    if timeline == "current":
        target = span.timeline
    elif timeline == "latest":
        # as PostgreSQL does: the highest timeline whose history file follows without a hole
        target = span.timeline
        while wal.history_name(target + 1) in names:
            target += 1
    else:
        try:
            target = int(timeline)
        except ValueError:
            raise UsageError(
                f"--timeline {timeline!r} is not latest, current or a number"
            ) from None
    if target == span.timeline:
        return single_timeline(target)
    if wal.history_name(target) not in names:
        raise RestoreError(f"the WAL archive holds no history file for timeline {target}")
    text = read_archived(storage, source, wal.history_name(target), decryptor_for)
    try:
        history = wal.parse_history(text.decode("utf-8", errors="replace"))
    except ValueError as exc:
        raise RestoreError(f"{wal.history_name(target)} in the archive is damaged: {exc}") from None
    path = recovery_path(target, history, span.segment_size)
    start = wal.Segment.parse(span.start_wal, span.segment_size).number
    if not any(s.timeline == span.timeline and s.covers(start) for s in path):
        raise RestoreError(
            f"timeline {target} does not continue backup {manifest.id} (timeline "
            f"{span.timeline}, {span.start_wal}): choose another --timeline or --backup"
        )
    return path


def plan_reach(
    storage: Storage,
    source: str,
    manifest: Manifest,
    target: RecoveryTarget,
    decryptor_for: Callable[[str], Decryptor],
    pg_waldump: Callable[[], str],
    *,
    accept_gap: bool = False,
) -> Reach:
    """Refuse, before anything is written, a recovery the archive cannot take to its target:
    a segment missing before the backup is consistent, or a gap before the target (with
    accept_gap: recover up to the gap instead). pg_waldump() names the tool that reads the
    commit times a time target is compared with."""
    span = manifest.physical
    assert span is not None
    size = span.segment_size
    path = timeline_path(storage, source, manifest, target.timeline, decryptor_for)
    first = wal.Segment.parse(span.start_wal, size).number
    last = wal.Segment.parse(span.stop_wal, size).number
    found = continuity(archived_segments(storage, source, size), path, first, last)
    if found.missing is not None and not found.consistent:
        raise RestoreError(
            f"cannot restore {manifest.id}: WAL segment {found.missing.name(size)}, needed "
            "to make the backup consistent, is missing"
        )
    assert found.newest is not None  # the backup's own segments are there
    blocked = _blocking_segment(found, target, size)
    if blocked is not None and target.kind == "time":
        assert found.reachable is not None and target.value is not None
        before_gap = [
            wal.Segment(owner_timeline(path, n), n).name(size)
            for n in range(found.reachable.number, first - 1, -1)
        ]
        if _time_before_gap(storage, source, before_gap, target.value, decryptor_for, pg_waldump):
            blocked = None
    if blocked is None:
        return Reach(dataclasses.replace(found, missing=None), size, target)
    missing, why = blocked
    reachable = found.reachable if found.missing == missing else found.newest
    assert reachable is not None
    if not accept_gap:
        raise RestoreError(
            f"{why}: segment {missing.name(size)} is missing from the archive, so recovery "
            f"stops at {reachable.name(size)}; put the segment back into the archive, or pass "
            "--accept-gap to recover only up to the gap"
        )
    gap = dataclasses.replace(found, missing=missing, reachable=reachable)
    if target.kind in ("time", "lsn") and target.action != "promote":
        # recovery up to the gap ends at the end of the WAL, where only promotion is
        # possible: the pause or shutdown asked for would silently not happen
        raise UsageError(
            f"{why}: segment {missing.name(size)} is missing, and --accept-gap recovers up "
            f"to the gap and promotes there, so --target-action {target.action} cannot "
            f"apply: drop it, or choose a target before {missing.name(size)}"
        )
    if target.kind in ("latest", "time", "lsn"):
        # the target lies beyond the gap: recover all there is, up to the gap
        target = dataclasses.replace(target, kind="latest", value=None, action="promote")
    reach = Reach(gap, size, target)
    log.warning("--accept-gap: %s", reach.gap_text())
    return reach


def _blocking_segment(
    found: Continuity, target: RecoveryTarget, size: int
) -> tuple[wal.Segment, str] | None:
    """The missing segment that may keep recovery from its target, with why it is
    needed; None when the target lies before any gap (a time target is then looked at
    closer)."""
    assert found.newest is not None
    if target.kind == "immediate":
        return None  # the backup's end, which is there
    if target.kind == "lsn":
        assert target.value is not None
        wanted = wal.parse_lsn(target.value) // size
        why = f"the archive cannot reach LSN {target.value}"
        if found.missing is not None and found.missing.number <= wanted:
            return found.missing, why
        if wanted > found.newest.number:
            return found.newest.next(), why
        return None
    if found.missing is None:
        return None
    if target.kind == "latest":
        return found.missing, "the WAL archive has a gap"
    if target.kind == "time":
        return found.missing, f"the archive cannot reach {target.value}"
    # an xid or a restore point: where it lies in the WAL is not known before replaying it
    return found.missing, f"the WAL archive has a gap, and --to-{target.kind} may lie beyond it"


def _time_before_gap(
    storage: Storage,
    source: str,
    segments: list[str],
    moment: str,
    decryptor_for: Callable[[str], Decryptor],
    pg_waldump: Callable[[], str],
) -> bool:
    """Whether recovery to `moment` ends before the gap: a transaction that replay reaches
    ended after it (recovery stops at the first such one). The newest of `segments` (the
    ones before the gap, newest first) that holds any commit or abort tells."""
    wanted = parse_time(moment)
    for segment in segments:
        try:
            ends = transaction_end_times(storage, source, segment, decryptor_for, pg_waldump())
        except LifeboatError as exc:
            raise RestoreError(
                f"cannot tell whether {moment} lies before the gap in the WAL archive ({exc}); "
                "pass --accept-gap to recover up to the gap"
            ) from None
        if ends:
            return max(ends) > wanted
    return False


def transaction_end_times(
    storage: Storage,
    source: str,
    segment: str,
    decryptor_for: Callable[[str], Decryptor],
    pg_waldump: str,
) -> list[datetime]:
    """The times of the commits and aborts in one archived segment (pg_waldump reads it
    from a private temporary folder, removed at once)."""
    data = read_archived(storage, source, segment, decryptor_for)
    with tempfile.TemporaryDirectory(prefix="lifeboat-waldump-") as folder:
        (Path(folder) / segment).write_bytes(data)
        dumped = subprocess.run(
            [pg_waldump, "--rmgr=Transaction", f"--path={folder}", segment],
            capture_output=True,
            text=True,
            env={**os.environ, "TZ": "UTC"},
        )
    # pg_waldump exits 1 where the WAL it was given ends (it looks for the next segment,
    # or meets the zeroes after the last record): only another error, with nothing read,
    # is a failure (such as WAL of another major version)
    if dumped.returncode != 0 and not dumped.stdout:
        detail = dumped.stderr.strip().splitlines()
        if not any(end in line for line in detail for end in _END_OF_WAL):
            raise RestoreError(f"pg_waldump cannot read {segment}: {detail[-1] if detail else ''}")
    return [
        datetime.fromisoformat(match[1]).replace(tzinfo=UTC)
        for match in _TRANSACTION_END.finditer(dumped.stdout)
    ]
