"""`lifeboat status`: where each source stands and whether it is healthy, read-only and quick.

Per source: its repositories, the newest backup of each type against how often one is
expected, the newest WAL segment in the archive, the recovery point against the RPO
objective, verification, the async spool (what waits, whether a worker runs, its last push
and last error), and its newest restore drill, newest passed drill and whether a drill is
overdue. The metrics (metrics/) are computed from the same scan: each manifest read once."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lifeboat.config.model import archive_of, archives_wal
from lifeboat.context import Context
from lifeboat.errors import LifeboatError
from lifeboat.ops.backup_intervals import backup_intervals
from lifeboat.ops.drill_records import drill_every, overdue
from lifeboat.ops.health import anomalies, health_reasons, is_overdue
from lifeboat.policy.retention import duration_text, parse_duration
from lifeboat.postgres import wal
from lifeboat.repo import layout
from lifeboat.repo.catalog import Damaged, Repository
from lifeboat.repo.drills import DrillEntry, drill_entries
from lifeboat.repo.manifest import Manifest
from lifeboat.repo.records import checks_prefix, records_by_backup
from lifeboat.util.singleton import lock_is_held
from lifeboat.wal.spool import queued, read_json
from lifeboat.wal.spool_paths import SpoolPaths

log = logging.getLogger(__name__)

_STAMP = "%Y%m%dT%H%M%S.%fZ"  # a record's leaf starts with it (repo/records.py)


def _age(moment: datetime | None, now: datetime) -> float | None:
    return None if moment is None else round((now - moment).total_seconds(), 1)


def newest_backup(manifests: list[Manifest], now: datetime) -> dict[str, Any] | None:
    """The newest of the manifests (oldest first) that is not a restore's safety backup."""
    manifest = next((m for m in reversed(manifests) if not m.safety), None)
    if manifest is None:
        return None
    return {
        "id": manifest.id,
        "type": manifest.type,
        "finished_at": manifest.finished_at.isoformat(),
        "age_s": _age(manifest.finished_at, now),
    }


def newest_wal(repo: Repository, source: str, now: datetime) -> dict[str, Any] | None:
    """The newest segment (highest timeline, then position) in the source's WAL archive."""
    newest: tuple[str, datetime | None] | None = None
    count = 0
    for info in repo.storage.list(f"{source}/wal/"):
        parsed = layout.parse_wal_key(info.key)
        if parsed is None or not wal.is_segment_name(parsed[0]):
            continue
        count += 1
        if newest is None or parsed[0] > newest[0]:
            newest = (parsed[0], info.modified)
    if newest is None:
        return None
    return {
        "segment": newest[0],
        "archived_at": newest[1].isoformat() if newest[1] else None,
        "age_s": _age(newest[1], now),
        "segments": count,
    }


def spool_status(spool: SpoolPaths, async_push: bool, now: datetime) -> dict[str, Any]:
    """What the async spool holds and what its worker last did. Reads only."""
    waiting = queued(spool.outgoing)
    oldest: float | None = None
    for name in waiting:
        try:
            modified = (spool.outgoing / name).stat().st_mtime
        except FileNotFoundError:  # uploaded meanwhile
            continue
        oldest = modified if oldest is None else min(oldest, modified)
    worker = read_json(spool.status_file) or {}
    return {
        "path": str(spool.root),
        "async": async_push,
        "queued": len(waiting),
        "oldest_queued_age_s": (
            None if oldest is None else _age(datetime.fromtimestamp(oldest, UTC), now)
        ),
        "worker_running": lock_is_held(spool.worker_lock),
        "pushed_count": worker.get("pushed_count", 0),
        "last_pushed": worker.get("last_pushed"),
        "last_error": worker.get("last_error"),
        "refused": len(queued(spool.refused)),
        "prefetched": len(queued(spool.incoming)),
    }


def _drill_entry(entry: DrillEntry | None, now: datetime) -> dict[str, Any] | None:
    if entry is None:
        return None
    return {
        "backup": entry.backup,
        "verdict": entry.verdict,
        "key": entry.key,
        "at": entry.at.isoformat(),
        "age_s": _age(entry.at, now),
    }


def drill_status(
    repos: Sequence[Repository], source: str, every: timedelta | None, now: datetime
) -> dict[str, Any]:
    """The source's newest drill and newest passed drill in any of repos, and whether a drill
    is overdue, read from the records' keys. A repository that cannot be listed is left out
    here: status shows the error of each of the source's own repositories (a copy target's
    goes to the debug log)."""
    entries: list[DrillEntry] = []
    kept: set[str] = set()
    for repo in repos:
        try:
            entries += drill_entries(repo.storage, source)
            kept.update(repo.committed_ids(source))
        except LifeboatError as exc:
            log.debug("drill records of %s in %s not listed: %s", source, repo.name, exc.message)
    entries.sort(key=lambda e: e.at)
    # a drill of one kind must not hide the failure of another's: the newest drill of each
    # backup still kept, failed
    newest_of_backup = {e.backup: e for e in entries}
    failing = sorted(b for b, e in newest_of_backup.items() if not e.passed and b in kept)
    passes = [e for e in entries if e.passed]
    newest_pass = passes[-1] if passes else None
    is_overdue = overdue(newest_pass.at if newest_pass else None, every, now)
    return {
        "newest": _drill_entry(entries[-1] if entries else None, now),
        "newest_pass": _drill_entry(newest_pass, now),
        "drill_every": duration_text(every) if every else None,
        "overdue": is_overdue,
        "failing": failing,
        "due_at": (newest_pass.at + every).isoformat() if every and newest_pass else None,
    }


def source_status(ctx: Context, source: str) -> dict[str, Any]:
    """The source's spool, and per repository its newest backup of each type and WAL; the
    first repository's are repeated at the top level. Its health: each type's newest backup
    against how often one is expected, the recovery point against objectives.rpo,
    verification, the spool, and `reasons` (ops/health.py) with `healthy`. A source other
    than PostgreSQL archives no WAL and has no spool: those keys are left out."""
    now = datetime.now(UTC)
    config = ctx.source(source)
    has_wal = archives_wal(config)
    scans = [
        scan_repository(repo, source, now, wal=has_wal) for repo in ctx.repositories_for(source)
    ]
    held = {m.type for scan in scans for m in scan.manifests if not m.safety}
    expected = {
        kind: interval.total_seconds()
        for kind, interval in backup_intervals(ctx.config, source, held, now).items()
    }
    per_repository = [repository_report(scan, source, expected, now) for scan in scans]
    if not has_wal:
        for repo in per_repository:
            del repo["newest_wal"]
    first = per_repository[0]
    report: dict[str, Any] = {
        "source": source,
        "type": config.type,
        "repository": {"name": first["name"], "url": first["url"]},
        "newest_backup": first["newest_backup"],
        "repository_error": first["error"],
        "repositories": per_repository,
        "expected_backups": expected,
        "rpo": rpo_status(scans, config.objectives.rpo, now),
        # read from every repository that may hold the records, copy targets included
        "drills": drill_status(
            ctx.repositories_to_read(source), source, drill_every(ctx, source), now
        ),
    }
    if has_wal:
        archive = ctx.lean.archive(source)
        spool = spool_status(SpoolPaths(archive.spool), archive.async_push, now)
        report["newest_wal"] = first["newest_wal"]
        report["spool"] = {**spool, "capacity": archive_of(config).spool_max_segments}
    report["reasons"] = health_reasons(report) + drill_and_damage_reasons(report)
    report["healthy"] = not report["reasons"]
    return report


def rpo_status(scans: list[RepositoryScan], objective: str | None, now: datetime) -> dict[str, Any]:
    """The newest moment a restore reaches, in the best of the repositories, against the
    objective."""
    points = [
        point
        for scan in scans
        if (point := recovery_point(scan.manifests, wal_archived_at(scan))) is not None
    ]
    newest = max(points) if points else None
    age = _age(newest, now)
    goal = parse_duration(objective).total_seconds() if objective else None
    return {
        "recovery_point": newest.isoformat() if newest else None,
        "age_s": age,
        "objective_s": goal,
        "breached": goal is not None and (age is None or age > goal),
    }


def wal_archived_at(scan: RepositoryScan) -> datetime | None:
    archived = scan.newest_wal["archived_at"] if scan.newest_wal else None
    return datetime.fromisoformat(archived) if archived else None


@dataclass(frozen=True)
class NewestBackup:
    """The newest backup of one type in one repository, and how many of that type it holds."""

    type: str
    id: str
    count: int
    finished_at: datetime
    seconds: float
    plain_bytes: int
    stored_bytes: int


@dataclass(frozen=True)
class Verification:
    """The newest verification of each backup still held, from the records' keys."""

    newest_at: datetime | None
    failing: int  # held backups whose newest verification failed


NOT_VERIFIED = Verification(None, 0)


def newest_backups(manifests: list[Manifest]) -> dict[str, NewestBackup]:
    """Per type, the newest of the manifests (oldest first) that is not a restore's safety
    backup, with the count of that type's backups."""
    kept = [m for m in manifests if not m.safety]
    found: dict[str, NewestBackup] = {}
    for kind in sorted({m.type for m in kept}):
        of_kind = [m for m in kept if m.type == kind]
        newest = of_kind[-1]
        found[kind] = NewestBackup(
            type=kind,
            id=newest.id,
            count=len(of_kind),
            finished_at=newest.finished_at,
            seconds=(newest.finished_at - newest.started_at).total_seconds(),
            plain_bytes=newest.plain_size,
            stored_bytes=newest.stored_size,
        )
    return found


def record_time(key: str) -> datetime | None:
    """When a record whose leaf starts with its UTC stamp was written (repo/records.py)."""
    stamp = key.rsplit("/", 1)[-1].split("-", 1)[0]
    try:
        return datetime.strptime(stamp, _STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None


def verification_of(repo: Repository, source: str, held: set[str]) -> Verification:
    newest: datetime | None = None
    failing = 0
    for backup, keys in records_by_backup(repo.storage, checks_prefix(source)).items():
        if backup not in held:
            continue  # pruned: its records may linger until the next prune
        at = record_time(keys[-1])
        if at is not None and (newest is None or at > newest):
            newest = at
        failing += keys[-1].endswith("-failed.json")
    return Verification(newest, failing)


def snapshot_time(manifest: Manifest) -> datetime:
    """The moment a backup holds the data of, as a bound: a PostgreSQL backup's end; for
    the other kinds the start, when their snapshot is taken (Redis's fork, SQLite's read
    transaction; files are read from then on, so a change after it may be missing)."""
    return manifest.finished_at if manifest.postgres else manifest.started_at


def recovery_point(manifests: list[Manifest], wal_archived_at: datetime | None) -> datetime | None:
    """The newest moment a restore from one repository reaches: the newest backup's
    snapshot, or, once a physical backup exists, the newest archived WAL segment replayed
    on it (its upload time: a bound the last commit in it is not after)."""
    kept = [m for m in manifests if not m.safety]
    points = [snapshot_time(m) for m in kept[-1:]]
    physical = [m for m in kept if m.physical is not None]
    if physical and wal_archived_at is not None and wal_archived_at >= physical[-1].finished_at:
        points.append(wal_archived_at)
    return max(points) if points else None


@dataclass
class RepositoryScan:
    """One source in one repository, each manifest read once: what status and the metrics
    are both computed from."""

    repo: Repository
    manifests: list[Manifest] = field(default_factory=list)  # oldest first
    damaged: list[Damaged] = field(default_factory=list)
    newest_wal: dict[str, Any] | None = None
    error: str | None = None  # the repository could not be read


def scan_repository(
    repo: Repository, source: str, now: datetime, wal: bool = True
) -> RepositoryScan:
    """wal: list the source's WAL archive too (a PostgreSQL source's)."""
    scan = RepositoryScan(repo)
    try:
        repo.ensure_initialised()
        # every manifest is read, as list does: a damaged backup is named, and the newest
        # readable one is still shown
        scan.manifests, scan.damaged = repo.scan_backups(source)
        scan.newest_wal = newest_wal(repo, source, now) if wal else None
    except LifeboatError as exc:
        # the spool and the other repositories are worth seeing when one cannot be read
        scan.error = exc.message
    return scan


def repository_report(
    scan: RepositoryScan, source: str, expected: dict[str, float], now: datetime
) -> dict[str, Any]:
    """One repository of the source: what status shows and judges of it."""
    kept = [m for m in scan.manifests if not m.safety]
    backups = {}
    for kind, newest in newest_backups(kept).items():
        age = _age(newest.finished_at, now) or 0.0
        every = expected.get(kind)
        backups[kind] = {
            "id": newest.id,
            "finished_at": newest.finished_at.isoformat(),
            "age_s": age,
            "duration_s": round(newest.seconds, 3),
            "plain_size": newest.plain_bytes,
            "stored_size": newest.stored_bytes,
            "count": newest.count,
            "expected_interval_s": every,
            "overdue": every is not None and is_overdue(age, every),
            "anomalies": anomalies([m for m in kept if m.type == kind]),
        }
    held = {m.id for m in scan.manifests} | {d.backup for d in scan.damaged}
    verification = NOT_VERIFIED
    if scan.error is None:
        try:
            verification = verification_of(scan.repo, source, held)
        except LifeboatError as exc:
            log.warning(
                "verification records of %s in %s not read: %s", source, scan.repo.name, exc
            )
    return {
        "name": scan.repo.name,
        "url": scan.repo.storage.url,
        "newest_backup": newest_backup(scan.manifests, now),
        "backups": backups,
        "newest_wal": scan.newest_wal,
        "verification": {
            "newest_at": verification.newest_at.isoformat() if verification.newest_at else None,
            "failing": verification.failing,
        },
        "damaged_backups": [{"id": d.backup, "error": str(d.error)} for d in scan.damaged],
        "error": scan.error,
    }


def damaged_backups(reports: list[dict[str, Any]]) -> list[str]:
    """`repository: source/id` of every damaged backup the status reports name."""
    return [
        f"{repo['name']}: {report['source']}/{bad['id']}"
        for report in reports
        for repo in report["repositories"]
        for bad in repo["damaged_backups"]
    ]


def failing_drills(reports: list[dict[str, Any]]) -> list[str]:
    """`source/backup` of every kept backup whose newest drill failed."""
    return [f"{r['source']}/{backup}" for r in reports for backup in r["drills"]["failing"]]


def overdue_drills(reports: list[dict[str, Any]]) -> list[str]:
    """`source (newest pass ..., every ...)` of every source whose drill is overdue."""
    found = []
    for report in reports:
        drills = report["drills"]
        if drills["overdue"]:
            newest = drills["newest_pass"]
            since = f"newest pass {newest['at'][:10]}" if newest else "no drill passed yet"
            found.append(f"{report['source']} ({since}, drill every {drills['drill_every']})")
    return found


def drill_and_damage_reasons(report: dict[str, Any]) -> list[str]:
    """The problems status has always named, in its words, for `reasons`."""
    reasons = [f"damaged backup {where}" for where in damaged_backups([report])]
    reasons += [f"restore drill overdue for {what}" for what in overdue_drills([report])]
    reasons += [f"newest restore drill failed for {what}" for what in failing_drills([report])]
    return reasons


def status(ctx: Context, source: str | None) -> list[dict[str, Any]]:
    names = [source] if source else list(ctx.config.sources)
    for name in names:
        ctx.source(name)  # an unknown source is a usage error
    return [source_status(ctx, name) for name in names]
