"""PostgreSQL's two kinds of source behind the Source protocol (sources/base.py).

Thin adapters: the work stays in logical_backup/logical_restore (pg_dump, one database) and
physical_backup/physical_restore (pg_basebackup, the whole cluster, recovered to a point in
time through the WAL archive); these give both the shape every kind has."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lifeboat.errors import LifeboatError
from lifeboat.postgres import dbprops
from lifeboat.repo.manifest import PostgresLogicalDetails, PostgresPhysicalDetails
from lifeboat.sources.postgres.physical_backup import DEFAULT_WAL_TIMEOUT

if TYPE_CHECKING:
    import psycopg

    from lifeboat.context import Context
    from lifeboat.postgres.conn import PgEndpoint
    from lifeboat.repo.commit import BackupResult
    from lifeboat.repo.manifest import Manifest
    from lifeboat.sources.base import DrillRequest, DrillRun, PhaseClock, Source
    from lifeboat.sources.postgres.logical_restore import Confirm, RestoreResult
    from lifeboat.sources.postgres.physical_restore import PitrResult, RecoveryTarget

# what a check does with the source's server once connected: raise what it finds wrong
ServerCheck = Callable[["psycopg.Connection[Any]", "PgEndpoint"], None]


def _problems(ctx: Context, source: str, tools: tuple[str, ...], check: ServerCheck) -> list[str]:
    """Whether the source's server answers, passes check, and the client tools for its
    version are here: the first failure found, as its one line."""
    from lifeboat.postgres import logical
    from lifeboat.postgres.binaries import find_tools
    from lifeboat.postgres.conn import PgEndpoint

    config = ctx.postgres_source(source)
    endpoint = PgEndpoint.from_dsn(config.dsn, config.password_file)
    try:
        with endpoint.connect(autocommit=True) as conn:
            major = logical.server_major(logical.server_info(conn))
            check(conn, endpoint)
        find_tools(major, config.pg_bin_dir, tools=tools)
    except LifeboatError as exc:
        return [exc.message]
    return []


def _nothing_more(conn: psycopg.Connection[Any], endpoint: PgEndpoint) -> None:
    return None


@dataclass(frozen=True)
class LogicalRestoreRequest:
    """restore_logical's options (see there)."""

    backup: str = "latest"
    target_db: str | None = None
    target_dsn: str | None = None
    target_password_file: Path | None = None
    tables: Sequence[str] = ()
    assume_yes: bool = False
    confirm: Confirm | None = None
    repository: str | None = None
    ownership: dbprops.Ownership = dbprops.FULL_OWNERSHIP
    create_roles: bool = False
    jobs: int | None = None
    work_dir: Path | None = None


@dataclass(frozen=True)
class PostgresLogical:
    """One database, dumped with pg_dump (and the cluster's roles with pg_dumpall)."""

    accept_new_cluster: bool = False

    @property
    def kind(self) -> str:
        return PostgresLogicalDetails.KIND

    def backup(self, ctx: Context, source: str) -> BackupResult:
        from lifeboat.sources.postgres.logical_backup import backup_logical

        return backup_logical(ctx, source, accept_new_cluster=self.accept_new_cluster)

    def restore(self, ctx: Context, source: str, request: LogicalRestoreRequest) -> RestoreResult:
        from lifeboat.sources.postgres.logical_restore import restore_logical

        return restore_logical(
            ctx,
            source,
            backup=request.backup,
            target_db=request.target_db,
            target_dsn=request.target_dsn,
            target_password_file=request.target_password_file,
            tables=request.tables,
            assume_yes=request.assume_yes,
            confirm=request.confirm,
            repository=request.repository,
            ownership=request.ownership,
            create_roles=request.create_roles,
            jobs=request.jobs,
            work_dir=request.work_dir,
        )

    def describe(self, manifest: Manifest) -> dict[str, Any]:
        evidence = manifest.evidence
        return {
            "database": manifest.database,
            "tables": len(evidence.row_counts) if evidence else None,
            "rows": sum(evidence.row_counts.values()) if evidence else None,
        }

    def checks(self, ctx: Context, source: str) -> list[str]:
        return _problems(ctx, source, ("pg_dump", "pg_dumpall"), _nothing_more)

    def drill(self, ctx: Context, request: DrillRequest, clock: PhaseClock) -> DrillRun:
        from lifeboat.sources.postgres.drill_logical import drill_logical

        return drill_logical(ctx, request, clock)


@dataclass(frozen=True)
class PhysicalRestoreRequest:
    """restore_physical's options (see there)."""

    pgdata: Path
    target: RecoveryTarget
    backup: str | None = None
    force: bool = False
    delta: bool = False
    tablespace_map: dict[str, Path] | None = None
    archive_mode: Literal["preserve", "off"] = "preserve"
    start: bool = False
    port: int | None = None
    config_path: Path | None = None
    wait_timeout: float = 600.0
    repository: str | None = None
    accept_gap: bool = False


@dataclass(frozen=True)
class PostgresPhysical:
    """The whole cluster, copied with pg_basebackup (incremental on PostgreSQL 17 and
    later), restored to a point in time through the WAL archive."""

    wal_timeout: float = DEFAULT_WAL_TIMEOUT
    incremental: bool = False
    accept_new_cluster: bool = False

    @property
    def kind(self) -> str:
        return PostgresPhysicalDetails.KIND

    def backup(self, ctx: Context, source: str) -> BackupResult:
        from lifeboat.sources.postgres.physical_backup import backup_physical

        return backup_physical(
            ctx,
            source,
            wal_timeout=self.wal_timeout,
            incremental_backup=self.incremental,
            accept_new_cluster=self.accept_new_cluster,
        )

    def restore(self, ctx: Context, source: str, request: PhysicalRestoreRequest) -> PitrResult:
        from lifeboat.sources.postgres.physical_restore import restore_physical

        return restore_physical(
            ctx,
            source,
            request.pgdata,
            request.target,
            backup=request.backup,
            force=request.force,
            delta=request.delta,
            tablespace_map=request.tablespace_map,
            archive_mode=request.archive_mode,
            start=request.start,
            port=request.port,
            config_path=request.config_path,
            wait_timeout=request.wait_timeout,
            repository=request.repository,
            accept_gap=request.accept_gap,
        )

    def describe(self, manifest: Manifest) -> dict[str, Any]:
        physical = manifest.physical
        if physical is None:
            return {}
        return {
            "timeline": physical.timeline,
            "start_lsn": physical.start_lsn,
            "stop_lsn": physical.stop_lsn,
            "parent": physical.parent,
            "tablespaces": [t.name for t in physical.tablespaces],
        }

    def checks(self, ctx: Context, source: str) -> list[str]:
        """Besides the server and pg_basebackup: a base backup needs WAL archiving on."""
        from lifeboat.postgres import physical
        from lifeboat.sources.postgres.physical_backup import require_archiving

        def archiving(conn: psycopg.Connection[Any], endpoint: PgEndpoint) -> None:
            require_archiving(physical.cluster_facts(conn), endpoint, source)

        return _problems(ctx, source, ("pg_basebackup",), archiving)

    def drill(self, ctx: Context, request: DrillRequest, clock: PhaseClock) -> DrillRun:
        from lifeboat.sources.postgres.drill_physical import drill_physical

        return drill_physical(ctx, request, clock)


if TYPE_CHECKING:
    # both are Sources: mypy checks these against the protocol
    _logical: Source[LogicalRestoreRequest] = PostgresLogical()
    _physical: Source[PhysicalRestoreRequest] = PostgresPhysical()
