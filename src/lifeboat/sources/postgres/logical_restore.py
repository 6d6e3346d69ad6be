"""Restore a logical backup into a scratch database, check it, then put it in place."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import psycopg

from lifeboat.context import Context
from lifeboat.errors import (
    AbortedError,
    DatabaseError,
    InsufficientSpaceError,
    IntegrityError,
    LifeboatError,
    RestoreError,
)
from lifeboat.pipeline.crypto import Decryptor
from lifeboat.pipeline.stream import ProcessInput
from lifeboat.postgres import dbprops, logical
from lifeboat.postgres import roles as pg_roles
from lifeboat.postgres.binaries import PgTools, find_tools
from lifeboat.postgres.conn import PgEndpoint
from lifeboat.repo.catalog import Repository
from lifeboat.repo.choice import first_that_serves
from lifeboat.repo.fetch import fetched, require_room
from lifeboat.repo.manifest import SAFETY_LABEL, Evidence, Manifest
from lifeboat.repo.objects import read_plain
from lifeboat.sources.postgres import table_plan
from lifeboat.sources.postgres.logical_backup import backup_logical
from lifeboat.sources.postgres.restore_roles import RolePlan, plan_roles

log = logging.getLogger(__name__)

Confirm = Callable[[str], bool]


@dataclass
class TableCheck:
    table: str
    expected: int
    actual: int | None

    @property
    def ok(self) -> bool:
        return self.expected == self.actual


@dataclass
class EvidenceCheck:
    tables: list[TableCheck] = field(default_factory=list)
    missing_indexes: list[str] = field(default_factory=list)
    missing_constraints: list[str] = field(default_factory=list)
    checked_indexes: int = 0
    checked_constraints: int = 0

    @property
    def ok(self) -> bool:
        return (
            all(t.ok for t in self.tables)
            and not self.missing_indexes
            and not self.missing_constraints
        )

    def problems(self) -> list[str]:
        found = [
            f"{t.table}: {t.actual} rows, backup has {t.expected}" for t in self.tables if not t.ok
        ]
        found += [f"index {name} missing" for name in self.missing_indexes]
        found += [f"constraint {name} missing" for name in self.missing_constraints]
        return found


@dataclass
class RestoreResult:
    manifest: Manifest
    target: str
    database: str
    created: bool
    safety_backup: str | None
    terminated_sessions: int
    check: EvidenceCheck
    seconds: float
    tables: list[str]
    repository: str = ""
    created_roles: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "backup": self.manifest.id,
            "source": self.manifest.source,
            "repository": self.repository,
            "target": self.target,
            "database": self.database,
            "created": self.created,
            "safety_backup": self.safety_backup,
            "terminated_sessions": self.terminated_sessions,
            "created_roles": self.created_roles,
            "seconds": round(self.seconds, 3),
            "verified": self.check.ok,
            "tables": [
                {"table": t.table, "expected": t.expected, "actual": t.actual, "ok": t.ok}
                for t in self.check.tables
            ],
            "problems": self.check.problems(),
            "notes": self.notes,
        }


def check_evidence(
    conn: psycopg.Connection[Any],
    evidence: Evidence,
    tables: Sequence[str] | None = None,
    fresh_database: bool = False,
) -> EvidenceCheck:
    """Compare a restored database with the backup's evidence.

    In a database the restore just created, the server's own count of inserted rows is
    exact, and reading it avoids a first full scan of every freshly loaded table (which
    has to set every row's hint bits). Tables whose count differs there are counted
    with count(*) before anything is called a mismatch."""
    expected = evidence.row_counts
    if tables is not None:
        expected = {name: count for name, count in expected.items() if name in tables}
    present = {r[0] for r in conn.execute(logical.TABLES_SQL)}
    candidates = [name for name in expected if name in present]
    actual = logical.inserted_rows(conn) if fresh_database else {}
    recount = [name for name in candidates if actual.get(name) != expected[name]]
    actual.update(logical.row_counts(conn, recount))
    check = EvidenceCheck(
        tables=[
            TableCheck(name, count, actual.get(name)) for name, count in sorted(expected.items())
        ]
    )
    indexes = set(evidence.indexes)
    constraints = set(evidence.constraints)
    if tables is not None:
        wanted_prefixes = tuple(f"{name}." for name in tables)
        indexes = {i for i in indexes if i.startswith(wanted_prefixes)}
        constraints = {c for c in constraints if c.startswith(wanted_prefixes)}
    check.missing_indexes = sorted(indexes - {r[0] for r in conn.execute(logical.INDEXES_SQL)})
    check.missing_constraints = sorted(
        constraints - {r[0] for r in conn.execute(logical.CONSTRAINTS_SQL)}
    )
    check.checked_indexes, check.checked_constraints = len(indexes), len(constraints)
    return check


def restore_logical(
    ctx: Context,
    source_name: str,
    *,
    backup: str = "latest",
    target_db: str | None = None,
    target_dsn: str | None = None,
    target_password_file: Path | None = None,
    tables: Sequence[str] = (),
    assume_yes: bool = False,
    confirm: Confirm | None = None,
    repository: str | None = None,
    ownership: dbprops.Ownership = dbprops.FULL_OWNERSHIP,
    create_roles: bool = False,
    jobs: int | None = None,
    work_dir: Path | None = None,
) -> RestoreResult:
    """Restore a logical backup. A full restore keeps owners and privileges unless
    `ownership` says otherwise, and refuses before changing anything when roles they name
    are missing, unless `create_roles` creates them from the backup's globals. It runs
    `jobs` pg_restore jobs (default: one per core) from the dump decrypted into a file in
    `work_dir` (default: the system's temporary folder)."""
    started = time.monotonic()
    jobs = jobs or default_jobs()
    work_dir = work_dir or Path(tempfile.gettempdir())
    source = ctx.postgres_source(source_name, "a logical restore")

    def find(repo: Repository) -> Manifest:
        repo.ensure_initialised()
        return repo.resolve(source_name, backup, kind="logical")

    repo, manifest = first_that_serves(ctx.repositories_to_read(source_name, repository), find)
    decryptor = ctx.decryptor_for(manifest)

    # the tables' names are checked against the backup before anything else
    selection = table_plan.select(manifest, tables) if tables else None
    if target_dsn:
        endpoint = PgEndpoint.from_dsn(target_dsn, target_password_file)
        database = target_db or endpoint.dbname
    else:
        endpoint = PgEndpoint.from_dsn(source.dsn, source.password_file)
        database = target_db or manifest.database
    endpoint = endpoint.with_dbname(database)
    admin = _admin_connection(endpoint)
    try:
        server = logical.server_info(admin)
        needed = max(logical.server_major(server), int(manifest.tool.get("pg_dump_major", "0")))
        tools = find_tools(needed, source.pg_bin_dir)
        exists = logical.database_exists(admin, database)
        role_plan = RolePlan()
        target = None
        if selection is not None:
            # imported here: it builds on this module
            from lifeboat.sources.postgres import restore_tables

            major = logical.server_major(server)
            target = restore_tables.prepare(tools, major, endpoint, selection, exists)
        else:
            _require_room(work_dir, manifest)
            role_plan = plan_roles(
                repo, manifest, decryptor, admin, ownership, create_roles, endpoint.describe()
            )
        if exists and not assume_yes:
            what = f"tables {', '.join(selection.asked)} in" if selection else "database"
            if confirm is None or not confirm(database):
                raise AbortedError(
                    f"{what} {database} on {endpoint.describe()} would be overwritten: "
                    "pass --yes or confirm by typing its name"
                )
        # a full restore's scratch database comes first: a server that cannot create it
        # like the original (a locale it lacks) refuses before the safety backup
        scratch = _create_scratch(admin, manifest) if selection is None else None
        try:
            safety = (
                _safety_backup(ctx, source_name, endpoint, manifest, database) if exists else None
            )
        except BaseException:
            if scratch is not None:
                logical.drop_database(admin, scratch)
            raise
        job = _Job(
            ctx,
            repo,
            manifest,
            decryptor,
            tools,
            admin,
            endpoint,
            database,
            exists,
            ownership,
            role_plan,
            jobs,
            work_dir,
        )
        notes: list[str] = []
        if selection is not None and target is not None:
            terminated = 0
            check, notes = restore_tables.restore(job, selection, target)
        else:
            assert scratch is not None
            terminated, check = _restore_database(job, scratch)
    finally:
        admin.close()
    return RestoreResult(
        manifest=manifest,
        target=endpoint.describe(),
        database=database,
        created=not exists,
        safety_backup=safety,
        terminated_sessions=terminated,
        check=check,
        seconds=time.monotonic() - started,
        tables=selection.asked if selection else [],
        notes=notes,
        repository=repo.name,
        created_roles=role_plan.create,
    )


def _safety_backup(
    ctx: Context, source_name: str, endpoint: PgEndpoint, manifest: Manifest, database: str
) -> str:
    safety = backup_logical(
        ctx,
        source_name,
        endpoint=endpoint,
        labels={
            "kind": SAFETY_LABEL,
            "before_restore_of": manifest.id,
            "database": database,
        },
    ).manifest.id
    log.info("safety backup of %s taken: %s/%s", database, source_name, safety)
    return safety


def _require_room(work_dir: Path, manifest: Manifest) -> None:
    """The work folder's room, checked before anything changes (no safety backup either)."""
    try:
        require_room(work_dir, manifest, manifest.objects[0])
    except InsufficientSpaceError as exc:
        raise InsufficientSpaceError(f"{exc.message} (--work-dir chooses another folder)") from None


def default_jobs() -> int:
    """pg_restore jobs when none are asked for: one per core."""
    return os.cpu_count() or 1


def _create_scratch(admin: psycopg.Connection[Any], manifest: Manifest) -> str:
    """The empty database a full restore goes into, created like the backed-up one."""
    scratch = f"lifeboat_restore_{manifest.id.lower()}_{secrets.token_hex(3)}"
    create_like(admin, scratch, manifest)
    return scratch


def create_like(admin: psycopg.Connection[Any], name: str, manifest: Manifest) -> None:
    """An empty database with the backed-up one's encoding and locale (an older backup,
    which did not record them: the server's defaults)."""
    props = manifest.database_properties
    if props is None:
        logical.create_database(admin, name)
        return
    major = admin.info.server_version // 10000
    try:
        logical.create_database(admin, name, dbprops.creation_options(props, major))
    except DatabaseError as exc:
        locale = props.locale or props.collate
        raise RestoreError(
            f"this server cannot create a database like {manifest.database} "
            f"({props.encoding}, {props.locale_provider} locale {locale}): "
            f"{exc.message.split(': ', 1)[-1]}; install that locale on the server, "
            "or restore onto one that has it"
        ) from None


def _admin_connection(endpoint: PgEndpoint) -> psycopg.Connection[Any]:
    try:
        return endpoint.with_dbname("postgres").connect(autocommit=True)
    except LifeboatError:
        return endpoint.with_dbname("template1").connect(autocommit=True)


@dataclass
class LoadResult:
    """A logical backup loaded into a database: how long each phase took, how the result
    compares with the backup's evidence, and the roles created for it (they stay)."""

    fetch_seconds: float
    restore_seconds: float
    verify_seconds: float
    check: EvidenceCheck
    created_roles: list[str] = field(default_factory=list)


def load_into(
    ctx: Context,
    repo: Repository,
    manifest: Manifest,
    decryptor: Decryptor,
    tools: PgTools,
    endpoint: PgEndpoint,
    database: str,
    *,
    ownership: dbprops.Ownership,
    roles: RolePlan,
    jobs: int,
    work_dir: Path,
    create: bool = True,
    archive: Path | None = None,
    may_stream: bool = False,
) -> LoadResult:
    """Load a logical backup into `database`, a new database on endpoint's server, and
    compare it with the backup's evidence; renames or swaps nothing.

    Creates the database like the original (unless `create` is False: the caller made it
    so already), then the roles `roles` plans, decrypts the dump into a file in work_dir,
    runs `pg_restore --jobs` from it, checks the evidence, and gives the database the
    original's properties. A mismatch is returned in `check`, for the caller to judge; any
    other failure drops the database (never one that existed before: a name already taken
    fails the creation) and the roles this created, and raises. The dump file is removed
    whatever happens. With `archive`, the dump already fetched there is restored instead
    (the caller fetched it while doing something else, and removes it). `may_stream`: the
    server is Lifeboat's own (a drill's scratch instance), where one transaction may hold
    the locks of every object: load_method chooses."""
    target = endpoint.with_dbname(database)
    admin = _admin_connection(endpoint)
    created_database = False
    try:
        try:
            if create:
                create_like(admin, database, manifest)
                created_database = True
            if roles.create:
                assert roles.globals is not None
                pg_roles.create_roles(admin, roles.globals, roles.create)
                log.info("created roles %s from backup %s", ", ".join(roles.create), manifest.id)
            return _load(
                ctx,
                repo,
                manifest,
                decryptor,
                tools,
                admin,
                target,
                ownership,
                roles,
                jobs,
                work_dir,
                archive,
                may_stream,
            )
        except BaseException:
            # the database first: roles that came to own objects in it cannot go before it
            if created_database or not create:
                logical.drop_database(admin, database)
            pg_roles.drop_roles(admin, roles.create)
            raise
    finally:
        admin.close()


def _load(
    ctx: Context,
    repo: Repository,
    manifest: Manifest,
    decryptor: Decryptor,
    tools: PgTools,
    admin: psycopg.Connection[Any],
    target: PgEndpoint,
    ownership: dbprops.Ownership,
    roles: RolePlan,
    jobs: int,
    work_dir: Path,
    archive: Path | None,
    may_stream: bool,
) -> LoadResult:
    label = f"{manifest.id} -> {target.dbname}"
    started = time.monotonic()
    if (
        archive is None
        and may_stream
        and load_method(manifest, jobs, logical.lock_capacity(admin)) == "stream"
    ):
        fetch_done = started
        restoring = logical.RestoreStream(tools, target, ownership=ownership)
        # the stored bytes' sha256, age's authentication and zstd's checksum prove the
        # plaintext (repo/fetch.py)
        stream_plain(
            ctx, repo, manifest, decryptor, restoring, f"pg_restore {label} (streamed)", False
        )
    else:
        with contextlib.ExitStack() as dump:
            path = archive or dump.enter_context(
                fetch_archive(ctx, repo, manifest, decryptor, work_dir, label)
            )
            fetch_done = time.monotonic()
            with ctx.reporter.task(f"pg_restore {label} ({jobs} jobs)") as restored:
                logical.restore_archive(tools, target, path, ownership=ownership, jobs=jobs)
                restored(manifest.objects[0].plain_size)  # pg_restore tells no progress
    restore_done = time.monotonic()
    with target.connect(autocommit=True) as conn:
        check = check_evidence(conn, manifest.checks, fresh_database=True)
    verify_done = time.monotonic()
    # after the check: a connection limit or a CONNECT privilege of the original's must not
    # keep the check (connected as the restoring role) out
    props = manifest.database_properties
    if props is not None:
        dbprops.apply_properties(admin, target.dbname, props, ownership, roles.skip_settings_of)
    return LoadResult(
        fetch_seconds=fetch_done - started,
        restore_seconds=restore_done - fetch_done + time.monotonic() - verify_done,
        verify_seconds=verify_done - restore_done,
        check=check,
        created_roles=list(roles.create),
    )


# With one table holding this share of the data or more, pg_restore --jobs has nothing to
# run beside it; and finding a later table's data in a dump written through a pipe (no
# offsets in its table of contents) means skipping the big table's rows one by one.
STREAM_SHARE = 0.9
# a transaction that creates every object takes about this many locks per table (the
# table, its TOAST table and TOAST index), one per index, constraint and large object
# (pg_dump sets each one's owner), plus some
_LOCKS_PER_TABLE = 3
_LOCKS_BESIDES = 100


def stream_locks(manifest: Manifest) -> int | None:
    """About how many locks one transaction restoring the whole dump holds at its end;
    None for manifests written before the counts it needs were recorded."""
    evidence = manifest.checks
    if not evidence.table_bytes or evidence.large_objects is None:
        return None
    return (
        _LOCKS_PER_TABLE * len(evidence.row_counts)
        + len(evidence.indexes)
        + len(evidence.constraints)
        + evidence.large_objects
        + _LOCKS_BESIDES
    )


def load_method(manifest: Manifest, jobs: int, lock_capacity: int) -> Literal["stream", "parallel"]:
    """How a whole-database restore onto a server of Lifeboat's own (a drill's scratch
    instance) loads the dump: streamed into one `pg_restore --single-transaction` while it
    is decrypted, or decrypted into a file for `pg_restore --jobs`. Streamed when one job
    is asked for or one table holds STREAM_SHARE of the data, and the server's lock table
    takes that one transaction with room to spare (manifests that do not say how many
    locks it needs: never)."""
    sizes = manifest.checks.table_bytes
    total = sum(sizes.values())
    dominated = total > 0 and max(sizes.values()) >= STREAM_SHARE * total
    locks = stream_locks(manifest)
    if not (jobs <= 1 or dominated) or locks is None or locks > lock_capacity // 2:
        return "parallel"
    return "stream"


def stream_plain(
    ctx: Context,
    repo: Repository,
    manifest: Manifest,
    decryptor: Decryptor,
    process: ProcessInput,
    task: str,
    check_plain_digest: bool = True,
) -> None:
    """Feed the backup's plaintext to a process reading its stdin (pg_restore); the
    process's own error wins when it stopped first."""
    try:
        with ctx.reporter.task(task) as advance:
            read_plain(
                repo,
                manifest,
                manifest.objects[0],
                decryptor,
                process,
                advance,
                check_plain_digest=check_plain_digest,
            )
        process.finish()
    except Exception:
        if process.process.poll() not in (None, 0):
            raise process.failed() from None  # it stopped first: its error is the cause
        process.kill()
        raise
    except BaseException:
        # an interrupt (Ctrl-C reaches the process's whole group, pg_restore too): it is
        # the cause, whatever pg_restore said as it died
        process.kill()
        raise


@contextlib.contextmanager
def fetch_archive(
    ctx: Context,
    repo: Repository,
    manifest: Manifest,
    decryptor: Decryptor,
    work_dir: Path,
    label: str,
) -> Iterator[Path]:
    """The backup's dump decrypted into a file under work_dir while the block runs, with
    the fetch's progress reported."""
    with contextlib.ExitStack() as dump:
        with ctx.reporter.task(f"fetch {label}") as advance:
            path = dump.enter_context(
                fetched(repo, manifest, manifest.objects[0], decryptor, work_dir, advance)
            )
        yield path


@dataclass
class _Job:
    """Everything one restore works with, resolved once."""

    ctx: Context
    repo: Repository
    manifest: Manifest
    decryptor: Decryptor
    tools: PgTools
    admin: psycopg.Connection[Any]
    endpoint: PgEndpoint
    database: str
    exists: bool
    ownership: dbprops.Ownership
    roles: RolePlan
    jobs: int
    work_dir: Path

    def stream_into(self, process: ProcessInput, label: str) -> None:
        """Feed the backup's plaintext to pg_restore; pg_restore's own error wins when it
        stopped first."""
        stream_plain(self.ctx, self.repo, self.manifest, self.decryptor, process, label)


def _restore_database(job: _Job, scratch: str) -> tuple[int, EvidenceCheck]:
    """Load the backup into the scratch database (created like the original), then swap
    it in: its properties are attached to the database, not to its name."""
    manifest, admin = job.manifest, job.admin
    # on failure, load_into drops the scratch database and the roles it created
    loaded = load_into(
        job.ctx,
        job.repo,
        manifest,
        job.decryptor,
        job.tools,
        job.endpoint,
        scratch,
        ownership=job.ownership,
        roles=job.roles,
        jobs=job.jobs,
        work_dir=job.work_dir,
        create=False,
    )
    try:
        if not loaded.check.ok:
            raise IntegrityError(
                f"restored data does not match backup {manifest.id}, target left as it was: "
                + "; ".join(loaded.check.problems()[:5])
            )
        terminated = 0
        if job.exists:
            retired = f"lifeboat_replaced_{secrets.token_hex(4)}"
            terminated = logical.swap_databases(admin, scratch, job.database, retired)
            logical.drop_database(admin, retired)
        else:
            logical.rename_database(admin, scratch, job.database)
    except BaseException:
        if logical.database_exists(admin, scratch):
            logical.drop_database(admin, scratch)
        pg_roles.drop_roles(admin, loaded.created_roles)
        raise
    return terminated, loaded.check
