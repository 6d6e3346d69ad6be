"""Restore drills: pick backups, have their source kind restore and check each on a
throw-away target, measure RTO and RPO, judge them against the objectives and write the
record into every repository that holds the backup."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from lifeboat import __version__
from lifeboat.context import Context
from lifeboat.errors import DecryptionKeyError, LifeboatError, UsageError
from lifeboat.ops.drill_records import record_drill, repositories_holding
from lifeboat.policy.drill import (
    Objectives,
    Pick,
    check_reaches,
    pick_backups,
    seconds_text,
    verdict_reasons,
)
from lifeboat.policy.recovery import parse_time
from lifeboat.policy.retention import duration_text
from lifeboat.repo.catalog import Repository
from lifeboat.repo.choice import first_that_serves
from lifeboat.repo.drills import DrillRecord
from lifeboat.repo.manifest import Manifest
from lifeboat.repo.records import os_user
from lifeboat.sources.base import DrillRequest, PhaseClock
from lifeboat.sources.registry import kind_of

log = logging.getLogger(__name__)

Depth = Literal["quick", "standard", "full"]


@dataclass(frozen=True)
class DrillOptions:
    backup: str | None = None  # a backup id; else `pick` chooses one of each type
    pick: Pick = "latest"
    within: timedelta | None = None
    to_time: str | None = None
    depth: Depth | None = None  # else the source's configured depth
    operator: str | None = None
    repository: str | None = None
    # when the command began (time.monotonic()): the first drill's recovery time runs from
    # it, the others' from their own start
    began: float | None = None


@dataclass
class DrillReport:
    records: list[DrillRecord] = field(default_factory=list)
    # source -> why it could not be drilled at all (no backup, no key, no binaries...)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors and all(r.passed for r in self.records)


def drill(ctx: Context, sources: list[str], options: DrillOptions) -> DrillReport:
    """Drill each source; with several, one that cannot be drilled does not stop the
    others (its error is reported). With one, its error is raised."""
    report = DrillReport()
    for name in sources:
        try:
            report.records += drill_source(ctx, name, options)
            options = replace(options, began=None)
        except LifeboatError as exc:
            if len(sources) == 1:
                raise
            log.error("%s: %s", name, exc.message)
            report.errors[name] = exc.message
    return report


def drill_source(ctx: Context, source: str, options: DrillOptions) -> list[DrillRecord]:
    config = ctx.source(source)  # an unknown source is a usage error before anything is read
    if options.to_time and config.type != "postgres":
        raise UsageError(
            f"source {source!r} is a {config.type} source: --to-time recovers a PostgreSQL "
            f"physical backup to a moment; a {config.type} backup restores its snapshot"
        )
    picked: str = "id" if options.backup else options.pick
    if options.pick == "random" and options.within is not None:
        picked = f"random (within {duration_text(options.within)})"

    # a drill to a time recovers a physical backup finished by then: a logical one, or one
    # finished later, cannot be drilled to it (and must not fail a drill for it)
    until = parse_time(options.to_time) if options.to_time else None

    def choose(repo: Repository) -> list[Manifest]:
        repo.ensure_initialised()
        if options.backup:
            manifest = repo.load_manifest(source, options.backup)
            if until is not None:
                check_reaches(manifest, until)
            return [manifest]
        return pick_backups(
            repo.list_backups(source),
            options.pick,
            within=options.within,
            now=datetime.now(UTC),
            until=until,
        )

    repo, manifests = first_that_serves(
        ctx.repositories_to_read(source, options.repository), choose
    )
    records = []
    for manifest in manifests:
        records.append(drill_backup(ctx, repo, manifest, options, picked))
        options = replace(options, began=None)
    return records


def drill_backup(
    ctx: Context, repo: Repository, manifest: Manifest, options: DrillOptions, picked: str
) -> DrillRecord:
    now = time.monotonic()
    began = options.began if options.began is not None else now
    started_at = datetime.now(UTC) - timedelta(seconds=now - began)
    config = ctx.source(manifest.source)
    objectives = Objectives.parse(config.objectives.rto, config.objectives.rpo)
    depth = options.depth or config.drill.depth
    request = DrillRequest(
        manifest=manifest,
        repository=repo,
        started_at=started_at,
        depth=depth,
        checks=config.drill.checks,
        work_dir=config.drill.work_dir,
        jobs=config.drill.jobs or os.cpu_count() or 1,
        target_dsn=config.drill.target_dsn if manifest.physical is None else None,
        target_password_file=config.drill.target_password_file,
        to_time=options.to_time,
        config_path=ctx.config_path,
    )
    clock = PhaseClock(began)
    log.info(
        "drill of %s/%s (%s) from repository %s",
        manifest.source,
        manifest.id,
        manifest.type,
        repo.name,
    )
    try:
        run = kind_of(manifest).drill(ctx, request, clock)
    except DecryptionKeyError as exc:
        raise DecryptionKeyError(
            f"a drill decrypts the backup, so it needs the identity (private key): {exc.message}"
        ) from None

    def reasons_against(judged_by: Objectives) -> list[str]:
        return verdict_reasons(
            problems=run.problems,
            tables=run.tables,
            checks=run.checks,
            rto_seconds=clock.rto_seconds,
            rpo_seconds=run.rpo_seconds,
            objectives=judged_by,
            kind=manifest.type,
        )

    reasons = reasons_against(objectives)
    # the same without objectives: whether the backup restores at all, which retention
    # asks (an old backup's RPO always exceeds the objective)
    unproved = reasons_against(Objectives())
    finished_at = datetime.now(UTC)
    record = DrillRecord(
        drill_id=f"{started_at:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}",
        source=manifest.source,
        backup=manifest.id,
        kind=manifest.type,
        picked=picked,
        target=run.target,
        depth=depth,
        started_at=started_at,
        finished_at=finished_at,
        verdict="fail" if reasons else "pass",
        reasons=reasons,
        phases=clock.phases,
        rto_seconds=clock.rto_seconds,
        rpo_seconds=run.rpo_seconds,
        rpo_method=run.rpo_method,
        recovered_to=run.recovered_to,
        objectives=objectives.as_seconds(),
        checks=run.checks,
        tables=run.tables,
        postgres_version=run.postgres_version,
        lifeboat_version=__version__,
        host=socket.gethostname(),
        operator=options.operator or os_user(),
        restore_proved=not unproved,
    )
    _log_outcome(record)
    record_drill(repositories_holding(ctx, record.source, record.backup), record)
    return record


def _log_outcome(record: DrillRecord) -> None:
    rto = seconds_text(record.rto_seconds) if record.rto_seconds is not None else "none"
    rpo = seconds_text(record.rpo_seconds) if record.rpo_seconds is not None else "none"
    if record.passed:
        log.info(
            "drill of %s/%s passed: RTO %s, RPO %s (%s)",
            record.source,
            record.backup,
            rto,
            rpo,
            record.rpo_method,
        )
        return
    log.error("drill of %s/%s failed: %s", record.source, record.backup, "; ".join(record.reasons))
