"""The facts of a compliance report (`lifeboat report`), apart from how they are shown.

report.py gathers them from the repositories alone (no database is contacted, so another
machine with read access to the repositories produces the same report); report_html.py,
report_markdown.py and `to_json` present them. Every time is timezone-aware UTC; a period
is half-open, [start, end).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any, Literal

# pass: the evidence shows the control met over the whole period. fail: an exception is
# named. no-data: nothing in the period to judge by (a report of an empty period says
# so instead of passing). not-applicable: the configuration does not ask for it (no
# objective, no PITR window).
ControlStatus = Literal["pass", "fail", "no-data", "not-applicable"]

# the controls, in the order a report lists them
CONTROL_IDS = (
    "frequency",  # backups at the expected frequency
    "encryption",  # every backup encrypted, to whom
    "offsite",  # a copy in another repository
    "retention",  # the GFS grid of the last 7 years covered as the policy promises
    "drills",  # a passed restore drill in each quarter
    "verification",  # verification outcomes
    "wal",  # WAL continuity of the PITR window
    "immutability",  # Object Lock / immutability of the repositories
    "audit-chain",  # the audit chain whole and matching its anchors
)

DayOutcome = Literal["ok", "failed", "missing", "not-expected"]
Tier = Literal["daily", "weekly", "monthly", "yearly"]


@dataclass(frozen=True)
class Control:
    id: str  # one of CONTROL_IDS
    title: str  # "Backups at the expected frequency"
    status: ControlStatus
    evidence: list[str]  # what shows it, one sentence each (ids, counts, hashes, dates)
    exceptions: list[str] = field(default_factory=list)  # each failure, one sentence


@dataclass(frozen=True)
class BackupRow:
    id: str
    kind: str  # logical or physical
    started_at: datetime
    finished_at: datetime
    stored_bytes: int  # what the repository holds: compressed and encrypted
    plain_bytes: int  # before compression
    encryption: str  # age or gpg
    recipients: list[str]  # fingerprints or public keys the data is encrypted to
    repositories: list[str]  # every configured repository holding it
    # failed: the newest check of some repository's copy failed; ok: every checked copy's
    # newest check passed; None: never verified
    verification: Literal["ok", "failed"] | None
    held: bool  # a hold is in force at the end of the period

    @property
    def duration_seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class DrillRow:
    drill_id: str
    kind: str
    backup: str
    started_at: datetime
    operator: str  # user@host
    passed: bool
    rto_seconds: float | None
    rpo_seconds: float | None
    rto_objective_seconds: float | None  # as configured when the drill ran
    rpo_objective_seconds: float | None
    reasons: list[str]  # of a failed verdict


@dataclass(frozen=True)
class CalendarDay:
    day: date
    outcome: DayOutcome  # ok: a backup finished; failed: only failed ones (verification
    # or drill); missing: one was expected and none exists; not-expected: the schedule
    # asks for none that day (weekly backups) or the day is outside the history
    backups: list[str]  # ids finished that day


@dataclass(frozen=True)
class CoverageCell:
    tier: Tier
    label: str  # 2026-03-14, 2026-W11, 2026-03, 2026
    start: date
    promised: bool  # the retention policy promises a kept backup for it
    backup: str | None  # the kept backup covering it
    held: bool  # that backup is kept by a hold

    @property
    def covered(self) -> bool:
        return self.backup is not None


@dataclass(frozen=True)
class Deletion:
    at: datetime
    repository: str
    backup: str
    kind: str
    backup_started_at: datetime | None
    reasons: list[str]  # the retention decision's reasons
    policy: str  # the retention policy applied, as the prune event gives it
    by: str  # user@host


@dataclass(frozen=True)
class HoldEvent:
    at: datetime
    repository: str
    backup: str
    action: Literal["hold", "release"]
    reason: str
    until: datetime | None
    by: str


@dataclass(frozen=True)
class AnchorCheck:
    kept_in: str  # the repository holding the anchor, or "given"
    sequence: int
    hash: str
    ok: bool


@dataclass(frozen=True)
class ChainStatus:
    repository: str
    whole: bool
    events: int
    head_sequence: int | None
    head_hash: str | None
    first_bad: int | None
    problem: str | None  # what `audit verify` says of the first bad event
    anchors: list[AnchorCheck]


@dataclass(frozen=True)
class RepositoryRow:
    name: str
    url: str  # shown_url: no secret
    immutable: str | None  # e.g. "S3 Object Lock, COMPLIANCE, 30 days"; None: none
    error: str | None = None  # why it could not be read


@dataclass(frozen=True)
class SourceReport:
    source: str
    rto_objective_seconds: float | None
    rpo_objective_seconds: float | None
    controls: list[Control]
    backups: list[BackupRow]  # finished in the period, oldest first
    drills: list[DrillRow]  # started in the period, oldest first
    calendar: list[CalendarDay]  # every day of the period
    coverage: list[CoverageCell]  # the GFS grid of the 7 years before the period's end
    deletions: list[Deletion]  # prune deletions in the period
    holds: list[HoldEvent]  # holds and releases in the period

    @property
    def has_data(self) -> bool:
        return bool(self.backups or self.drills or self.deletions or self.holds)


@dataclass(frozen=True)
class ComplianceReport:
    period_start: datetime
    period_end: datetime
    generated_at: datetime
    lifeboat_version: str
    repositories: list[RepositoryRow]
    chains: list[ChainStatus]
    sources: list[SourceReport]

    @property
    def passed(self) -> bool:
        """Every control of every source passed or does not apply."""
        return not self.not_passed()

    def not_passed(self) -> list[str]:
        """`source/control (status)` of each control that failed or had no data."""
        return [
            f"{source.source}/{control.id} ({control.status})"
            for source in self.sources
            for control in source.controls
            if control.status not in ("pass", "not-applicable")
        ]

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = _plain(asdict(self))
        return body | {"passed": self.passed}


def _plain(value: Any) -> Any:
    """asdict's output with times and days as ISO 8601 text."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value
