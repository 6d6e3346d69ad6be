"""Drill records: what one restore drill measured and concluded, written once into every
repository that holds the drilled backup.

    <source>/drills/<backup-id>/<UTC stamp>-<pass|fail>.json

The verdict is in the key, as for verification records, so retention and status need not
read the bodies; the body is the evidence an auditor reads (docs/repository-format.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

Verdict = Literal["pass", "fail"]

RECORD_FORMAT = 1


def drills_prefix(source: str, backup: str | None = None) -> str:
    return f"{source}/drills/{backup}/" if backup else f"{source}/drills/"


@dataclass
class Phase:
    """One timed step of a drill; phases run one after another."""

    name: str  # fetch, restore, replay, verify, checks (docs/drills.md)
    seconds: float


@dataclass
class CheckResult:
    """One user SQL check, or one of the depth's built-in reads."""

    name: str
    ok: bool
    message: str  # the value returned, or why it failed
    seconds: float
    database: str = ""


@dataclass
class TableComparison:
    table: str  # "database.schema.table" as the evidence names it
    expected: int
    actual: int | None

    @property
    def ok(self) -> bool:
        return self.expected == self.actual


@dataclass
class DrillRecord:
    drill_id: str
    source: str
    backup: str
    kind: str  # the backup's kind: logical or physical
    picked: str  # how the backup was chosen: latest, id, oldest, random (within 30d)
    target: str  # "scratch PostgreSQL 17" or the staging server, password redacted
    depth: Literal["quick", "standard", "full"]
    started_at: datetime
    finished_at: datetime
    verdict: Verdict
    reasons: list[str]  # every reason of a failed verdict; empty on pass
    phases: list[Phase]
    rto_seconds: float | None  # None when the restore did not get that far
    rpo_seconds: float | None
    rpo_method: str  # "snapshot", "last replayed commit", "heartbeat"
    recovered_to: str | None  # physical: the last replayed commit's time
    objectives: dict[str, float | None]  # rto_seconds, rpo_seconds as configured then
    checks: list[CheckResult]
    tables: list[TableComparison]
    postgres_version: str
    lifeboat_version: str
    host: str
    operator: str
    repositories: list[str] = field(default_factory=list)  # where this record was written
    format: int = RECORD_FORMAT

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["started_at"] = self.started_at.isoformat()
        body["finished_at"] = self.finished_at.isoformat()
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> DrillRecord:
        values = dict(body)
        values["started_at"] = datetime.fromisoformat(body["started_at"])
        values["finished_at"] = datetime.fromisoformat(body["finished_at"])
        values["phases"] = [Phase(**p) for p in body.get("phases", [])]
        values["checks"] = [CheckResult(**c) for c in body.get("checks", [])]
        values["tables"] = [TableComparison(**t) for t in body.get("tables", [])]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known})
