"""A logical drill: the dump restored in parallel into a fresh database, on a scratch
instance Lifeboat starts itself or, with target_dsn, on a staging server (a throw-away
database, dropped afterwards); compared with the backup's evidence, read as the depth asks
and checked. The production source is never touched."""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from lifeboat.context import Context
from lifeboat.errors import DatabaseError, IntegrityError, LifeboatError, RestoreError
from lifeboat.pipeline.crypto import Decryptor
from lifeboat.postgres import dbprops, logical, roles
from lifeboat.postgres.binaries import find_tools
from lifeboat.postgres.conn import PgEndpoint
from lifeboat.postgres.instance import ScratchCluster
from lifeboat.postgres.workspace import DrillWorkspace
from lifeboat.repo.drills import Phase, TableComparison
from lifeboat.repo.fetch import require_free_space
from lifeboat.repo.manifest import Manifest
from lifeboat.sources.base import DrillRequest, DrillRun, PhaseClock
from lifeboat.sources.postgres import drill_checks
from lifeboat.sources.postgres.logical_restore import (
    LoadResult,
    create_like,
    fetch_archive,
    load_into,
    load_method,
    stream_locks,
)
from lifeboat.sources.postgres.restore_roles import RolePlan, plan_roles
from lifeboat.util.redact import redact

log = logging.getLogger(__name__)

# the drilled database may be up to this many times the dump's plaintext
SPACE_FACTOR = 3
# A scratch instance has nothing to replicate or archive: with wal_level minimal, the
# COPY of each table pg_restore --jobs creates in the same run writes almost no WAL (it
# truncates the new table in the COPY's transaction for this), and index builds get the
# memory a DBA gives a restore. Its initdb goes without data checksums: with them, the first
# read of each freshly loaded page after its COPY committed (an index build, a foreign key's
# validation) sets hint bits and so writes the whole page into WAL again; a logical drill
# proves the dump, not the pages of a folder it removes afterwards. Durability (fsync) is
# left as it is: RTO is measured on a server that writes as a real one does.
SCRATCH_SETTINGS = {
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "maintenance_work_mem": "256MB",
    "max_connections": "100",
    "max_prepared_transactions": "0",
}
# the scratch instance's lock table is made room enough for a streamed load in one
# transaction (load_method), up to this many locks per connection slot: beyond, its shared
# memory would grow past a few hundred MB, and the dump is loaded from a file instead
MAX_LOCKS_PER_TRANSACTION = 4096


def scratch_settings(manifest: Manifest) -> dict[str, str]:
    """SCRATCH_SETTINGS, with a lock table that takes the dump's objects in one transaction
    twice over when it can."""
    locks = stream_locks(manifest) or 0
    slots = int(SCRATCH_SETTINGS["max_connections"])
    per_slot = min(MAX_LOCKS_PER_TRANSACTION, max(64, -(-2 * locks // slots)))
    return {**SCRATCH_SETTINGS, "max_locks_per_transaction": str(per_slot)}


def lock_capacity(settings: dict[str, str]) -> int:
    """What postgres/logical.lock_capacity will read from an instance with these settings."""
    slots = int(settings["max_connections"]) + int(settings["max_prepared_transactions"])
    return int(settings["max_locks_per_transaction"]) * slots


def _server_major(manifest: Manifest) -> int:
    return int(manifest.server.version.split(".")[0])


def drill_logical(ctx: Context, request: DrillRequest, clock: PhaseClock) -> DrillRun:
    manifest = request.manifest
    source = ctx.postgres_source(manifest.source)
    decryptor = ctx.decryptor_for(manifest)
    major = _server_major(manifest)
    # a pg_restore as new as the pg_dump that wrote the archive
    tools = find_tools(max(major, int(manifest.tool.get("pg_dump_major", "0"))), source.pg_bin_dir)
    run = DrillRun(clock)
    with DrillWorkspace(request.work_dir, f"{manifest.source}-{manifest.id}") as space:
        require_free_space(
            space.path, SPACE_FACTOR * manifest.plain_size, f"the drill of {manifest.id}"
        )
        with (
            _target(request, source.pg_bin_dir, space, run) as target,
            contextlib.ExitStack() as dump,
        ):
            archive: Path | None = None
            if target.stream:
                # restored while it is decrypted: nothing to fetch beforehand
                with clock.phase("start"):
                    endpoint = target.ready()
            else:
                # the scratch instance starts while the dump is fetched: neither waits
                with clock.phase("start+fetch" if target.starting else "fetch"):
                    try:
                        archive = dump.enter_context(
                            fetch_archive(
                                ctx,
                                request.repository,
                                manifest,
                                decryptor,
                                space.path,
                                manifest.id,
                            )
                        )
                    except (RestoreError, IntegrityError) as exc:
                        run.problems.append(exc.message)  # the stored dump is damaged
                        return _finish(run, request)
                    endpoint = target.ready()
            with endpoint.with_dbname("postgres").connect(autocommit=True) as conn:
                plan = plan_roles(
                    request.repository,
                    manifest,
                    decryptor,
                    conn,
                    dbprops.FULL_OWNERSHIP,
                    True,
                    endpoint.describe(),
                )
                row = conn.execute("SELECT version()").fetchone()
                run.postgres_version = str(row[0]).split(" on ")[0] if row else ""
            target.created_roles = plan.create
            _load(ctx, request, decryptor, tools, target, plan, run, archive, space.path)
            if not run.problems:
                _check(request, endpoint, endpoint.dbname, target.bin_dir or tools.bin_dir, run)
    return _finish(run, request)


def _finish(run: DrillRun, request: DrillRequest) -> DrillRun:
    """The data-loss window: a logical backup holds what its snapshot saw."""
    run.restored_to(request.manifest.started_at, "snapshot", request.started_at)
    return run


@dataclass
class _Target:
    """Where the drill restores: a database on a staging server, or on a scratch instance
    that may still be starting."""

    bin_dir: Path | None  # the server's binaries, when Lifeboat runs it
    endpoint: PgEndpoint | None = None  # of the database the drill creates
    starting: Future[PgEndpoint] | None = None
    database_made: bool = False  # the drill's database exists already (on a scratch instance)
    stream: bool = False  # the dump is streamed into one transaction (a scratch instance)
    created_roles: list[str] = field(default_factory=list)

    def ready(self) -> PgEndpoint:
        """The drill database's endpoint, once the instance has started (its failure
        raised here)."""
        if self.starting is not None:
            self.endpoint = self.starting.result()
            self.starting = None
        assert self.endpoint is not None
        return self.endpoint


@contextlib.contextmanager
def _target(
    request: DrillRequest,
    pg_bin_dir: Path | None,
    space: DrillWorkspace,
    run: DrillRun,
) -> Iterator[_Target]:
    """Where the drill restores. A scratch instance is started in the background and goes
    as a whole (stopped at once, its folder removed with the workspace); on a staging
    server the drill's database and the roles created for it are dropped afterwards."""
    manifest = request.manifest
    if request.target_dsn:
        staging = PgEndpoint.from_dsn(request.target_dsn, request.target_password_file)
        # checked before anything is fetched: an unreachable server is one clear line
        with staging.with_dbname("postgres").connect(autocommit=True):
            pass
        run.target = f"staging server {redact(staging.describe())}"
        drill_db = f"lifeboat_drill_{manifest.id.lower()}_{secrets.token_hex(3)}"
        target = _Target(None, staging.with_dbname(drill_db))
        try:
            yield target
        finally:
            _drop_from_staging(staging.with_dbname("postgres"), drill_db, target.created_roles)
        return
    major = _server_major(manifest)
    bin_dir = drill_checks.scratch_bin_dir(major, pg_bin_dir)
    run.target = f"scratch PostgreSQL {major}"
    settings = scratch_settings(manifest)
    stream = load_method(manifest, request.jobs, lock_capacity(settings)) == "stream"
    cluster = ScratchCluster(bin_dir, space.path / "pg", settings=settings)
    space.note_server(cluster.data_dir, bin_dir)

    def start() -> PgEndpoint:
        # a throw-away cluster: initdb need not wait for its files to reach the disk, and
        # no data checksums (see SCRATCH_SETTINGS)
        cluster.init(sync=False, checksums=False)
        cluster.start()
        # the drill's database too, like the backed-up one: CREATE DATABASE writes and
        # syncs a copy of template1, time the fetch hides
        with PgEndpoint.from_dsn(cluster.dsn("postgres")).connect(autocommit=True) as admin:
            create_like(admin, manifest.database, manifest)
        return PgEndpoint.from_dsn(cluster.dsn(manifest.database))

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="drill-start") as pool:
        starting = pool.submit(start)
        try:
            yield _Target(bin_dir, starting=starting, database_made=True, stream=stream)
        finally:
            wait([starting])
            cluster.stop(mode="immediate")


def _drop_from_staging(admin: PgEndpoint, database: str, created_roles: list[str]) -> None:
    """The drill's database, then the roles created for it (they own its objects)."""
    with contextlib.suppress(LifeboatError, psycopg.Error), admin.connect(autocommit=True) as conn:
        logical.drop_database(conn, database)
        roles.drop_roles(conn, created_roles)


def _load(
    ctx: Context,
    request: DrillRequest,
    decryptor: Decryptor,
    tools: Any,
    target: _Target,
    plan: RolePlan,
    run: DrillRun,
    archive: Path | None,
    space_path: Path,
) -> None:
    """Restore and compare; a failure the backup is to blame for becomes a problem."""
    manifest = request.manifest
    endpoint = target.ready()
    try:
        loaded: LoadResult = load_into(
            ctx,
            request.repository,
            manifest,
            decryptor,
            tools,
            endpoint,
            endpoint.dbname,
            ownership=dbprops.FULL_OWNERSHIP,
            roles=plan,
            jobs=request.jobs,
            work_dir=space_path,
            create=not target.database_made,
            archive=archive,
            may_stream=target.stream,
        )
    except (RestoreError, IntegrityError, DatabaseError) as exc:
        run.problems.append(exc.message)
        return
    if archive is None and loaded.fetch_seconds > 0:  # fetched after all (a small lock table)
        run.clock.phases.append(Phase("fetch", round(loaded.fetch_seconds, 3)))
    run.clock.phases += [
        Phase("restore", round(loaded.restore_seconds, 3)),
        Phase("verify", round(loaded.verify_seconds, 3)),
    ]
    check = loaded.check
    run.tables = [TableComparison(t.table, t.expected, t.actual) for t in check.tables]
    run.problems += [f"index {name} missing" for name in check.missing_indexes]
    run.problems += [f"constraint {name} missing" for name in check.missing_constraints]
    if check.ok:
        # the database accepts connections and matches the backup's evidence
        run.clock.ready()


def _check(
    request: DrillRequest,
    endpoint: PgEndpoint,
    database: str,
    bin_dir: Path,
    run: DrillRun,
) -> None:
    with run.clock.phase("checks"):
        if request.depth != "quick":
            run.checks.append(drill_checks.read_every_table(endpoint))
        if request.depth == "full":
            run.checks.append(drill_checks.amcheck(bin_dir, endpoint, every_database=False))

        def endpoint_of(name: str) -> PgEndpoint:
            # a check names the backed-up database; the drill restored it under its own name
            return endpoint.with_dbname(database if name == request.manifest.database else name)

        run.checks += drill_checks.run_checks(
            endpoint_of, request.checks, request.manifest.database
        )
