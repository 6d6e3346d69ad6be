"""SQLite itself: opening a database the way a backup, a check or a restore needs, its
errors as one line each, and the facts a backup records and a restore is checked against.

The source is opened read-only (`mode=ro`) and never waited for inside SQLite: a busy
database is retried here, in Python, so that a SIGTERM or Ctrl-C stops a backup at once
instead of after SQLite's own busy timeout."""

from __future__ import annotations

import hashlib
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from lifeboat.errors import DatabaseError

T = TypeVar("T")

# how often a busy database is tried again while waiting for it: in rollback mode a busy
# writer leaves readers only short gaps between its transactions
RETRY_SECONDS = 0.005
BUSY = ("SQLITE_BUSY", "SQLITE_LOCKED")
# a WAL database opened read-only, stopped (no -shm file) in a folder this user cannot write
_NO_SHM = ("SQLITE_READONLY_DIRECTORY", "SQLITE_READONLY_CANTINIT")
# tables whose rows are not counted: a virtual table's module may not be in this SQLite
# (its rows live in shadow tables, which are counted)
_TABLES_SQL = (
    "SELECT name FROM sqlite_master WHERE type = 'table' "
    "AND coalesce(sql, '') NOT LIKE 'CREATE VIRTUAL TABLE%' ORDER BY name"
)


def uri(path: Path, **parameters: str) -> str:
    """The URI SQLite opens path by, with parameters (mode=ro, immutable=1); the path is
    quoted, so names with ?, # or % mean themselves."""
    query = "&".join(f"{key}={value}" for key, value in parameters.items())
    return f"file:{urllib.parse.quote(str(path))}" + (f"?{query}" if query else "")


def is_busy(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorname", "") in BUSY


def explain(path: Path, exc: sqlite3.Error, waited: float | None = None) -> DatabaseError:
    """exc as one line naming the database."""
    name = getattr(exc, "sqlite_errorname", "")
    if name == "SQLITE_NOTADB":
        return DatabaseError(f"{path}: not an SQLite database (file is not a database)")
    if name in BUSY:
        return locked(path, waited)
    if name in _NO_SHM:
        return DatabaseError(
            f"{path}: a WAL database is only read with its -shm file, which this user may "
            f"not create in {path.parent}: run Lifeboat as the database's owner, or while "
            "the application has it open (docs/sqlite.md)"
        )
    if name == "SQLITE_CANTOPEN" and not path.exists():
        return DatabaseError(f"{path}: no such file")
    return DatabaseError(f"{path}: {exc}")


def locked(path: Path, waited: float | None) -> DatabaseError:
    held = f" for {waited:g} s" if waited is not None else ""
    return DatabaseError(
        f"{path}: the database stayed locked{held} (another connection holds a lock); "
        "try again later, or raise the source's busy_timeout"
    )


def open_source(path: Path) -> sqlite3.Connection:
    """The source database, read-only; a missing file is refused before SQLite sees it
    (SQLite's own word for it is 'unable to open database file')."""
    if not path.exists():
        raise DatabaseError(f"{path}: no such file")
    if not path.is_file():
        raise DatabaseError(f"{path}: not a file")
    try:
        # timeout 0: waiting for a lock is done by when_free (see the module's note)
        return sqlite3.connect(uri(path, mode="ro"), uri=True, timeout=0, isolation_level=None)
    except sqlite3.Error as exc:
        raise explain(path, exc) from None


def open_copy(path: Path) -> sqlite3.Connection:
    """A private copy (a snapshot, a restored or fetched file) nobody else writes: no
    locking, and no -wal or -shm file made beside it (immutable)."""
    try:
        return sqlite3.connect(
            uri(path, mode="ro", immutable="1"), uri=True, timeout=0, isolation_level=None
        )
    except sqlite3.Error as exc:
        raise explain(path, exc) from None


def when_free(path: Path, timeout: float, attempt: Callable[[], T]) -> T:
    """attempt(), tried again while the database is busy, for up to timeout seconds; any
    other SQLite error, or still busy then, is one line."""
    began = time.monotonic()
    while True:
        try:
            return attempt()
        except sqlite3.Error as exc:
            waited = time.monotonic() - began
            if not is_busy(exc):
                raise explain(path, exc) from None
            if waited >= timeout:
                raise explain(path, exc, round(timeout, 3)) from None
        time.sleep(RETRY_SECONDS)


@contextmanager
def read_transaction(conn: sqlite3.Connection, path: Path, timeout: float) -> Iterator[None]:
    """A read transaction on conn for the block: everything read in it (a backup's pages
    included) is one consistent state of the database."""

    def begin() -> None:
        conn.execute("BEGIN")
        try:
            # BEGIN is deferred: the first read takes the shared lock (or the WAL snapshot)
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    when_free(path, timeout, begin)
    try:
        yield
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")


def pragma(conn: sqlite3.Connection, name: str) -> str:
    row = conn.execute(f"PRAGMA {name}").fetchone()
    return str(row[0]) if row else ""


def quote_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Facts:
    """What a backup records of its snapshot, and what a restored copy must show again."""

    row_counts: dict[str, int]
    schema_sha256: str


def schema_sha256(conn: sqlite3.Connection) -> str:
    """sha256 of every SQL text in sqlite_schema (tables, indexes, views, triggers), sorted
    and each followed by a newline: the same schema gives the same hash whatever order
    its objects were created in."""
    texts = sorted(str(r[0]) for r in conn.execute("SELECT sql FROM sqlite_master") if r[0])
    return hashlib.sha256("".join(f"{text}\n" for text in texts).encode()).hexdigest()


def facts(conn: sqlite3.Connection) -> Facts:
    tables = [str(r[0]) for r in conn.execute(_TABLES_SQL)]
    counts = {}
    for table in tables:
        row = conn.execute(f"SELECT count(*) FROM {quote_name(table)}").fetchone()
        counts[table] = int(row[0])
    return Facts(counts, schema_sha256(conn))


def integrity_problems(conn: sqlite3.Connection, quick: bool = False) -> list[str]:
    """What PRAGMA integrity_check (quick_check) finds; empty when it says ok."""
    check = "quick_check" if quick else "integrity_check"
    found = [
        line
        for row in conn.execute(f"PRAGMA {check}")
        for line in str(row[0]).splitlines()
        # a row may hold several findings, after a header naming the schema checked
        if line.strip() and not line.startswith("*** in database ")
    ]
    return [] if found == ["ok"] else found


def integrity_failure(problems: list[str], quick: bool = False) -> str:
    """What integrity_check found, in one line (its first few findings)."""
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    shown = "; ".join(problems[:3]) + more
    return f"PRAGMA {'quick_check' if quick else 'integrity_check'} failed: {shown}"


def differences(actual: Facts, row_counts: dict[str, int], schema: str) -> list[str]:
    """How a copy differs from the evidence a backup recorded, one line each."""
    found = []
    for table, expected in sorted(row_counts.items()):
        got = actual.row_counts.get(table)
        if got is None:
            found.append(f"table {table} is missing")
        elif got != expected:
            found.append(f"{table}: {got} rows, backup has {expected}")
    found += [
        f"table {table} is not in the backup's evidence"
        for table in sorted(set(actual.row_counts) - set(row_counts))
    ]
    if actual.schema_sha256 != schema:
        found.append("the schema's sha256 differs from the backup's")
    return found


@dataclass(frozen=True)
class CopyCheck:
    """A copy of a database checked against a backup's evidence: its facts (None when it
    could not even be read) and what is wrong with it."""

    facts: Facts | None
    problems: list[str]


def check_copy(
    path: Path, row_counts: dict[str, int], schema: str, quick: bool = False
) -> CopyCheck:
    """PRAGMA integrity_check (quick_check) of a private copy, then its row counts and
    schema hash against the evidence; a file SQLite cannot read is a problem too."""
    try:
        conn = open_copy(path)
        try:
            problems = integrity_problems(conn, quick)
            if problems:
                return CopyCheck(None, [integrity_failure(problems, quick)])
            found = facts(conn)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return CopyCheck(None, [explain(path, exc).message])
    except DatabaseError as exc:
        return CopyCheck(None, [exc.message])
    return CopyCheck(found, differences(found, row_counts, schema))
