"""SQLite sources end to end, through the installed `lifeboat` and a real database file
that another process keeps writing to: backup (backup API and VACUUM INTO, WAL and rollback
journal modes), restore, verify --deep, drill, list/show/prune, and the refusals (a missing
file, a file that is not a database, a locked database, a damaged database, a target that
is already there, a killed backup's leftovers)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from lifeboat.context import Context
from lifeboat.pipeline.crypto import write_identity
from lifeboat.sources.sqlite.kind import SqliteKind

from .helpers import LIFEBOAT, Workspace, error_line

SCHEMA = """
PRAGMA foreign_keys = ON;
CREATE TABLE warehouse (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE item (
    id INTEGER PRIMARY KEY,
    warehouse_id INTEGER NOT NULL REFERENCES warehouse (id) ON DELETE CASCADE,
    sku TEXT NOT NULL,
    photo BLOB,
    price REAL
);
CREATE INDEX item_by_sku ON item (sku);
CREATE TABLE "Stock ""moves"" — Übersicht" (
    "move id" INTEGER PRIMARY KEY,
    "item" INTEGER REFERENCES item (id),
    "qty Δ" INTEGER
);
CREATE INDEX "moves by item" ON "Stock ""moves"" — Übersicht" ("item");
CREATE VIEW item_count AS SELECT warehouse_id, count(*) AS n FROM item GROUP BY warehouse_id;
CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, item_id INTEGER, what TEXT);
CREATE TRIGGER item_audit AFTER INSERT ON item
BEGIN
    INSERT INTO audit (item_id, what) VALUES (new.id, 'created');
END;
CREATE TABLE events (id INTEGER PRIMARY KEY, note TEXT, payload BLOB);
"""
MOVES_TABLE = 'Stock "moves" — Übersicht'


def make_inventory(path: Path, journal_mode: str, items: int = 2000) -> None:
    """The application's database: foreign keys, indexes, a view, a trigger, a table with
    quotes, spaces and non-ASCII letters in its names, BLOBs."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA journal_mode = {journal_mode}")
    conn.executescript(SCHEMA)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO warehouse (id, name) VALUES (?, ?)",
        [(1, "Nord"), (2, "Süd"), (3, "西")],
    )
    conn.executemany(
        "INSERT INTO item (id, warehouse_id, sku, photo, price) VALUES (?, ?, ?, ?, ?)",
        [
            (n, n % 3 + 1, f"SKU-{n:05}", hashlib.sha256(str(n).encode()).digest() * 8, n / 7)
            for n in range(1, items + 1)
        ],
    )
    conn.executemany(
        'INSERT INTO "Stock ""moves"" — Übersicht" ("item", "qty Δ") VALUES (?, ?)',
        [(n, n % 11 - 5) for n in range(1, items + 1, 4)],
    )
    conn.execute("COMMIT")
    conn.close()


def schema_of(path: Path) -> set[str]:
    with closing(path) as conn:
        return {str(r[0]) for r in conn.execute("SELECT sql FROM sqlite_master") if r[0]}


def row_counts(path: Path) -> dict[str, int]:
    with closing(path) as conn:
        tables = [
            str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        counts = {}
        for table in tables:
            quoted = '"' + table.replace('"', '""') + '"'
            counts[table] = int(conn.execute(f"SELECT count(*) FROM {quoted}").fetchone()[0])
        return counts


@contextmanager
def closing(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(path, timeout=60, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


class SqliteWorkspace(Workspace):
    """A repository, a key and a config whose source inventory is an SQLite database."""

    @property
    def database(self) -> Path:
        return self.root / "app" / "inventory.db"

    def write_sqlite_config(self, extra: str = "") -> None:
        self.config.write_text(
            f'[repositories.local]\nurl = "file://{self.repo}"\n\n'
            f'[encryption]\nage_recipients = ["{self.public_key}"]\n'
            f'age_identity_file = "{self.identity}"\n\n'
            f'[sources.inventory]\ntype = "sqlite"\npath = "{self.database}"\n{extra}\n'
        )

    def backups(self) -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = self.run_json("list", "inventory")
        return listed

    def stored_objects(self) -> list[Path]:
        return sorted(self.repo.rglob("database.zst.age"))


@pytest.fixture
def ws(tmp_path: Path) -> SqliteWorkspace:
    workspace = SqliteWorkspace(tmp_path, write_identity(tmp_path / "age.key"))
    workspace.database.parent.mkdir()
    workspace.write_sqlite_config()
    workspace.run("init", check=True)
    return workspace


@contextmanager
def writer(database: Path) -> Iterator[subprocess.Popen[str]]:
    """tests/integration/sqlite_writer.py inserting into events without pause."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.sqlite_writer", str(database)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        yield process
    finally:
        process.kill()
        process.wait()


def committed_events(database: Path) -> int:
    with closing(database) as conn:
        return int(conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0])


@pytest.mark.parametrize(
    ("journal_mode", "method"),
    [("wal", "backup-api"), ("delete", "backup-api"), ("wal", "vacuum-into")],
)
def test_a_backup_taken_while_another_process_writes_restores_whole(
    ws: SqliteWorkspace, journal_mode: str, method: str
) -> None:
    make_inventory(ws.database, journal_mode)
    ws.write_sqlite_config(f'method = "{method}"')
    with writer(ws.database) as application:
        while committed_events(ws.database) < 200:  # the application is well under way
            assert application.poll() is None
        before = committed_events(ws.database)
        ws.run("backup", "inventory", check=True)
        # the application went on writing through the backup, and still does
        assert application.poll() is None
        while committed_events(ws.database) <= before:
            assert application.poll() is None
    (listed,) = ws.backups()
    details = ws.run_json("show", listed["id"])["details"]
    assert details["method"] == method
    assert details["journal_mode"] == journal_mode
    assert details["sqlite_version"] == sqlite3.sqlite_version

    restored = ws.root / "restored" / "inventory.db"
    restored.parent.mkdir()
    outcome = ws.run_json("restore", "inventory", "--to", str(restored))
    assert outcome["verified"] is True
    assert outcome["replaced"] is False
    with closing(restored) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        # every row committed before the backup began is there
        kept = conn.execute("SELECT count(*) FROM events WHERE id <= ?", (before,)).fetchone()
        assert kept[0] == before
        assert dict(conn.execute("SELECT warehouse_id, n FROM item_count").fetchall()) == {
            1: 666,
            2: 667,
            3: 667,
        }
        photos = conn.execute("SELECT id, photo FROM item ORDER BY id").fetchall()
    assert row_counts(restored) == details["row_counts"]
    assert details["row_counts"][MOVES_TABLE] == 500
    assert details["row_counts"]["events"] >= before
    assert schema_of(restored) == schema_of(ws.database)
    with closing(ws.database) as conn:
        assert photos == conn.execute("SELECT id, photo FROM item ORDER BY id").fetchall()
    with closing(restored) as conn:  # the trigger came back too, and fires
        conn.execute("INSERT INTO item (warehouse_id, sku) VALUES (1, 'new')")
        assert conn.execute("SELECT what FROM audit ORDER BY id DESC LIMIT 1").fetchone() == (
            "created",
        )


def test_list_show_verify_drill_and_prune_work_on_the_source(ws: SqliteWorkspace) -> None:
    make_inventory(ws.database, "wal", items=300)
    ws.write_sqlite_config(
        "[sources.inventory.retention]\nkeep_last = 1\nkeep_hourly = 0\nkeep_daily = 0\n"
        "keep_weekly = 0\nkeep_monthly = 0\nkeep_yearly = 0\n"
        '[[sources.inventory.drill.checks]]\nname = "every item has a warehouse"\n'
        'sql = "SELECT count(*) = 0 FROM item LEFT JOIN warehouse w ON w.id = warehouse_id '
        'WHERE w.id IS NULL"\n'
    )
    ws.run("backup", "inventory", check=True)
    ws.run("backup", "inventory", check=True)
    first, second = ws.backups()
    assert first["type"] == second["type"] == "sqlite"
    shown = ws.run_json("show", second["id"])
    assert shown["kind"] == "sqlite"
    assert shown["details"]["row_counts"]["item"] == 300
    assert shown["objects"][0]["format"] == "sqlite3"

    verified = ws.run("verify", "inventory", "--deep")
    assert verified.returncode == 0, verified.stderr
    assert "2 backup(s) verified (deep)" in verified.stdout

    drilled = ws.run("drill", "inventory", "--json")
    assert drilled.returncode == 0, drilled.stderr
    (record,) = json.loads(drilled.stdout)["drills"]
    assert record["verdict"] == "pass", record
    assert record["backup"] == second["id"]
    tables = {t["table"]: (t["expected"], t["actual"]) for t in record["tables"]}
    assert tables["item"] == (300, 300)
    assert tables[MOVES_TABLE] == (75, 75)
    assert [p["name"] for p in record["phases"]][1:] == ["restore", "verify", "checks"]
    assert [(c["name"], c["ok"]) for c in record["checks"]] == [
        ("every item has a warehouse", True)
    ]

    older = ws.root / "older.db"
    restored = ws.run_json("restore", "inventory", "--to", str(older), "--backup", first["id"])
    assert restored["backup"] == first["id"]
    assert row_counts(older) == ws.run_json("show", first["id"])["details"]["row_counts"]

    pruned = ws.run("prune", "inventory")
    assert pruned.returncode == 0, pruned.stderr
    assert [b["id"] for b in ws.backups()] == [second["id"]]


def test_a_damaged_stored_object_fails_verify_deep_and_the_drill(ws: SqliteWorkspace) -> None:
    make_inventory(ws.database, "wal", items=300)
    ws.run("backup", "inventory", check=True)
    (stored,) = ws.stored_objects()
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))

    verified = ws.run("verify", "inventory", "--deep")
    assert verified.returncode == 1
    assert "corrupted" in verified.stdout + verified.stderr
    drilled = ws.run("drill", "inventory")
    assert drilled.returncode == 1
    assert "FAIL" in drilled.stdout


def test_what_cannot_be_backed_up_is_one_line_and_stores_nothing(ws: SqliteWorkspace) -> None:
    missing = ws.run("backup", "inventory")
    assert missing.returncode == 1
    assert error_line(missing) == f"lifeboat: error: {ws.database}: no such file"

    ws.database.write_bytes(b"inventory export, not a database\n" * 200)
    not_a_database = ws.run("backup", "inventory")
    assert not_a_database.returncode == 1
    assert "not an SQLite database" in error_line(not_a_database)

    ws.database.unlink()
    make_inventory(ws.database, "delete", items=100)
    ws.write_sqlite_config("busy_timeout = 0.5")
    with closing(ws.database) as holder:
        holder.execute("BEGIN EXCLUSIVE")  # the application in the middle of a write
        locked = ws.run("backup", "inventory")
        holder.execute("ROLLBACK")
    assert locked.returncode == 1
    assert "the database stayed locked for 0.5 s" in error_line(locked)

    # a damaged database: an index's pages no longer belong to anything
    with closing(ws.database) as conn:
        conn.execute("PRAGMA writable_schema = ON")
        conn.execute("DELETE FROM sqlite_master WHERE name = 'item_by_sku'")
    damaged = ws.run("backup", "inventory")
    assert damaged.returncode == 1
    line = error_line(damaged)
    assert "integrity_check failed" in line
    assert "nothing was stored" in line

    assert ws.backups() == []
    assert ws.stored_objects() == []


def test_a_stopped_wal_database_in_a_folder_lifeboat_cannot_write_is_one_line() -> None:
    folder = Path(tempfile.mkdtemp(prefix="lifeboat-test-sqlite-"))
    try:
        path = folder / "inventory.db"
        make_inventory(path, "wal", items=10)  # closed: no -wal, no -shm any more
        path.chmod(0o644)
        folder.chmod(0o555)
        # root may write anywhere: the server's OS user plays the one that may not
        as_other = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        script = (
            "import sys\n"
            "from pathlib import Path\n"
            "from lifeboat.errors import DatabaseError\n"
            "from lifeboat.sources.sqlite import database\n"
            "path = Path(sys.argv[1])\n"
            "conn = database.open_source(path)\n"
            "try:\n"
            "    database.when_free(path, 1, lambda: database.pragma(conn, 'journal_mode'))\n"
            "except DatabaseError as exc:\n"
            "    print(exc)\n"
        )
        result = subprocess.run(
            [*as_other, sys.executable, "-c", script, str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert result.stdout == (
            f"{path}: a WAL database is only read with its -shm file, which this user may not "
            f"create in {folder}: run Lifeboat as the database's owner, or while the "
            "application has it open (docs/sqlite.md)\n"
        )
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder)


def test_checks_before_a_backup_find_what_would_stop_it(ws: SqliteWorkspace) -> None:
    kind = SqliteKind()
    (missing,) = kind.checks(Context.load(ws.config), "inventory")
    assert missing == f"{ws.database}: no such file"
    make_inventory(ws.database, "wal", items=10)
    assert kind.checks(Context.load(ws.config), "inventory") == []


def test_restore_replaces_a_database_only_when_told_and_drops_its_old_wal(
    ws: SqliteWorkspace,
) -> None:
    make_inventory(ws.database, "wal", items=200)
    ws.run("backup", "inventory", check=True)
    target = ws.root / "app" / "current.db"
    make_inventory(target, "wal", items=10)  # the database there now, with its WAL files
    os.chmod(target, 0o640)
    old = target.read_bytes()
    holder = sqlite3.connect(target, isolation_level=None)
    holder.execute("PRAGMA wal_autocheckpoint = 0")
    holder.execute("INSERT INTO warehouse (id, name) VALUES (9, 'left in the WAL')")
    wal = target.with_name("current.db-wal")
    assert wal.stat().st_size > 0

    refused = ws.run("restore", "inventory", "--to", str(target))
    assert refused.returncode == 1
    assert "--yes" in error_line(refused)
    assert target.read_bytes() == old
    assert wal.exists()

    holder.close()  # the application stopped (its last connection checkpoints the WAL)
    stale_wal = b"an old database's WAL"
    wal.write_bytes(stale_wal)  # as a crash would leave one
    replaced = ws.run_json("restore", "inventory", "--to", str(target), "--yes")
    assert replaced["replaced"] is True
    assert replaced["removed"] == ["current.db-wal"]
    assert not wal.exists()
    assert row_counts(target)["item"] == 200
    assert target.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in target.parent.iterdir() if p.name.startswith("lifeboat-")] == []


def test_a_killed_backup_leaves_nothing_the_next_one_does_not_remove(
    ws: SqliteWorkspace, tmp_path: Path
) -> None:
    make_inventory(ws.database, "delete", items=100)
    ws.write_sqlite_config("busy_timeout = 600")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    environment = {**os.environ, "TMPDIR": str(scratch)}

    def snapshot_folders() -> list[Path]:
        return sorted(scratch.glob("lifeboat-sqlite-*"))

    def backup_held_in_its_snapshot() -> subprocess.Popen[str]:
        """A backup waiting for the database's lock, its private folder made."""
        process = subprocess.Popen(
            [LIFEBOAT, "--config", str(ws.config), "backup", "inventory"],
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        while not snapshot_folders():
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
        return process

    with closing(ws.database) as holder:
        holder.execute("BEGIN EXCLUSIVE")
        stopped = backup_held_in_its_snapshot()
        stopped.send_signal(signal.SIGTERM)
        _, err = stopped.communicate(timeout=60)
        assert stopped.returncode == 130, err
        assert snapshot_folders() == []

        killed = backup_held_in_its_snapshot()
        killed.kill()
        killed.communicate(timeout=60)
        (left,) = snapshot_folders()  # SIGKILL: nothing could run
        assert left.stat().st_mode & 0o777 == 0o700
        holder.execute("ROLLBACK")

    again = subprocess.run(
        [LIFEBOAT, "--config", str(ws.config), "backup", "inventory"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr
    assert snapshot_folders() == []
    assert len(ws.backups()) == 1
