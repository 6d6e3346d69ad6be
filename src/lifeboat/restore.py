"""Restore a logical backup into a scratch database, check it, then put it in place."""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from lifeboat.backup import backup_logical
from lifeboat.context import Context
from lifeboat.errors import (
    AbortedError,
    IntegrityError,
    LifeboatError,
    RestoreError,
)
from lifeboat.objects import read_plain
from lifeboat.pipeline.crypto import Decryptor, Recipient
from lifeboat.pipeline.stream import ProcessInput, StoppedReading
from lifeboat.postgres import dbprops, logical, roles
from lifeboat.postgres.binaries import PgTools, find_tools
from lifeboat.postgres.conn import PgEndpoint
from lifeboat.repo.catalog import Repository
from lifeboat.repo.choice import first_that_serves
from lifeboat.repo.manifest import SAFETY_LABEL, Evidence, Manifest
from lifeboat.restore_roles import RolePlan, plan_roles

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
    return check


def qualify_tables(manifest: Manifest, tables: Sequence[str]) -> list[str]:
    """Map user table names (`lots`, `public.lots`) to the manifest's `schema.table` names."""
    known = list(manifest.checks.row_counts)
    result = []
    for name in tables:
        if name in known:
            result.append(name)
            continue
        matches = [k for k in known if k.split(".", 1)[1].strip('"') == name]
        if len(matches) != 1:
            hint = "ambiguous, name its schema" if matches else "not in this backup"
            raise RestoreError(f"table {name!r} is {hint}")
        result.append(matches[0])
    return result


class _TocLister(ProcessInput):
    def failed(self) -> Exception:
        return RestoreError(f"pg_restore --list failed: {self.failure()}")


def _toc_for_tables(
    repo: Repository, manifest: Manifest, decryptor: Decryptor, tools: PgTools, tables: list[str]
) -> list[str]:
    """The archive's table of contents cut down to the tables and their indexes, constraints,
    triggers, defaults and sequences, for `pg_restore --use-list`."""
    lister = _TocLister([tools.path("pg_restore"), "--list"], keep_stdout=True, discard_rest=False)
    try:
        read_plain(repo, manifest, manifest.objects[0], decryptor, lister)
    except StoppedReading:
        pass  # pg_restore --list has the table of contents and needs nothing more
    except BaseException:
        lister.kill()
        raise
    lister.finish()
    assert lister.stdout is not None
    out = lister.stdout
    wanted = {logical.split_table(t) for t in tables}
    indexes = {tuple(i.split(".")) for i in manifest.checks.indexes}
    index_names = {(s, i) for s, t, i in indexes if (s, t) in wanted}
    selected = []
    for line in out.text.splitlines():
        if not line or line.startswith(";"):
            continue
        # "<id>; <catalog oid> <oid> <TYPE words...> <schema> <name...> <owner>"
        body = line.split(";", 1)[1].split(None, 2)[2]
        for kind in (
            "TABLE DATA",
            "FK CONSTRAINT",
            "CONSTRAINT",
            "SEQUENCE SET",
            "SEQUENCE OWNED BY",
            "TABLE",
            "INDEX",
            "TRIGGER",
            "DEFAULT",
            "SEQUENCE",
            "COMMENT",
        ):
            if body.startswith(kind + " "):
                rest = body[len(kind) + 1 :].split()
                break
        else:
            continue
        if len(rest) < 2:
            continue
        schema, name = rest[0], rest[1]
        if kind in ("TABLE", "TABLE DATA", "CONSTRAINT", "FK CONSTRAINT", "TRIGGER", "DEFAULT"):
            keep = (schema, name) in wanted
        elif kind == "INDEX":
            keep = (schema, name) in index_names
        else:
            keep = False
        if keep:
            selected.append(line)
    return selected


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
) -> RestoreResult:
    """Restore a logical backup. A full restore keeps owners and privileges unless
    `ownership` says otherwise, and refuses before changing anything when roles they name
    are missing, unless `create_roles` creates them from the backup's globals."""
    started = time.monotonic()
    source = ctx.source(source_name)

    def find(repo: Repository) -> Manifest:
        repo.ensure_initialised()
        return repo.resolve(source_name, backup, kind="logical")

    repo, manifest = first_that_serves(ctx.repositories_to_read(source_name, repository), find)
    decryptor = ctx.decryptor(manifest.encryption.method)
    decryptor.check_can_decrypt(
        [Recipient(r["type"], r["id"]) for r in manifest.encryption.recipients]
    )

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
        qualified = qualify_tables(manifest, tables) if tables else []
        role_plan = RolePlan()
        if not qualified:
            role_plan = plan_roles(
                repo, manifest, decryptor, admin, ownership, create_roles, endpoint.describe()
            )
        if exists and not assume_yes:
            what = f"tables {', '.join(qualified)} in" if qualified else "database"
            if confirm is None or not confirm(database):
                raise AbortedError(
                    f"{what} {database} on {endpoint.describe()} would be overwritten: "
                    "pass --yes or confirm by typing its name"
                )
        safety = None
        if exists:
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
        )
        result = _restore_tables(job, qualified) if qualified else _restore_database(job)
        terminated, check = result
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
        tables=qualified,
        repository=repo.name,
        created_roles=role_plan.create,
    )


def _admin_connection(endpoint: PgEndpoint) -> psycopg.Connection[Any]:
    try:
        return endpoint.with_dbname("postgres").connect(autocommit=True)
    except LifeboatError:
        return endpoint.with_dbname("template1").connect(autocommit=True)


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
    ownership: dbprops.Ownership = logical.WITHOUT_OWNERSHIP
    roles: RolePlan = field(default_factory=RolePlan)

    def stream_into(self, process: logical.RestoreProcess, label: str) -> None:
        """Feed the backup's plaintext to pg_restore; pg_restore's own error wins when it
        stopped first."""
        try:
            with self.ctx.reporter.task(label) as advance:
                read_plain(
                    self.repo,
                    self.manifest,
                    self.manifest.objects[0],
                    self.decryptor,
                    process,
                    advance,
                )
        except BaseException:
            if process.process.poll() not in (None, 0):
                raise process.failed() from None  # pg_restore stopped first: its error is the cause
            process.kill()
            raise
        process.finish()


def _restore_database(job: _Job) -> tuple[int, EvidenceCheck]:
    """Restore into a scratch database created like the original, give it the original's
    properties, then swap it in (they are attached to the database, not to its name)."""
    manifest, admin, props = job.manifest, job.admin, job.manifest.database_properties
    scratch = f"lifeboat_restore_{manifest.id.lower()}_{secrets.token_hex(3)}"
    if job.roles.create:
        assert job.roles.globals is not None
        roles.create_roles(admin, job.roles.globals, job.roles.create)
        log.info("created roles %s from backup %s", ", ".join(job.roles.create), manifest.id)
    try:
        major = admin.info.server_version // 10000
        like = dbprops.creation_options(props, major) if props is not None else None
        logical.create_database(admin, scratch, like)
    except BaseException:
        roles.drop_roles(admin, job.roles.create)
        raise
    try:
        process = logical.RestoreProcess(
            job.tools, job.endpoint.with_dbname(scratch), ownership=job.ownership
        )
        job.stream_into(process, f"restore {manifest.id} -> {job.database}")
        with job.endpoint.with_dbname(scratch).connect(autocommit=True) as conn:
            check = check_evidence(conn, manifest.checks, fresh_database=True)
        if not check.ok:
            raise IntegrityError(
                f"restored data does not match backup {manifest.id}, target left as it was: "
                + "; ".join(check.problems()[:5])
            )
        if props is not None:
            dbprops.apply_properties(
                admin, scratch, props, job.ownership, job.roles.skip_settings_of
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
        roles.drop_roles(admin, job.roles.create)
        raise
    return terminated, check


def _restore_tables(job: _Job, tables: list[str]) -> tuple[int, EvidenceCheck]:
    if not job.exists:
        logical.create_database(job.admin, job.database)
    toc = _toc_for_tables(job.repo, job.manifest, job.decryptor, job.tools, tables)
    # the list holds object names only, no data
    fd, list_path = tempfile.mkstemp(prefix="lifeboat-toc-", suffix=".list")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(toc) + "\n")
        process = logical.RestoreProcess(
            job.tools, job.endpoint, clean=job.exists, use_list=list_path
        )
        job.stream_into(process, f"restore {len(tables)} table(s)")
    except BaseException:
        if not job.exists:
            logical.drop_database(job.admin, job.database)
        raise
    finally:
        os.unlink(list_path)
    with job.endpoint.connect(autocommit=True) as conn:
        check = check_evidence(conn, job.manifest.checks, tables)
    if not check.ok:
        raise IntegrityError(
            f"restored tables do not match backup {job.manifest.id}: "
            + "; ".join(check.problems()[:5])
        )
    return 0, check
