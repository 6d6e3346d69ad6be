"""Logical dumps and restores with PostgreSQL's own tools, and the evidence that checks them."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from lifeboat.errors import DatabaseError, RestoreError
from lifeboat.pipeline.stream import ProcessInput, ProcessOutput
from lifeboat.postgres.binaries import PgTools
from lifeboat.postgres.conn import PgEndpoint
from lifeboat.postgres.dbprops import Ownership
from lifeboat.postgres.facts import Evidence, Server, TableFacts
from lifeboat.postgres.pgcontrol import unsigned_system_identifier
from lifeboat.util.proc import StderrCollector

DUMP_FORMAT = "pg_dump-custom"

_USER_SCHEMAS = """
    n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
"""

_NOT_FROM_EXTENSION = """
    NOT EXISTS (SELECT 1 FROM pg_depend d
                WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
"""

TABLES_SQL = f"""
SELECT format('%I.%I', n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND {_USER_SCHEMAS} AND {_NOT_FROM_EXTENSION}
ORDER BY 1
"""

TABLE_SIZES_SQL = f"""
SELECT format('%I.%I', n.nspname, c.relname), pg_table_size(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND {_USER_SCHEMAS} AND {_NOT_FROM_EXTENSION}
"""

INDEXES_SQL = f"""
SELECT format('%I.%I.%I', n.nspname, t.relname, c.relname)
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class t ON t.oid = i.indrelid
WHERE {_USER_SCHEMAS} AND {_NOT_FROM_EXTENSION}
ORDER BY 1
"""

CONSTRAINTS_SQL = f"""
SELECT format('%I.%I.%I', n.nspname, c.relname, co.conname)
FROM pg_constraint co JOIN pg_class c ON c.oid = co.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE co.contype <> 'n' AND {_USER_SCHEMAS} AND {_NOT_FROM_EXTENSION}
ORDER BY 1
"""

# per table (partitioned ones too): what a restore of single tables needs (PostgreSQL 12+)
TABLE_FACTS_SQL = f"""
SELECT format('%I.%I', n.nspname, c.relname), c.relkind = 'p',
  (SELECT format('%I.%I', pn.nspname, p.relname)
   FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
   JOIN pg_namespace pn ON pn.oid = p.relnamespace
   WHERE i.inhrelid = c.oid AND c.relispartition),
  ARRAY(SELECT a.attname::text FROM pg_attribute a
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
          AND a.attgenerated = '' ORDER BY a.attnum),
  ARRAY(SELECT format('%I.%I', sn.nspname, s.relname)
        FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
        JOIN pg_namespace sn ON sn.oid = s.relnamespace
        WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
          AND d.refobjid = c.oid AND d.deptype IN ('a', 'i') ORDER BY 1),
  ARRAY(SELECT ARRAY[co.conname::text, format('%I.%I', rn.nspname, r.relname)]
        FROM pg_constraint co JOIN pg_class r ON r.oid = co.confrelid
        JOIN pg_namespace rn ON rn.oid = r.relnamespace
        WHERE co.conrelid = c.oid AND co.contype = 'f' AND co.conparentid = 0 ORDER BY 1),
  ARRAY(SELECT co.conname::text FROM pg_constraint co
        WHERE co.conrelid = c.oid AND co.contype <> 'n'
          AND (co.conparentid <> 0 OR NOT co.conislocal) ORDER BY 1)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND {_USER_SCHEMAS} AND {_NOT_FROM_EXTENSION}
ORDER BY 1
"""

COUNT_BATCH = 100


def server_info(conn: psycopg.Connection[Any]) -> Server:
    row = conn.execute(
        "SELECT current_setting('server_version'), current_setting('server_version_num')::int"
    ).fetchone()
    assert row is not None
    system_identifier: str | None
    try:
        with conn.transaction():
            found = conn.execute(
                "SELECT system_identifier::text FROM pg_control_system()"
            ).fetchone()
        system_identifier = unsigned_system_identifier(found[0]) if found else None
    except psycopg.Error:
        system_identifier = None  # the function needs privileges a backup role may lack
    return Server(
        version=str(row[0]).split()[0], version_num=int(row[1]), system_identifier=system_identifier
    )


def server_major(server: Server) -> int:
    return server.version_num // 10000


def export_snapshot(conn: psycopg.Connection[Any]) -> str:
    """Open a read-only repeatable-read transaction and export its snapshot for pg_dump.

    The connection is in autocommit mode, so the transaction is opened by hand and stays
    open until the caller ends it."""
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    row = conn.execute("SELECT pg_export_snapshot()").fetchone()
    assert row is not None
    return str(row[0])


def row_counts(
    conn: psycopg.Connection[Any], tables: Sequence[str] | None = None
) -> dict[str, int]:
    names = list(tables) if tables is not None else [r[0] for r in conn.execute(TABLES_SQL)]
    counts: dict[str, int] = {}
    for start in range(0, len(names), COUNT_BATCH):
        batch = names[start : start + COUNT_BATCH]
        parts = [
            sql.SQL("SELECT {}::text, count(*) FROM ONLY {}").format(
                sql.Literal(name),
                sql.SQL(name),  # names come from format('%I.%I'): quoted
            )
            for name in batch
        ]
        for name, count in conn.execute(sql.SQL(" UNION ALL ").join(parts)):
            counts[name] = int(count)
    return counts


def inserted_rows(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Rows inserted minus deleted per table, as the server counted them (pg_stat).

    Only meaningful in a database that was empty before a restore; waits until the
    restoring sessions are gone, as a session reports its counts when it ends."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
        if row is not None and row[0] == 0:
            break
        time.sleep(0.05)
    conn.execute("SELECT pg_stat_clear_snapshot()")
    return {
        str(name): int(count)
        for name, count in conn.execute(
            "SELECT format('%I.%I', schemaname, relname), n_tup_ins - n_tup_del "
            "FROM pg_stat_user_tables"
        )
    }


def table_facts(conn: psycopg.Connection[Any]) -> dict[str, TableFacts]:
    return {
        name: TableFacts(
            partitioned=partitioned,
            partition_of=parent,
            columns=columns,
            sequences=sequences,
            references=dict(references),
            inherited=inherited,
        )
        for name, partitioned, parent, columns, sequences, references, inherited in conn.execute(
            TABLE_FACTS_SQL
        )
    }


def table_bytes(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Each table's size on disk (heap and TOAST, no indexes): what its data weighs in a
    dump, roughly."""
    return {str(name): int(size or 0) for name, size in conn.execute(TABLE_SIZES_SQL)}


def large_objects(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone()
    return int(row[0]) if row else 0


def collect_evidence(conn: psycopg.Connection[Any]) -> Evidence:
    return Evidence(
        row_counts=row_counts(conn),
        table_bytes=table_bytes(conn),
        large_objects=large_objects(conn),
        indexes=[r[0] for r in conn.execute(INDEXES_SQL)],
        constraints=[r[0] for r in conn.execute(CONSTRAINTS_SQL)],
        # the facts query reads catalog columns PostgreSQL 12 added (generated columns)
        tables=table_facts(conn) if conn.info.server_version >= 120000 else {},
    )


class DumpStream(ProcessOutput):
    """pg_dump's custom-format archive on stdout, read in the exported snapshot."""

    def __init__(self, tools: PgTools, endpoint: PgEndpoint, snapshot: str | None) -> None:
        # --no-password: a missing password fails at once instead of prompting on a terminal
        command = [
            tools.path("pg_dump"),
            "--format=custom",
            "-Z0",
            "--no-password",
            "--dbname",
            endpoint.conninfo(),
        ]
        if snapshot:
            command.append(f"--snapshot={snapshot}")
        super().__init__(command, endpoint.env(), "pg_dump")


def restore_archive(
    tools: PgTools, endpoint: PgEndpoint, archive: Path, *, ownership: Ownership, jobs: int
) -> None:
    """`pg_restore --jobs` of a custom-format archive file into endpoint's database,
    stopping at the first error.

    Not in one transaction (pg_restore cannot be, with several jobs): the database is one
    the restore created for itself, which the caller drops when this fails. That, and the
    swap of a finished, checked database into place, is what makes a restore atomic."""
    command = [
        tools.path("pg_restore"),
        *ownership.pg_restore_flags(),
        f"--jobs={jobs}",
        "--exit-on-error",
        "--no-password",
        "--dbname",
        endpoint.conninfo(),
        str(archive),
    ]
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=endpoint.env(),
    )
    assert process.stderr is not None
    stderr = StderrCollector(process.stderr)
    stderr.start()
    try:
        returncode = process.wait()
    except BaseException:
        process.kill()
        process.wait()
        raise
    finally:
        stderr.join()
    if returncode != 0:
        detail = stderr.error_line() or f"exit {returncode}"
        raise RestoreError(f"pg_restore failed, nothing was changed: {detail}")


class RestoreStream(ProcessInput):
    """`pg_restore --single-transaction` of a custom-format archive written into its stdin,
    into endpoint's database. In one transaction, a table's COPY and its index builds
    follow its CREATE: on a server with wal_level minimal they write almost no WAL; and
    a failure leaves nothing behind. Used when jobs cannot outrun one stream: the archive
    then needs no file, and the restore runs while it is decrypted."""

    def __init__(self, tools: PgTools, endpoint: PgEndpoint, *, ownership: Ownership) -> None:
        super().__init__(
            [
                tools.path("pg_restore"),
                *ownership.pg_restore_flags(),
                "--single-transaction",
                "--exit-on-error",
                "--no-password",
                "--dbname",
                endpoint.conninfo(),
            ],
            env=endpoint.env(),
        )

    def failed(self) -> Exception:
        return RestoreError(f"pg_restore failed, nothing was changed: {self.failure()}")


def lock_capacity(conn: psycopg.Connection[Any]) -> int:
    """How many locks the server's shared lock table holds (max_locks_per_transaction
    times the connection and prepared-transaction slots): what one transaction that
    creates every object of a database must stay well under."""
    row = conn.execute(
        "SELECT current_setting('max_locks_per_transaction')::int"
        " * (current_setting('max_connections')::int"
        " + current_setting('max_prepared_transactions')::int)"
    ).fetchone()
    return int(row[0]) if row else 0


def database_exists(admin: psycopg.Connection[Any], name: str) -> bool:
    row = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


def create_database(
    admin: psycopg.Connection[Any], name: str, options: sql.Composable | None = None
) -> None:
    """An empty database; `options` as dbprops.creation_options gives them, else the
    server's defaults."""
    try:
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE template0 {}").format(
                sql.Identifier(name), sql.SQL("") if options is None else options
            )
        )
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot create database {name}: {exc.diag.message_primary}") from None


def rename_database(admin: psycopg.Connection[Any], old: str, new: str) -> None:
    admin.execute(
        sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(old), sql.Identifier(new))
    )


def drop_database(admin: psycopg.Connection[Any], name: str) -> None:
    terminate_sessions(admin, name)
    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def terminate_sessions(admin: psycopg.Connection[Any], name: str) -> int:
    rows = admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_backend_pid()",
        (name,),
    ).fetchall()
    return len(rows)


def swap_databases(admin: psycopg.Connection[Any], restored: str, target: str, retired: str) -> int:
    """Put `restored` in place of `target` and keep the old one as `retired`; returns how
    many sessions on the target were terminated."""
    ident = sql.Identifier
    admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(ident(target)))
    try:
        terminated = terminate_sessions(admin, target)
        for attempt in range(50):
            try:
                with admin.transaction():
                    admin.execute(
                        sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                            ident(target), ident(retired)
                        )
                    )
                    admin.execute(
                        sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                            ident(restored), ident(target)
                        )
                    )
                break
            except psycopg.errors.ObjectInUse:
                # terminated sessions take a moment to go away
                if attempt == 49:
                    raise
                terminated += terminate_sessions(admin, target)
                time.sleep(0.1)
    except BaseException:
        if database_exists(admin, target):
            admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(ident(target)))
        raise
    return terminated
