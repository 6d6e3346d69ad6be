"""A logical drill: the dump restored in parallel into a fresh database, on a scratch
instance Lifeboat starts itself or, with target_dsn, on a staging server (a throw-away
database, dropped afterwards); compared with the backup's evidence, read as the depth asks
and checked. The production source is never touched."""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from lifeboat.context import Context
from lifeboat.errors import DatabaseError, IntegrityError, LifeboatError, RestoreError
from lifeboat.pipeline.crypto import Decryptor, Recipient
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
from lifeboat.sources.postgres.logical_restore import LoadResult, load_into
from lifeboat.sources.postgres.restore_roles import RolePlan, plan_roles
from lifeboat.util.redact import redact

log = logging.getLogger(__name__)

# the drilled database may be up to this many times the dump's plaintext
SPACE_FACTOR = 3


def _server_major(manifest: Manifest) -> int:
    return int(manifest.server.version.split(".")[0])


def drill_logical(ctx: Context, request: DrillRequest, clock: PhaseClock) -> DrillRun:
    manifest = request.manifest
    source = ctx.source(manifest.source)
    decryptor = ctx.decryptor(manifest.encryption.method)
    decryptor.check_can_decrypt(
        [Recipient(r["type"], r["id"]) for r in manifest.encryption.recipients]
    )
    major = _server_major(manifest)
    # a pg_restore as new as the pg_dump that wrote the archive
    tools = find_tools(max(major, int(manifest.tool.get("pg_dump_major", "0"))), source.pg_bin_dir)
    run = DrillRun(clock)
    with DrillWorkspace(request.work_dir, f"{manifest.source}-{manifest.id}") as space:
        require_free_space(
            space.path, SPACE_FACTOR * manifest.plain_size, f"the drill of {manifest.id}"
        )
        with _target(request, source.pg_bin_dir, space, run, clock) as (endpoint, bin_dir):
            admin = endpoint.with_dbname("postgres")
            database = endpoint.dbname
            with admin.connect(autocommit=True) as conn:
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
            with _created_roles(admin, plan):
                try:
                    _load(ctx, request, decryptor, tools, endpoint, database, plan, run, space)
                    if not run.problems:
                        _check(request, endpoint, database, bin_dir or tools.bin_dir, run)
                finally:
                    with (
                        contextlib.suppress(LifeboatError, psycopg.Error),
                        admin.connect(autocommit=True) as conn,
                    ):
                        logical.drop_database(conn, database)
    run.restored_up_to = manifest.started_at
    run.rpo_method = "snapshot"
    run.rpo_seconds = round(max(0.0, (request.started_at - manifest.started_at).total_seconds()), 3)
    return run


@contextlib.contextmanager
def _created_roles(admin: PgEndpoint, plan: RolePlan) -> Iterator[None]:
    """The roles the backup needs that the target lacked, created for the drill and
    dropped after it (on a scratch instance they go with it anyway)."""
    try:
        yield
    finally:
        if plan.create:
            with (
                contextlib.suppress(LifeboatError, psycopg.Error),
                admin.connect(autocommit=True) as conn,
            ):
                roles.drop_roles(conn, plan.create)


@contextlib.contextmanager
def _target(
    request: DrillRequest,
    pg_bin_dir: Path | None,
    space: DrillWorkspace,
    run: DrillRun,
    clock: PhaseClock,
) -> Iterator[tuple[PgEndpoint, Path | None]]:
    """Where the drill restores: (the endpoint of the database to create, the server's
    binaries when Lifeboat runs it)."""
    manifest = request.manifest
    name = manifest.database
    if request.target_dsn:
        staging = PgEndpoint.from_dsn(request.target_dsn, request.target_password_file)
        # checked before anything is fetched: an unreachable server is one clear line
        with staging.with_dbname("postgres").connect(autocommit=True):
            pass
        run.target = f"staging server {redact(staging.describe())}"
        drill_db = f"lifeboat_drill_{manifest.id.lower()}_{secrets.token_hex(3)}"
        yield staging.with_dbname(drill_db), None
        return
    major = _server_major(manifest)
    bin_dir = drill_checks.scratch_bin_dir(major, pg_bin_dir)
    run.target = f"scratch PostgreSQL {major}"
    with clock.phase("start"):
        cluster = ScratchCluster(bin_dir, space.path / "pg")
        space.note_server(cluster.data_dir, bin_dir)
        cluster.init()
        cluster.start()
    try:
        yield PgEndpoint.from_dsn(cluster.dsn(name)), bin_dir
    finally:
        cluster.stop(mode="immediate")


def _load(
    ctx: Context,
    request: DrillRequest,
    decryptor: Decryptor,
    tools: Any,
    endpoint: PgEndpoint,
    database: str,
    plan: RolePlan,
    run: DrillRun,
    space: DrillWorkspace,
) -> None:
    """Restore and compare; a failure the backup is to blame for becomes a problem."""
    manifest = request.manifest
    try:
        loaded: LoadResult = load_into(
            ctx,
            request.repository,
            manifest,
            decryptor,
            tools,
            endpoint,
            database,
            ownership=dbprops.FULL_OWNERSHIP,
            roles=plan,
            jobs=request.jobs,
            work_dir=space.path,
        )
    except (RestoreError, IntegrityError, DatabaseError) as exc:
        run.problems.append(exc.message)
        return
    run.clock.phases += [
        Phase("fetch", round(loaded.fetch_seconds, 3)),
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
