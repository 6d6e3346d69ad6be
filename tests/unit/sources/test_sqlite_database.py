"""SQLite's side of an SQLite source, on real database files: the evidence (row counts, the
schema's hash), a copy checked against it, and SQLite's failures as one line each."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from lifeboat.errors import DatabaseError
from lifeboat.sources.registry import path_kind
from lifeboat.sources.sqlite import database, snapshot
from lifeboat.sources.sqlite.kind import SqliteKind

TABLES = [
    "CREATE TABLE parcel (id INTEGER PRIMARY KEY, weight REAL)",
    'CREATE TABLE "odd ""name"" é" (x BLOB)',
    "CREATE INDEX parcel_by_weight ON parcel (weight)",
    "CREATE VIEW heavy AS SELECT * FROM parcel WHERE weight > 10",
]


def make_database(path: Path, statements: list[str], parcels: int = 3) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    for statement in statements:
        conn.execute(statement)
    conn.executemany("INSERT INTO parcel (weight) VALUES (?)", [(n,) for n in range(parcels)])
    conn.execute('INSERT INTO "odd ""name"" é" VALUES (x\'00ff\')')
    conn.execute("COMMIT")
    conn.close()


def facts_of(path: Path) -> database.Facts:
    conn = database.open_copy(path)
    try:
        return database.facts(conn)
    finally:
        conn.close()


def test_the_schema_hash_does_not_depend_on_creation_order_but_on_the_schema(
    tmp_path: Path,
) -> None:
    make_database(tmp_path / "a.db", TABLES)
    make_database(tmp_path / "b.db", [TABLES[1], TABLES[0], TABLES[3], TABLES[2]])
    make_database(tmp_path / "c.db", [*TABLES, "CREATE INDEX more ON parcel (id, weight)"])
    a, b, c = (facts_of(tmp_path / name) for name in ("a.db", "b.db", "c.db"))
    assert a.schema_sha256 == b.schema_sha256
    assert a.schema_sha256 != c.schema_sha256
    assert a.row_counts == {'odd "name" é': 1, "parcel": 3}


def test_a_copy_is_checked_against_the_evidence(tmp_path: Path) -> None:
    make_database(tmp_path / "backed-up.db", TABLES)
    evidence = facts_of(tmp_path / "backed-up.db")
    assert (
        database.check_copy(
            tmp_path / "backed-up.db", evidence.row_counts, evidence.schema_sha256
        ).problems
        == []
    )

    make_database(tmp_path / "other.db", [*TABLES, "CREATE TABLE extra (x)"], parcels=2)
    check = database.check_copy(
        tmp_path / "other.db", {**evidence.row_counts, "gone": 4}, evidence.schema_sha256
    )
    assert check.problems == [
        "table gone is missing",
        "parcel: 2 rows, backup has 3",
        "table extra is not in the backup's evidence",
        "the schema's sha256 differs from the backup's",
    ]


def test_a_damaged_copy_is_one_problem_line(tmp_path: Path) -> None:
    path = tmp_path / "damaged.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    conn.execute(TABLES[0])
    conn.execute(TABLES[2])
    conn.executemany("INSERT INTO parcel (weight) VALUES (?)", [(n,) for n in range(3000)])
    conn.execute("COMMIT")
    # the index's pages then belong to nothing
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute("DELETE FROM sqlite_master WHERE name = 'parcel_by_weight'")
    conn.close()
    problems = database.check_copy(path, {}, "").problems
    assert len(problems) == 1, problems
    problem = problems[0]
    assert problem.startswith("PRAGMA integrity_check failed: Page ")
    assert "never used" in problem
    assert "\n" not in problem


def test_sqlite_failures_are_one_line_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match=r"missing\.db: no such file$"):
        database.open_source(tmp_path / "missing.db")
    text = tmp_path / "notes.db"
    text.write_text("not a database, just notes\n" * 100)
    conn = database.open_source(text)
    with pytest.raises(DatabaseError, match=r"notes\.db: not an SQLite database"):
        database.when_free(text, 1, lambda: database.pragma(conn, "journal_mode"))
    conn.close()
    (problem,) = database.check_copy(text, {}, "").problems
    assert "not an SQLite database" in problem


def test_a_name_sqlite_would_read_as_uri_syntax_is_the_file_it_names(tmp_path: Path) -> None:
    path = tmp_path / "in?ventory #1 100%.db"
    make_database(path, TABLES)
    conn = database.open_source(path)
    try:
        assert database.pragma(conn, "journal_mode") == "delete"
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            conn.execute("DELETE FROM parcel")  # opened read-only
    finally:
        conn.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_a_lock_held_past_the_timeout_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    make_database(path, TABLES)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    conn = database.open_source(path)
    try:
        with pytest.raises(DatabaseError, match=r"busy\.db: the database stayed locked for 0\.2 s"):
            database.when_free(path, 0.2, lambda: database.pragma(conn, "page_count"))
    finally:
        conn.close()
        holder.close()


@pytest.mark.parametrize("journal_mode", ["wal", "delete"])
@pytest.mark.parametrize("method", ["backup-api", "vacuum-into"])
def test_a_snapshot_is_a_whole_copy_in_its_private_folder(
    tmp_path: Path, journal_mode: str, method: snapshot.Method
) -> None:
    path = tmp_path / "live.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA journal_mode = {journal_mode}")
    conn.close()
    make_database(path, TABLES, parcels=5000)
    with snapshot.private_folder(tmp_path, "the test's snapshot") as folder:
        assert folder.stat().st_mode & 0o777 == 0o700
        taken = snapshot.take(path, method, folder, 5)
        assert taken.journal_mode == journal_mode
        assert facts_of(taken.path) == facts_of(path)
    assert not folder.exists()


def test_the_registry_knows_sqlite_sources(tmp_path: Path) -> None:
    assert isinstance(path_kind("inventory", "sqlite"), SqliteKind)


class WriterBetweenSteps:
    """Another connection that commits one row after each step of the copy, as a busy
    application does, without waiting for locks: whether it could write is recorded."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, timeout=0, isolation_level=None)
        self.written = 0
        self.held_off = 0

    def __call__(self, copied: int) -> None:
        try:
            self.conn.execute("INSERT INTO parcel (weight) VALUES (-1)")
            self.written += 1
        except sqlite3.OperationalError as exc:
            assert "locked" in str(exc)
            self.held_off += 1


def database_in_mode(path: Path, journal_mode: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA journal_mode = {journal_mode}")
    conn.close()
    make_database(path, TABLES, parcels=20_000)


def copied_in_small_steps(
    path: Path, monkeypatch: pytest.MonkeyPatch, on_step: Callable[[int], None]
) -> tuple[str, database.Facts]:
    """How a snapshot of path went, copied 16 pages at a time, and what the copy holds."""
    monkeypatch.setattr(snapshot, "STEP_BYTES", 16 * 4096)
    with snapshot.private_folder(path.parent, "the test's snapshot") as folder:
        taken = snapshot.take(path, "backup-api", folder, 5, on_step)
        return taken.how, facts_of(taken.path)


@pytest.mark.parametrize("journal_mode", ["delete", "wal"])
def test_a_copy_written_to_between_steps_ends_as_one_read_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, journal_mode: str
) -> None:
    path = tmp_path / f"{journal_mode}.db"
    database_in_mode(path, journal_mode)
    rows_before = facts_of(path).row_counts["parcel"]
    writer = WriterBetweenSteps(path)
    how, copied = copied_in_small_steps(path, monkeypatch, writer)
    writer.conn.close()
    assert how == "backup API in one read transaction"
    if journal_mode == "delete":
        # each commit between steps started the copy over, until the copy held writers off
        assert writer.written == snapshot.MAX_RESTARTS + 1
        assert writer.held_off > 0
        assert copied.row_counts["parcel"] == rows_before + writer.written
    else:
        # in WAL mode the copy reads one snapshot from the start; writers never wait
        assert writer.held_off == 0
        assert writer.written > 1
        assert copied.row_counts["parcel"] == rows_before


def test_in_rollback_mode_a_quiet_database_is_copied_in_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "quiet.db"
    database_in_mode(path, "delete")
    steps: list[int] = []
    how, copied = copied_in_small_steps(path, monkeypatch, steps.append)
    assert how == "backup API in steps, 0 restarts"
    assert copied == facts_of(path)
    assert len(steps) > 1
    assert steps == sorted(steps)
