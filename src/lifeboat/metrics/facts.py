"""What the metrics say, read from the repositories, the spools and the configuration: one
Snapshot per refresh. Every manifest is read once (ops/status.py's scan, shared with
`lifeboat status`); verification and drill records are known by their keys, and only the
newest drill's body is read, for its RTO and RPO."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lifeboat.config.model import archive_of, archives_wal
from lifeboat.context import Context
from lifeboat.errors import LifeboatError
from lifeboat.ops.backup_intervals import backup_intervals
from lifeboat.ops.drill_records import drill_every
from lifeboat.ops.status import (
    NOT_VERIFIED,
    NewestBackup,
    RepositoryScan,
    Verification,
    drill_status,
    newest_backups,
    recovery_point,
    scan_repository,
    spool_status,
    verification_of,
)
from lifeboat.policy.retention import parse_duration
from lifeboat.repo.catalog import Repository
from lifeboat.repo.drills import DrillRecord
from lifeboat.repo.records import read_record
from lifeboat.wal.spool_paths import SpoolPaths

log = logging.getLogger(__name__)


@dataclass
class RepositoryFacts:
    """One source in one of its own repositories."""

    repository: str
    reachable: bool
    backups: dict[str, NewestBackup] = field(default_factory=dict)  # by type
    damaged: int = 0
    wal_archived_at: datetime | None = None
    wal_segments: int = 0
    verification: Verification = NOT_VERIFIED
    recovery_point: datetime | None = None  # newest moment a restore from here reaches


@dataclass
class SourceFacts:
    source: str
    repositories: list[RepositoryFacts]
    # ops/status.py's spool_status; None for a source other than PostgreSQL (no WAL)
    spool: dict[str, Any] | None
    spool_capacity: int
    drills: dict[str, Any]  # ops/status.py's drill_status, every repository read
    newest_drill: DrillRecord | None
    rto_objective: timedelta | None
    rpo_objective: timedelta | None
    drill_every: timedelta | None
    backup_intervals: dict[str, timedelta]  # type -> expected

    @property
    def recovery_point(self) -> datetime | None:
        points = [r.recovery_point for r in self.repositories if r.recovery_point]
        return max(points) if points else None


@dataclass
class Snapshot:
    taken_at: datetime
    seconds: float  # how long reading it took
    sources: list[SourceFacts]
    reachable: dict[str, bool]  # repository -> could be read


def repository_facts(scan: RepositoryScan, source: str) -> RepositoryFacts:
    facts = RepositoryFacts(scan.repo.name, reachable=scan.error is None)
    if scan.error is not None:
        return facts
    facts.backups = newest_backups(scan.manifests)
    facts.damaged = len(scan.damaged)
    wal = scan.newest_wal
    if wal is not None:
        facts.wal_segments = int(wal["segments"])
        facts.wal_archived_at = (
            datetime.fromisoformat(wal["archived_at"]) if wal["archived_at"] else None
        )
    facts.recovery_point = recovery_point(scan.manifests, facts.wal_archived_at)
    try:
        held = {m.id for m in scan.manifests} | {d.backup for d in scan.damaged}
        facts.verification = verification_of(scan.repo, source, held)
    except LifeboatError as exc:
        log.warning("verification records of %s in %s not read: %s", source, scan.repo.name, exc)
    return facts


def newest_drill(repos: list[Repository], drills: dict[str, Any]) -> DrillRecord | None:
    """The body of the newest drill's record, from the first repository that has it."""
    newest = drills["newest"]
    if newest is None:
        return None
    for repo in repos:
        try:
            body = read_record(repo.storage, newest["key"])
        except LifeboatError:
            continue
        if body is None:
            continue
        try:
            return DrillRecord.from_json(body)
        except (KeyError, TypeError, ValueError):
            return None
    return None


def _duration(text: str | None) -> timedelta | None:
    return parse_duration(text) if text else None


def source_facts(ctx: Context, source: str, now: datetime) -> SourceFacts:
    config = ctx.source(source)
    has_wal = archives_wal(config)
    scans = [
        scan_repository(repo, source, now, wal=has_wal) for repo in ctx.repositories_for(source)
    ]
    repositories = [repository_facts(scan, source) for scan in scans]
    archive = ctx.lean.archive(source)
    readable = ctx.repositories_to_read(source)
    drills = drill_status(readable, source, drill_every(ctx, source), now)
    types_held = {kind for r in repositories for kind in r.backups}
    return SourceFacts(
        source=source,
        repositories=repositories,
        spool=spool_status(SpoolPaths(archive.spool), archive.async_push, now) if has_wal else None,
        spool_capacity=archive_of(config).spool_max_segments,
        drills=drills,
        newest_drill=newest_drill(readable, drills),
        rto_objective=_duration(config.objectives.rto),
        rpo_objective=_duration(config.objectives.rpo),
        drill_every=drill_every(ctx, source),
        backup_intervals=backup_intervals(ctx.config, source, types_held, now),
    )


def reachable_repositories(ctx: Context) -> dict[str, bool]:
    """Whether each configured repository can be read (its marker, nothing more)."""
    reachable = {}
    for name, repo in ctx.repositories.items():
        try:
            repo.ensure_initialised()
            reachable[name] = True
        except LifeboatError as exc:
            log.warning("repository %s cannot be read: %s", name, exc.message)
            reachable[name] = False
    return reachable


def take_snapshot(ctx: Context) -> Snapshot:
    started = time.monotonic()
    now = datetime.now(UTC)
    reachable = reachable_repositories(ctx)
    sources = [source_facts(ctx, name, now) for name in ctx.config.sources]
    return Snapshot(now, time.monotonic() - started, sources, reachable)
