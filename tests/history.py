"""Years of a repository's history, written in seconds as Lifeboat would have written it.

`write_history` plays the days of a backup routine, oldest first, through the project's own
writing code (Manifest and Repository.save_manifest, the records' and drills' keys and
bodies, the audit chain's events) with the times of history instead of now:

* every day, a logical backup of each source (sizes, durations and row counts growing over
  the years; the recipients change at two key rotations; a few days have none), copied to
  the off-site repository, then a prune of each repository by the retention policy
  (policy/retention.py deciding day after day, as `lifeboat prune` would: most old backups
  go, the GFS-kept ones stay), and a WAL segment archived;
* every week, a physical backup, and a verification of the week's backups (a few fail);
* restore drills at even intervals (about quarterly over seven years), some failed;
* holds and their releases, and config changes.

Everything is written into in-memory storage (no fsync per object, no listing per event),
then laid out as files exactly as the local backend names them: a real local repository
that `lifeboat list`, `verify` and `audit verify` read. Objects are tiny: with
`realistic_sizes` the manifests state the sizes a real database would have had (what a
report charts; `verify` then finds the objects truncated), without it their true sizes.
The same seed gives the same history, except for the repository ids and hosts.
"""

from __future__ import annotations

import hashlib
import os
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from lifeboat import __version__
from lifeboat.ops.drill_records import drill_event_details
from lifeboat.ops.prune import decision_summary
from lifeboat.ops.verify import BackupCheck
from lifeboat.policy.retention import Backup, Decision, Policy, decide, policy_summary
from lifeboat.policy.wal_expiry import expire_wal
from lifeboat.postgres.wal import DEFAULT_SEGMENT_SIZE, Segment
from lifeboat.repo import audit, layout
from lifeboat.repo.catalog import Repository
from lifeboat.repo.commit import backup_event_details, key_event_details
from lifeboat.repo.drills import DrillRecord, Phase, TableComparison, write_drill
from lifeboat.repo.manifest import (
    Compression,
    Encryption,
    Evidence,
    Manifest,
    PostgresLogicalDetails,
    PostgresPhysicalDetails,
    Server,
    StoredObject,
    kind_name,
)
from lifeboat.repo.records import audit_key, check_key, hold_key, write_record
from lifeboat.storage.memory import MemoryStorage
from tests.unit.drill_records import make_record

SEVEN_YEARS = 2557  # days, two of them leap days
# what a warehouse under HACCP keeps: two weeks of dailies, two months of weeklies, two years
# of monthlies, seven years of yearlies
GFS = Policy(keep_last=3, keep_daily=14, keep_weekly=8, keep_monthly=24, keep_yearly=7)
TABLES = ("public.lots", "public.pallets", "public.shipments", "public.temperatures")
OPERATOR = "postgres"
HOST = "db1.warehouse.example"


@dataclass(frozen=True)
class HistoryPlan:
    days: int = SEVEN_YEARS
    last_day: date = date(2026, 11, 30)
    sources: tuple[str, ...] = ("wms",)
    offsite: bool = True  # a second repository every backup is copied to
    drills: int = 30  # spread evenly over the days
    holds: int = 14  # as evenly: each odd one releases those before it
    physical_every: int = 7  # days between physical backups; 0: none
    verify_every: int = 7  # days between verifications of the backups made since
    missed: float = 0.004  # the share of days without a logical backup (the host was down)
    realistic_sizes: bool = True
    policy: Policy = GFS
    zone: str = "Europe/Berlin"
    seed: int = 15

    @property
    def first_day(self) -> date:
        return self.last_day - timedelta(days=self.days - 1)


@dataclass
class Pruned:
    repository: str
    source: str
    backup: str
    at: datetime
    rules: list[str]  # why it was deleted, as the decision explains it


@dataclass
class History:
    """What was written, for the tests that check it against what Lifeboat reads."""

    plan: HistoryPlan
    repositories: dict[str, Path]  # name -> folder: main, and offsite when planned
    created: dict[str, list[str]] = field(default_factory=dict)  # source -> every backup
    kinds: dict[str, str] = field(default_factory=dict)  # backup -> logical or physical
    kept: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (repo, source)
    pruned: list[Pruned] = field(default_factory=list)
    drills: list[DrillRecord] = field(default_factory=list)
    events: dict[str, int] = field(default_factory=dict)  # repository -> events in its chain
    wal_segments: int = 0
    missed: list[tuple[str, date]] = field(default_factory=list)  # days without a logical backup


# --- one repository as the history goes ----------------------------------------------------


@dataclass
class _Kept:
    manifest: Manifest
    keys: list[str]  # its objects and records, deleted with it (the manifest goes first)
    fact: Backup  # what retention knows of it

    @classmethod
    def of(cls, manifest: Manifest, keys: list[str]) -> _Kept:
        fact = Backup(
            id=manifest.id,
            kind=kind_name(manifest.kind),
            started_at=manifest.started_at,
            wal_base=manifest.physical is not None,
        )
        return cls(manifest, keys, fact)

    def learn(self, **changes: Any) -> None:
        """A verification, drill or hold changed what retention knows of it."""
        self.fact = replace(self.fact, **changes)


class _Repo:
    """A repository being written: its storage, its chain's head, what it holds."""

    def __init__(self, name: str, folder: Path, born: datetime) -> None:
        self.name = name
        self.folder = folder
        self.storage = MemoryStorage(name)
        self.repo = Repository(name, self.storage)
        self.repo.init()
        self.head = audit.genesis_event(self.storage, born)
        assert audit.write_event(self.storage, self.head)
        self.events = 1
        self.backups: dict[str, dict[str, _Kept]] = {}  # source -> id -> what it holds
        self.wal: dict[str, dict[str, str]] = {}  # source -> WAL name -> its key

    def event(
        self,
        kind: str,
        at: datetime,
        *,
        source: str | None = None,
        backup: str | None = None,
        details: dict[str, object] | None = None,
        record: str | None = None,
    ) -> None:
        """Append to the chain after the head this writer knows (no other writes here)."""
        event = audit.next_event(
            self.head, kind, source=source, backup=backup, details=details, record=record, at=at
        )
        if not audit.write_event(self.storage, event):
            raise AssertionError(f"{self.name}: event {event.sequence} written twice")
        self.head = event
        self.events += 1

    def commit(self, manifest: Manifest, objects: dict[str, bytes]) -> None:
        source = manifest.source
        keys = []
        for name, data in objects.items():
            key = layout.object_key(source, manifest.id, name)
            self.storage.write(key, [data])
            keys.append(key)
        self.repo.save_manifest(manifest)
        keys.append(layout.manifest_copy_key(source, manifest.id))
        self.backups.setdefault(source, {})[manifest.id] = _Kept.of(manifest, keys)

    def lay_out(self) -> None:
        """The objects as files, where LocalStorage keeps them (and with its modes)."""
        files = [(self.folder / key, data) for key, (data, _) in self.storage.objects.items()]
        for folder in sorted({path.parent for path, _ in files}):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        # creating a file costs the filesystem far more than Python: several at once
        with ThreadPoolExecutor(WRITERS) as pool:
            for _ in pool.map(_create_files, (files[n::WRITERS] for n in range(WRITERS))):
                pass


WRITERS = 8


def _create_files(files: list[tuple[Path, bytes]]) -> None:
    for path, data in files:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(descriptor, data)
        finally:
            os.close(descriptor)


# --- what a day's backups look like --------------------------------------------------------


def _recipients(rng: random.Random, count: int) -> list[list[dict[str, str]]]:
    """`count` generations of age recipients (a key rotation makes the next one)."""
    alphabet = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"  # bech32
    return [
        [{"type": "age", "id": "age1" + "".join(rng.choice(alphabet) for _ in range(58))}]
        for _ in range(count)
    ]


def _tiny(what: str) -> bytes:
    return f"{what}\n".encode()


def _stored(
    name: str, data: bytes, size: int, plain: int, fmt: str, truthful: bool
) -> StoredObject:
    digest = hashlib.sha256(data).hexdigest()
    return StoredObject(
        name=name,
        size=len(data) if truthful else size,
        sha256=digest,
        plain_size=len(data) if truthful else plain,
        plain_sha256=hashlib.sha256(data + b"plain").hexdigest(),
        format=fmt,
    )


class _Writer:
    def __init__(self, plan: HistoryPlan, folder: Path) -> None:
        self.plan = plan
        self.rng = random.Random(plan.seed)
        self.zone = ZoneInfo(plan.zone)
        born = self._at(plan.first_day, time(0, 0))  # `lifeboat init`
        names = ["main", "offsite"] if plan.offsite else ["main"]
        self.repos = [_Repo(name, folder / name, born) for name in names]
        self.main = self.repos[0]
        self.history = History(plan, {r.name: r.folder for r in self.repos})
        self.keys = _recipients(self.rng, 3)
        self.segment = {s: Segment(1, 0x100) for s in plan.sources}
        self.fingerprint = ""
        self.unverified: dict[str, list[str]] = {s: [] for s in plan.sources}
        self.hold_reasons: dict[str, str] = {}  # held backup -> why
        self.newest: dict[str, str] = {}  # source -> its newest backup

    def _at(self, day: date, clock: time, jitter_minutes: int = 0) -> datetime:
        moment = datetime.combine(day, clock, self.zone)
        if jitter_minutes:
            moment += timedelta(microseconds=self.rng.randrange(jitter_minutes * 60_000_000))
        return moment.astimezone(UTC)

    def _growth(self, day: date) -> float:
        """1.0 on the first day, 4.0 on the last: the database grows over the years."""
        done = (day - self.plan.first_day).days / max(1, self.plan.days - 1)
        return 1.0 + 3.0 * done

    def _key_generation(self, day: date) -> int:
        done = (day - self.plan.first_day).days / max(1, self.plan.days)
        return 0 if done < 0.3 else 1 if done < 0.75 else 2

    def _server(self, day: date) -> Server:
        if (day - self.plan.first_day).days < self.plan.days * 0.55:
            return Server(version="15.4", version_num=150004, system_identifier=None)
        return Server(version="17.2", version_num=170002, system_identifier=None)

    # --- the routine ------------------------------------------------------------------------

    def run(self) -> History:
        plan = self.plan
        drill_every = plan.days // plan.drills if plan.drills else 0
        hold_every = plan.days // plan.holds if plan.holds else 0
        for offset in range(plan.days):
            day = plan.first_day + timedelta(days=offset)
            if offset % 400 == 0 or offset == plan.days // 2:
                self._config(day)
            for source in plan.sources:
                if plan.physical_every:
                    self._archive_wal(source)  # a quiet database: a segment a day
                    if offset % plan.physical_every == 0:
                        self._physical(source, day)
                if self.rng.random() >= plan.missed:
                    self._logical(source, day)
                else:
                    self.history.missed.append((source, day))
            for repo in self.repos:
                for source in plan.sources:
                    self._prune(repo, source, day)
            if plan.verify_every and offset % plan.verify_every == plan.verify_every - 1:
                for source in plan.sources:
                    self._verify(source, day)
            if drill_every and offset % drill_every == drill_every - 1:
                self._drill(plan.sources[0], day, number=offset // drill_every)
            if hold_every and offset % hold_every == hold_every // 2:
                self._hold(plan.sources[0], day, number=offset // hold_every)
        return self._finish()

    def _config(self, day: date) -> None:
        at = self._at(day, time(0, 1), 4)  # deployed at midnight
        previous = self.fingerprint or None
        self.fingerprint = hashlib.sha256(f"lifeboat.toml of {day}".encode()).hexdigest()
        for repo in self.repos:
            # as audit.note_config writes it, after the head this writer knows
            repo.event(
                "config",
                at,
                source=self.plan.sources[0],
                details={"fingerprint": self.fingerprint, "previous": previous},
            )
            marker = f"{audit.CONFIG_PREFIX}{repo.head.sequence:012d}-{self.fingerprint}.json"
            repo.storage.write(marker, [b"{}\n"])

    def _encryption(self, day: date) -> Encryption:
        return Encryption(method="age", recipients=self.keys[self._key_generation(day)])

    def _logical(self, source: str, day: date) -> None:
        started = self._at(day, time(1, 30), 30)
        growth = self._growth(day)
        plain = int(2.2e9 * growth * self.rng.uniform(0.97, 1.03))
        stored = int(plain * self.rng.uniform(0.24, 0.27))
        minutes = 6 * growth * self.rng.uniform(0.85, 1.3)
        backup = layout.backup_id(started, f"{self.rng.randrange(1 << 16):04x}")
        rows = {t: int(50_000 * growth * (i + 1) ** 2) for i, t in enumerate(TABLES)}
        data = _tiny(f"pg_dump of {source} {backup}")
        roles = _tiny(f"roles of {source} {backup}")
        truthful = not self.plan.realistic_sizes
        manifest = Manifest(
            id=backup,
            source=source,
            kind="postgres-logical",
            started_at=started,
            finished_at=started + timedelta(minutes=minutes),
            tool={"lifeboat": __version__, "pg_dump": self._server(day).version},
            compression=Compression(level=3),
            encryption=self._encryption(day),
            objects=[
                _stored("dump.zst.age", data, stored, plain, "pg_dump-custom", truthful),
                _stored("globals.sql.zst.age", roles, 2300, 9100, "pg_dumpall-globals", truthful),
            ],
            details=PostgresLogicalDetails(
                server=self._server(day),
                database=source,
                evidence=Evidence(
                    row_counts=rows,
                    indexes=[f"{t}_pkey" for t in TABLES],
                    constraints=[f"{t}_pkey" for t in TABLES],
                ),
                globals="globals.sql.zst.age",
            ),
        )
        self._commit(manifest, {"dump.zst.age": data, "globals.sql.zst.age": roles})

    def _physical(self, source: str, day: date) -> None:
        started = self._at(day, time(0, 10), 10)
        growth = self._growth(day)
        plain = int(6.5e9 * growth * self.rng.uniform(0.98, 1.02))
        segment = self.segment[source]  # archived this day
        name = segment.name()
        backup = layout.backup_id(started, f"{self.rng.randrange(1 << 16):04x}")
        data = _tiny(f"base backup of {source} {backup}")
        lsn = segment.start_lsn() + 0x28
        manifest = Manifest(
            id=backup,
            source=source,
            kind="postgres-physical",
            started_at=started,
            finished_at=started + timedelta(minutes=11 * growth * self.rng.uniform(0.9, 1.2)),
            tool={"lifeboat": __version__, "pg_basebackup": self._server(day).version},
            compression=Compression(level=1),
            encryption=self._encryption(day),
            objects=[
                _stored(
                    "base.tar.zst.age",
                    data,
                    int(plain * 0.3),
                    plain,
                    "tar",
                    not self.plan.realistic_sizes,
                )
            ],
            details=PostgresPhysicalDetails(
                server=self._server(day),
                timeline=1,
                start_lsn=f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}",
                stop_lsn=f"{lsn >> 32:X}/{(lsn & 0xFFFFFFFF) + 0x100:X}",
                start_wal=name,
                stop_wal=name,
                segment_size=DEFAULT_SEGMENT_SIZE,
            ),
        )
        self._commit(manifest, {"base.tar.zst.age": data})

    def _archive_wal(self, source: str) -> None:
        """The next segment, pushed to both repositories (`wal-push` writes no event)."""
        segment = self.segment[source].next()
        self.segment[source] = segment
        name = segment.name()
        wal = _tiny(f"WAL segment {name} of {source}")
        for repo in self.repos:
            key = layout.wal_key(source, name, hashlib.sha256(wal).hexdigest(), ".age")
            repo.storage.write(key, [wal])
            repo.wal.setdefault(source, {})[name] = key
        self.history.wal_segments += 1

    def _commit(self, manifest: Manifest, objects: dict[str, bytes]) -> None:
        """Into main as `lifeboat backup` commits it (with a key event after a rotation),
        then into the off-site repository as `lifeboat copy` does."""
        source = manifest.source
        committed = self.main.backups.get(source, {})
        previous = self.newest.get(source)
        self.newest[source] = manifest.id
        self.main.commit(manifest, objects)
        self.history.created.setdefault(source, []).append(manifest.id)
        self.history.kinds[manifest.id] = manifest.type
        self.unverified[source].append(manifest.id)
        record = layout.manifest_key(source, manifest.id)
        done = manifest.finished_at
        details = backup_event_details(manifest)
        self.main.event(
            "backup", done, source=source, backup=manifest.id, details=details, record=record
        )
        if previous in committed:
            before = committed[previous].manifest.encryption
            if before != manifest.encryption:
                self.main.event(
                    "key",
                    done,
                    source=source,
                    backup=manifest.id,
                    details=key_event_details(manifest, previous, before),
                    record=record,
                )
        for repo in self.repos[1:]:
            repo.commit(manifest, objects)
            repo.event(
                "copy",
                done + timedelta(minutes=20),
                source=source,
                backup=manifest.id,
                details={"from": self.main.name, "from_url": f"file://{self.main.folder}"},
                record=record,
            )

    # --- prune, as `lifeboat prune` decides and deletes -----------------------------------

    def _prune(self, repo: _Repo, source: str, day: date) -> None:
        now = self._at(day, time(3, 0), 10)
        kept = repo.backups.get(source, {})
        facts = [k.fact for k in kept.values()]
        decisions = decide(facts, self.plan.policy, now, self.zone)
        doomed = sorted((d for d in decisions if not d.keep), key=lambda d: d.backup.started_at)
        policy = policy_summary(self.plan.policy, self.plan.zone)
        body = {
            "action": "prune",
            "at": now.isoformat(),
            "by": f"{OPERATOR}@{HOST}",
            "repository": repo.name,
            "source": source,
            "policy": policy,
            "dry_run": False,
            "delete": [d.backup.id for d in doomed],
            "deleted": [d.backup.id for d in doomed],
        }
        record = write_record(repo.storage, audit_key(now, "prune", source), body)
        for decision in doomed:
            self._delete(repo, source, decision, now)
            repo.event(
                "prune",
                now,
                source=source,
                backup=decision.backup.id,
                details={"policy": policy, **decision_summary(decision)},
                record=record,
            )
        if any(d.backup.wal_base for d in doomed):  # else the oldest kept base stays
            self._expire_wal(repo, source, decisions)

    def _delete(self, repo: _Repo, source: str, decision: Decision, now: datetime) -> None:
        backup = decision.backup.id
        gone = repo.backups[source].pop(backup)
        repo.storage.delete(layout.manifest_key(source, backup))  # first, as prune does
        for key in gone.keys:
            repo.storage.delete(key)
        self.history.pruned.append(Pruned(repo.name, source, backup, now, decision.explanation))

    def _expire_wal(self, repo: _Repo, source: str, decisions: list[Decision]) -> None:
        archive = repo.wal.get(source, {})
        kept = repo.backups.get(source, {})
        starts = []
        for decision in decisions:
            physical = kept[decision.backup.id].manifest.physical if decision.keep else None
            if physical is not None:
                starts.append(physical.start_wal)
        # only names before the oldest start can expire (same timeline, fixed-width hex):
        # expire_wal decides among those, without parsing the whole archive again
        oldest = min(starts, default="")
        older = [name for name in archive if name < oldest]
        for name in expire_wal(older, starts).expired:
            repo.storage.delete(archive.pop(name))

    # --- verification, drills, holds ------------------------------------------------------

    def _verify(self, source: str, day: date) -> None:
        at = self._at(day, time(4, 0), 30)
        kept = self.main.backups.get(source, {})
        for backup in self.unverified[source]:
            if backup not in kept:
                continue  # pruned before its first verification
            at += timedelta(seconds=self.rng.uniform(5, 40))
            check = BackupCheck(self.main.name, source, backup, deep=True)
            if self.rng.random() < 0.01:
                check.problems = ["dump.zst.age: sha256 mismatch, the stored object is corrupted"]
            key = check_key(source, backup, at, check.ok)
            body = {**check.summary(), "by": f"{OPERATOR}@{HOST}", "at": at.isoformat()}
            write_record(self.main.storage, key, body)
            kept[backup].keys.append(key)
            kept[backup].learn(verification_failed=not check.ok)
            self.main.event(
                "verify",
                at,
                source=source,
                backup=backup,
                details={"ok": check.ok, "deep": check.deep, "problems": check.problems},
                record=key,
            )
        self.unverified[source] = []

    def _drill(self, source: str, day: date, number: int) -> None:
        kept = self.main.backups[source]
        logical = [b for b, k in kept.items() if k.manifest.logical is not None]
        backup = max(logical, key=layout.backup_order)
        manifest = kept[backup].manifest
        started = self._at(day, time(10, 0), 90)
        growth = self._growth(day)
        restore = round(540 * growth * self.rng.uniform(0.9, 1.15), 1)
        outcome = number % 9  # one restore failure, one slow restore in nine drills
        proved = outcome != 4
        objective = 3600.0 * 1.5
        rto = None if not proved else objective * 1.2 if outcome == 7 else restore + 35
        reasons = []
        if not proved:
            reasons = ["pg_restore failed: could not create unique index lots_pkey"]
        elif rto is not None and rto > objective:
            reasons = [f"RTO {rto:.0f} s over the objective of {objective:.0f} s"]
        assert manifest.evidence is not None
        first = make_record(
            backup,
            started,
            "fail" if reasons else "pass",
            source=source,
            drill_id=f"drill-{day:%Y%m%d}-{number:02d}",
            rto_seconds=None if rto is None else round(rto, 1),
            reasons=reasons,
        )
        record = replace(
            first,
            phases=[Phase("prepare", 4.2), Phase("start+fetch", 31.0), Phase("restore", restore)],
            rpo_seconds=round((started - manifest.started_at).total_seconds(), 1),
            objectives={"rto_seconds": objective, "rpo_seconds": 86400.0 * 1.5},
            # a restore that failed got no further; one over the RTO passed its checks
            checks=[replace(check, ok=True) for check in first.checks] if proved else [],
            tables=[
                TableComparison(t, n, n if proved else None)
                for t, n in manifest.evidence.row_counts.items()
            ],
            postgres_version=manifest.server.version,
            lifeboat_version=__version__,
            host=HOST,
            operator=OPERATOR,
            repositories=[r.name for r in self.repos],
            restore_proved=proved,
        )
        for repo in self.repos:
            key = write_drill(repo.storage, record)
            repo.event(
                "drill",
                record.finished_at,
                source=source,
                backup=backup,
                details=drill_event_details(record),
                record=key,
            )
            repo.backups[source][backup].learn(drill_failed=not proved)
        self.history.drills.append(record)

    def _hold(self, source: str, day: date, number: int) -> None:
        """A hold on the newest backup, for an audit or an incident; every other time, the
        holds in force are released first."""
        kept = self.main.backups[source]
        at = self._at(day, time(14, 0), 60)  # after the day's drill
        released = [b for b, k in kept.items() if k.fact.held and number % 2 == 1]
        for backup in released:
            details: dict[str, object] = {"held_for": self.hold_reasons.pop(backup)}
            self._hold_record(source, backup, "release", "the audit is closed", details, at)
            kept[backup].learn(held=False)
            at += timedelta(minutes=2)
        backup = max(kept, key=layout.backup_order)
        reason = f"{'incident' if number % 3 else 'auditor'} request {number}"
        self._hold_record(source, backup, "hold", reason, {"until": None}, at)
        self.hold_reasons[backup] = reason
        kept[backup].learn(held=True)

    def _hold_record(
        self,
        source: str,
        backup: str,
        action: str,
        reason: str,
        details: dict[str, object],
        at: datetime,
    ) -> None:
        # the body `lifeboat hold` (ops/holds.py) writes
        body: dict[str, object] = {
            "action": action,
            "source": source,
            "backup": backup,
            "reason": reason,
            **details,
            "by": f"{OPERATOR}@{HOST}",
            "at": at.isoformat(),
            "object_legal_holds": 0,
        }
        storage = self.main.storage
        key = write_record(storage, hold_key(source, backup, at, action), body)
        write_record(storage, audit_key(at, action, source), body)
        # not deleted with its backup: prune leaves hold records, as it leaves drill records
        said = {
            k: v for k, v in body.items() if k not in ("action", "source", "backup", "by", "at")
        }
        self.main.event(action, at, source=source, backup=backup, details=said, record=key)

    def _finish(self) -> History:
        for repo in self.repos:
            repo.lay_out()
            self.history.events[repo.name] = repo.events
            for source, kept in repo.backups.items():
                self.history.kept[(repo.name, source)] = layout.sorted_ids(kept)
        return self.history


def write_history(folder: Path, plan: HistoryPlan | None = None) -> History:
    """The repositories of plan's history under folder (main/, offsite/): they must not
    exist yet."""
    for name in ("main", "offsite"):
        if (folder / name).exists():
            raise FileExistsError(folder / name)
    folder.mkdir(parents=True, exist_ok=True)
    return _Writer(plan or HistoryPlan(), folder).run()


def config_text(history: History, identity: Path, public_key: str) -> str:
    """A configuration naming the history's repositories, sources and policy."""
    plan = history.plan
    policy = plan.policy
    lines = []
    for name, path in history.repositories.items():
        lines += [f"[repositories.{name}]", f'url = "file://{path}"', ""]
    lines += [
        "[retention]",
        f"keep_last = {policy.keep_last}",
        f"keep_daily = {policy.keep_daily}",
        f"keep_weekly = {policy.keep_weekly}",
        f"keep_monthly = {policy.keep_monthly}",
        f"keep_yearly = {policy.keep_yearly}",
        f'timezone = "{plan.zone}"',
        "",
        "[encryption]",
        f'age_recipients = ["{public_key}"]',
        f'age_identity_file = "{identity}"',
        "",
    ]
    for source in plan.sources:
        lines += [
            f"[sources.{source}]",
            'type = "postgres"',
            f'dsn = "dbname={source}"',
            'repositories = ["main"]',
            "",
            f"[sources.{source}.objectives]",
            'rto = "90m"',
            'rpo = "36h"',
            'drill_every = "92d"',
            "",
        ]
    return "\n".join(lines)


__all__ = ["GFS", "SEVEN_YEARS", "History", "HistoryPlan", "Pruned", "config_text", "write_history"]
