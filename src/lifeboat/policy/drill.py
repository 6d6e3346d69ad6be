"""What a drill concludes, as pure functions of what it measured and the objectives: which
backup to drill, and the verdict with every reason (DESIGN.md: status, metrics, reports and
alerts then agree, because they all call these)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from lifeboat.errors import BackupNotFoundError, UsageError
from lifeboat.policy.retention import duration_text, parse_duration
from lifeboat.repo.drills import CheckResult, TableComparison
from lifeboat.repo.manifest import Manifest

Pick = Literal["latest", "oldest", "random"]


@dataclass(frozen=True)
class Objectives:
    rto: timedelta | None = None
    rpo: timedelta | None = None

    @classmethod
    def parse(cls, rto: str | None, rpo: str | None) -> Objectives:
        return cls(
            parse_duration(rto) if rto else None,
            parse_duration(rpo) if rpo else None,
        )

    def as_seconds(self) -> dict[str, float | None]:
        return {
            "rto_seconds": self.rto.total_seconds() if self.rto else None,
            "rpo_seconds": self.rpo.total_seconds() if self.rpo else None,
        }


def pick_backups(
    manifests: Sequence[Manifest],
    how: Pick,
    *,
    within: timedelta | None,
    now: datetime,
    chooser: random.Random | None = None,
    until: datetime | None = None,
) -> list[Manifest]:
    """One backup of each type the source has (safety backups of restores left out): the
    newest, the oldest, or one at random; `within` keeps only those finished that recently;
    `until` (a recovery target time) only the physical backups that recovery can stop at it,
    those finished by then."""
    candidates = [m for m in manifests if not m.safety]
    if within is not None:
        candidates = [m for m in candidates if now - m.finished_at <= within]
    if until is not None:
        candidates = [m for m in candidates if m.physical is not None and m.finished_at <= until]
    chosen = []
    for kind in sorted({m.type for m in candidates}):
        of_kind = sorted((m for m in candidates if m.type == kind), key=lambda m: m.id)
        if how == "latest":
            chosen.append(of_kind[-1])
        elif how == "oldest":
            chosen.append(of_kind[0])
        else:
            chosen.append((chooser or random.SystemRandom()).choice(of_kind))
    if not chosen:
        spans = [f"in the last {duration_text(within)}"] if within is not None else []
        spans += [f"by {until.isoformat()}"] if until is not None else []
        what = "physical backup" if until is not None else "backup"
        finished = f" finished {' and '.join(spans)}" if spans else ""
        raise BackupNotFoundError(f"no {what}{finished} to drill")
    return chosen


def check_reaches(manifest: Manifest, until: datetime) -> None:
    """A backup named for a drill to a recovery target time must be able to stop there:
    physical, and finished by then (recovery cannot stop inside the backup). Else a usage
    error, not a failed drill recorded against a good backup."""
    if manifest.physical is None:
        raise UsageError(f"--to-time recovers a physical backup; {manifest.id} is {manifest.type}")
    if manifest.finished_at > until:
        raise UsageError(
            f"backup {manifest.id} finished at {manifest.finished_at.isoformat()}, after "
            f"--to-time {until.isoformat()}: recovery cannot stop before a backup's end"
        )


# what a drill's evidence compares, per kind as people name it: the parts and what is
# counted in each (a PostgreSQL or SQLite backup's tables and rows by default)
EVIDENCE_UNITS: dict[str, tuple[str, str]] = {
    "redis": ("databases", "keys"),
    "files": ("paths", "entries"),
}


def evidence_units(kind: str) -> tuple[str, str]:
    """(parts, what is counted in each) of a drill of a backup of kind."""
    return EVIDENCE_UNITS.get(kind, ("tables", "rows"))


def verdict_reasons(
    *,
    problems: Sequence[str],
    tables: Sequence[TableComparison],
    checks: Sequence[CheckResult],
    rto_seconds: float | None,
    rpo_seconds: float | None,
    objectives: Objectives,
    kind: str = "logical",
) -> list[str]:
    """Every reason the drill fails; none means it passed (kind: the backup's, which names
    what its evidence counts). A drill passes only when the
    restore succeeded, the evidence matched, every check returned true and RTO and RPO are
    within their objectives."""
    reasons = list(problems)
    counted = evidence_units(kind)[1]
    reasons += [
        f"{t.table}: {'missing' if t.actual is None else t.actual} {counted}, backup has "
        f"{t.expected}"
        for t in tables
        if not t.ok
    ]
    reasons += [f"check {c.name!r} failed: {c.message}" for c in checks if not c.ok]
    if rto_seconds is None:
        reasons.append(
            "no recovery time measured: the restore did not end in a copy that matches the backup"
        )
    elif objectives.rto is not None and rto_seconds > objectives.rto.total_seconds():
        reasons.append(
            f"recovery took {seconds_text(rto_seconds)}, over the RTO objective of "
            f"{duration_text(objectives.rto)}"
        )
    if (
        rpo_seconds is not None
        and objectives.rpo is not None
        and rpo_seconds > objectives.rpo.total_seconds()
    ):
        reasons.append(
            f"{seconds_text(rpo_seconds)} of changes would have been lost, over the RPO "
            f"objective of {duration_text(objectives.rpo)}"
        )
    return reasons


def seconds_text(seconds: float) -> str:
    """A measured duration as people read it: 42.3 s, 12 min 5 s, 3 h 2 min, 4 d 3 h."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    for unit, size, sub, sub_size in (
        ("d", 86400, "h", 3600),
        ("h", 3600, "min", 60),
        ("min", 60, "s", 1),
    ):
        if whole >= size:
            rest = (whole % size) // sub_size
            return f"{whole // size} {unit}" + (f" {rest} {sub}" if rest else "")
    return f"{whole} s"
