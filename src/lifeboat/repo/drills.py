"""Drill records: what one restore drill measured and concluded, written once into every
repository that holds the drilled backup.

    <source>/drills/<backup-id>/<UTC stamp>-<pass|fail>.json

The verdict is in the key, as for verification records, so retention and status need not
read the bodies; the body is the evidence an auditor reads (docs/repository-format.md).
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple, get_args

from lifeboat.errors import RepositoryError
from lifeboat.repo import layout
from lifeboat.repo.cluster import create_once
from lifeboat.repo.records import read_record
from lifeboat.storage.base import Storage

log = logging.getLogger(__name__)

Verdict = Literal["pass", "fail"]
VERDICTS: tuple[str, ...] = get_args(Verdict)

RECORD_FORMAT = 1


def drills_prefix(source: str, backup: str | None = None) -> str:
    return f"{source}/drills/{backup}/" if backup else f"{source}/drills/"


@dataclass
class Phase:
    """One timed step of a drill; phases run one after another."""

    # prepare, start+fetch, fetch or start, restore, replay, verify, checks (docs/drills.md)
    name: str
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


def _aware(moment: datetime) -> datetime:
    # a time written without its offset is UTC, as every time Lifeboat writes; records of
    # both kinds must sort together
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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
    # "snapshot", "last replayed commit", "heartbeat", "backup start (no commit replayed)"
    rpo_method: str
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
    # the restore succeeded, matched the evidence and passed every check: a failed verdict
    # was the objectives' alone (RTO or RPO over them). None: a record written before this
    # was kept, read as not proved when it failed.
    restore_proved: bool | None = None

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
        values["started_at"] = _aware(datetime.fromisoformat(body["started_at"]))
        values["finished_at"] = _aware(datetime.fromisoformat(body["finished_at"]))
        values["phases"] = [Phase(**p) for p in body.get("phases", [])]
        values["checks"] = [CheckResult(**c) for c in body.get("checks", [])]
        values["tables"] = [TableComparison(**t) for t in body.get("tables", [])]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known})


# --- keys ------------------------------------------------------------------------------------
# The stamp is the drill's start, to the microsecond, and 6 hex digits: a hash of the drill id,
# so that the record has one key in every repository it is written to (and writing it again
# is harmless), or random for a key made without one.

_STAMP = "%Y%m%dT%H%M%S.%fZ"


def drill_key(
    source: str, backup: str, moment: datetime, verdict: Verdict, drill_id: str | None = None
) -> str:
    tail = (
        hashlib.sha256(drill_id.encode()).hexdigest()[:6]
        if drill_id is not None
        else secrets.token_hex(3)
    )
    return f"{drills_prefix(source, backup)}{moment.astimezone(UTC):{_STAMP}}-{tail}-{verdict}.json"


class DrillEntry(NamedTuple):
    """What a drill record's key alone tells."""

    source: str
    backup: str
    at: datetime  # when the drill started
    verdict: Verdict
    key: str

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"


def parse_drill_key(key: str) -> DrillEntry | None:
    """The entry of a drill record's key, else None (anything else under drills/ is left
    alone)."""
    parts = key.split("/")
    if len(parts) != 4 or parts[1] != "drills" or not layout.is_backup_id(parts[2]):
        return None
    stem, dot, extension = parts[3].partition(".json")
    stamp, _, tail_verdict = stem.partition("Z-")
    tail, _, verdict = tail_verdict.partition("-")
    if extension or not dot or verdict not in VERDICTS or len(tail) != 6:
        return None
    try:
        at = datetime.strptime(stamp + "Z", _STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None
    return DrillEntry(parts[0], parts[2], at, verdict, key)  # type: ignore[arg-type]


def drill_entries(storage: Storage, source: str, backup: str | None = None) -> list[DrillEntry]:
    """The drill records of source (of one backup) as their keys tell them, oldest first."""
    found = (parse_drill_key(info.key) for info in storage.list(drills_prefix(source, backup)))
    return sorted((e for e in found if e is not None), key=lambda e: (e.at, e.key))


class DrillVerdict(NamedTuple):
    verdict: Verdict
    at: datetime  # when that drill started

    def summary(self) -> dict[str, str]:
        return {"verdict": self.verdict, "at": self.at.isoformat()}


def newest_verdicts(
    storage: Storage, source: str, backup: str | None = None
) -> dict[str, DrillVerdict]:
    """Each drilled backup's (only backup's) newest drill verdict, from the keys alone: no
    body is read."""
    newest: dict[str, DrillVerdict] = {}
    for entry in drill_entries(storage, source, backup):
        newest[entry.backup] = DrillVerdict(entry.verdict, entry.at)  # oldest first: last wins
    return newest


def unproved_backups(storage: Storage, source: str) -> set[str]:
    """The backups whose newest drill failed to prove that they restore (not merely missed
    the RTO or RPO objectives): what retention counts for no rule. Only the body of each
    backup's newest failed record is read."""
    newest: dict[str, DrillEntry] = {}
    for entry in drill_entries(storage, source):
        newest[entry.backup] = entry  # oldest first: last wins
    unproved = set()
    for backup, entry in newest.items():
        if entry.passed:
            continue
        body = read_record(storage, entry.key)
        if body is None or body.get("restore_proved") is not True:
            unproved.add(backup)  # unreadable: as a failed proof, as before
    return unproved


# --- bodies ----------------------------------------------------------------------------------


def _body(record: DrillRecord) -> bytes:
    return json.dumps(record.to_json(), indent=2, sort_keys=True).encode() + b"\n"


def write_drill(storage: Storage, record: DrillRecord) -> str:
    """Write the record once; its key. Writing the same record again changes nothing; a
    different record under its key (one drill id used twice) is refused, never overwritten."""
    key = drill_key(
        record.source, record.backup, record.started_at, record.verdict, record.drill_id
    )
    body = _body(record)
    if not create_once(storage, key, body):
        with storage.read(key) as stream:
            if stream.read() != body:
                raise RepositoryError(
                    f"{storage.url}/{key} holds another drill record: left as it is"
                )
    return key


def read_drills(storage: Storage, source: str, backup: str | None = None) -> list[DrillRecord]:
    """The drill records of source (of one backup), oldest first; a body that cannot be read
    is skipped with a warning (the others are still evidence)."""
    records = []
    for entry in drill_entries(storage, source, backup):
        body = read_record(storage, entry.key)
        if body is None:
            continue  # deleted since listed, or not JSON: read_record warned
        try:
            records.append(DrillRecord.from_json(body))
        except (KeyError, TypeError, ValueError) as exc:
            log.warning(
                "%s/%s is not a readable drill record: ignored (%s)", storage.url, entry.key, exc
            )
    records.sort(key=lambda r: (r.started_at, r.drill_id))
    return records
