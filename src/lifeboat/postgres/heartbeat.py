"""The heartbeat: one row Lifeboat rewrites in the source database, so that an idle database
still has a recent commit in its WAL.

A physical drill measures its RPO from the last replayed commit; on a database nobody wrote
to for hours that commit is old although nothing would be lost. A table rather than
pg_logical_emit_message: the drill reads the row back in the restored database, so it can
say which method kept the figure honest and when the last beat was.

The upsert comes first and the schema is created only when it is missing: CREATE SCHEMA IF
NOT EXISTS checks the CREATE privilege on the database before it looks whether the schema
exists, so a role granted only INSERT/UPDATE/SELECT on the table would fail on it every
time (docs/drills.md lists the grants)."""

from __future__ import annotations

import socket
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lifeboat import __version__
from lifeboat.errors import DatabaseError
from lifeboat.postgres.conn import error_reason

if TYPE_CHECKING:
    import psycopg

SCHEMA = "lifeboat"
TABLE = f"{SCHEMA}.heartbeat"

_CREATE = (
    f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    "id int PRIMARY KEY CHECK (id = 1), "
    "beat_at timestamptz NOT NULL, "
    "beat_by text NOT NULL)",
)
# clock_timestamp(), not now(): the time of the write, not of the transaction's start
_UPSERT = (
    f"INSERT INTO {TABLE} (id, beat_at, beat_by) VALUES (1, clock_timestamp(), %s) "
    "ON CONFLICT (id) DO UPDATE SET beat_at = EXCLUDED.beat_at, beat_by = EXCLUDED.beat_by "
    "RETURNING beat_at"
)


def default_beat_by() -> str:
    """Who wrote the beat, as the row tells it: Lifeboat's version and the host."""
    return f"lifeboat {__version__} on {socket.gethostname()}"


def beat(conn: psycopg.Connection[Any], by: str | None = None) -> datetime:
    """Write the heartbeat row (creating its schema and table the first time) and commit;
    the time it holds. conn must not be inside a transaction of the caller's."""
    import psycopg

    who = by or default_beat_by()
    try:
        try:
            with conn.transaction():
                return _upsert(conn, who)
        except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
            with conn.transaction():
                for statement in _CREATE:
                    conn.execute(statement)
                return _upsert(conn, who)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise DatabaseError(
            f"the heartbeat could not be written: {error_reason(exc)} (docs/drills.md, "
            "Heartbeat, lists the grants it needs)"
        ) from None
    except psycopg.Error as exc:
        raise DatabaseError(f"the heartbeat could not be written: {error_reason(exc)}") from None


def last_beat(conn: psycopg.Connection[Any]) -> datetime | None:
    """The time of the last heartbeat; None when there is no heartbeat table (or no row)."""
    import psycopg

    try:
        found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (TABLE,)).fetchone()
        if not found or not found[0]:
            return None
        row = conn.execute(f"SELECT beat_at FROM {TABLE} WHERE id = 1").fetchone()
    except psycopg.Error as exc:
        raise DatabaseError(f"the heartbeat could not be read: {error_reason(exc)}") from None
    return _aware(row[0]) if row else None


def _upsert(conn: psycopg.Connection[Any], who: str) -> datetime:
    row = conn.execute(_UPSERT, (who,)).fetchone()
    if row is None:
        raise DatabaseError(f"writing the heartbeat into {TABLE} returned no time")
    return _aware(row[0])


def _aware(value: object) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise DatabaseError(f"{TABLE}.beat_at holds {value!r}, not a time with a zone")
    return value
