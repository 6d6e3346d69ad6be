"""What a drill runs on a restored PostgreSQL database once it accepts connections: the
user's SQL checks, and what the depth adds (standard: every table read once; full: amcheck
of heap and B-tree indexes with pg_amcheck)."""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from lifeboat.config.model import DrillCheckConfig
from lifeboat.errors import DatabaseError, ToolError
from lifeboat.postgres.binaries import (
    SERVER_PROGRAMS,
    bin_dir_major,
    find_bin_dirs,
    is_server_bin_dir,
)
from lifeboat.postgres.conn import PgEndpoint, error_reason
from lifeboat.repo.drills import CheckResult
from lifeboat.util.proc import error_line

log = logging.getLogger(__name__)

# a user's check may not hold the drill forever
CHECK_TIMEOUT_MS = 30 * 60 * 1000


def scratch_bin_dir(major: int, configured: Path | None) -> Path:
    """The server programs of exactly this major: a drill restores into the version the
    backup was taken from (the configured pg_bin_dir first, then every known place, the
    checkout's own PostgreSQL 17 included)."""
    if (
        configured is not None
        and is_server_bin_dir(configured)
        and bin_dir_major(configured) == major
    ):
        return configured
    found = find_bin_dirs(checkout_cache=True)
    for folder in found:
        if bin_dir_major(folder) == major:
            return folder
    have = ", ".join(f"{bin_dir_major(f)} ({f})" for f in found) or "none"
    raise ToolError(
        f"a drill needs the PostgreSQL {major} server ({', '.join(SERVER_PROGRAMS)}) and "
        f"none was found (found: {have}); install postgresql-{major} or set pg_bin_dir"
    )


def _value_text(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def run_check(endpoint: PgEndpoint, check: DrillCheckConfig) -> CheckResult:
    """One user check: a pass only when it returns one row whose single value is true. An
    error, no row or a value that is not a boolean fails the check with a message; it never
    stops the drill."""
    began = time.monotonic()
    database = endpoint.dbname or ""

    def result(ok: bool, message: str) -> CheckResult:
        return CheckResult(check.name, ok, message, round(time.monotonic() - began, 3), database)

    try:
        with endpoint.connect(autocommit=True) as conn:
            conn.execute(f"SET statement_timeout = {CHECK_TIMEOUT_MS}")
            cursor = conn.execute(check.sql.encode())
            rows = cursor.fetchmany(2) if cursor.description is not None else []
            # "SELECT true; SELECT false" runs both: the first one's true must not pass it
            more = cursor.nextset()
    except (psycopg.Error, DatabaseError) as exc:
        return result(False, f"error: {error_reason(exc)}")
    if more:
        return result(False, "holds more than one statement; a check is one query")
    if not rows:
        return result(False, "returned no row")
    if len(rows) > 1 or len(rows[0]) != 1:
        return result(False, "returned more than one value; a check returns one boolean")
    value = rows[0][0]
    if value is None:  # e.g. max() over no rows compared: unknown is no pass
        return result(False, "returned NULL")
    if not isinstance(value, bool):
        return result(False, f"returned {_value_text(value)}, not a boolean")
    return result(value, "true" if value else "returned false")


def run_checks(
    endpoint_of: Callable[[str], PgEndpoint],
    checks: Sequence[DrillCheckConfig],
    default_database: str,
) -> list[CheckResult]:
    """Every check, each in its database (default_database when it names none);
    endpoint_of(database) gives the endpoint to reach it."""
    results = []
    for check in checks:
        endpoint = endpoint_of(check.database or default_database)
        outcome = run_check(endpoint, check)
        level = logging.INFO if outcome.ok else logging.ERROR
        log.log(level, "check %r: %s", check.name, outcome.message)
        results.append(outcome)
    return results


_TABLES = """
SELECT c.oid::regclass::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE (c.relkind = 'r' OR (c.relkind = 'm' AND c.relispopulated)) AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
ORDER BY 1
"""


def databases(conn: psycopg.Connection[Any]) -> list[str]:
    """The databases a physical drill reads: every one that takes connections."""
    rows = conn.execute(
        "SELECT datname FROM pg_database WHERE datallowconn ORDER BY datname"
    ).fetchall()
    return [str(r[0]) for r in rows]


def read_every_table(endpoint: PgEndpoint) -> CheckResult:
    """Read every page of every table of one database once, by a sequential scan: on a
    cluster with data checksums, a damaged heap page fails the read."""
    began = time.monotonic()
    database = endpoint.dbname or ""
    tables = rows = 0

    def result(ok: bool, message: str) -> CheckResult:
        seconds = round(time.monotonic() - began, 3)
        return CheckResult("read every table", ok, message, seconds, database)

    try:
        with endpoint.connect(autocommit=True) as conn:
            for setting in ("enable_indexscan", "enable_indexonlyscan", "enable_bitmapscan"):
                conn.execute(f"SET {setting} = off")
            for (name,) in conn.execute(_TABLES).fetchall():
                row = conn.execute(
                    sql.SQL("SELECT count(*) FROM {}").format(sql.SQL(name))
                ).fetchone()
                tables += 1
                rows += int(row[0]) if row else 0
    except (psycopg.Error, DatabaseError) as exc:
        return result(
            False, f"reading {database} failed after {tables} tables: {error_reason(exc)}"
        )
    return result(True, f"{tables} tables, {rows} rows read")


def amcheck(bin_dir: Path, endpoint: PgEndpoint, *, every_database: bool) -> CheckResult:
    """pg_amcheck of every table's heap and every B-tree index (heapallindexed) in the
    endpoint's database (or in every database of its server), installing the amcheck
    extension where it is missing; skipped, with a message saying so, where the server
    lacks the extension or pg_amcheck is absent."""
    began = time.monotonic()
    program = bin_dir / "pg_amcheck"
    label = "every database" if every_database else endpoint.dbname

    def result(ok: bool, message: str) -> CheckResult:
        return CheckResult("amcheck", ok, message, round(time.monotonic() - began, 3), label)

    if not program.exists():
        return result(True, f"skipped: {program.name} is not installed with PostgreSQL")
    command = [str(program), "--no-password", "--install-missing", "--heapallindexed"]
    # a connection string, not a name: pg_amcheck reads names as patterns, in which the
    # dots and quotes of a database's name would mean something else
    if every_database:
        command += ["--all", "--maintenance-db", endpoint.conninfo()]
    else:
        command.append(endpoint.conninfo())
    done = subprocess.run(
        command, capture_output=True, text=True, env=endpoint.env(), check=False, timeout=None
    )
    output = (done.stdout + "\n" + done.stderr).strip()
    if done.returncode == 0:
        return result(True, f"heap and B-tree indexes of {label} checked")
    if "extension" in output and "is not available" in output:
        return result(True, "skipped: the amcheck extension is not installed on the server")
    lines = output.splitlines()
    return result(False, error_line(lines) or (lines[0] if lines else f"exit {done.returncode}"))
