"""The heartbeat against a real server: the row, the grants it needs, `lifeboat heartbeat`
once and as a loop that survives an absent database and ends on SIGTERM or Ctrl-C."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from lifeboat.errors import DatabaseError
from lifeboat.postgres.heartbeat import beat, last_beat
from lifeboat.postgres.instance import ScratchCluster
from tests.processes import running
from tests.waiting import wait_for

from .helpers import LIFEBOAT, Workspace, error_line, make_workspace
from .versions import on_oldest_major

# nothing listens on port 1 of the loopback: a connection is refused at once
UNREACHABLE_DSN = "postgresql://postgres@127.0.0.1:1/postgres"
FAILED_BEAT = "heartbeat of wms failed:"


def _last_beat(dsn: str) -> datetime | None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return last_beat(conn)


@on_oldest_major
def test_beat_creates_the_row_then_updates_it(pg_cluster: ScratchCluster, fresh_db: str) -> None:
    dsn = pg_cluster.dsn(fresh_db)
    assert _last_beat(dsn) is None  # no schema, no table yet
    with psycopg.connect(dsn, autocommit=True) as conn:
        first = beat(conn, by="first")
        assert last_beat(conn) == first
        second = beat(conn, by="second")
    assert _last_beat(dsn) == second
    rows = pg_cluster.psql("SELECT id, beat_by FROM lifeboat.heartbeat", fresh_db)
    assert rows == "1|second"


@on_oldest_major
def test_the_documented_grants_are_enough(pg_cluster: ScratchCluster, fresh_db: str) -> None:
    """An administrator creates the table and grants only what docs/drills.md lists: the
    role beats without CREATE on the database; a role without the grants gets one line."""
    granted, bare = f"hb_{uuid.uuid4().hex[:8]}", f"hb_{uuid.uuid4().hex[:8]}"
    pg_cluster.psql(f"CREATE ROLE {granted} LOGIN; CREATE ROLE {bare} LOGIN")
    try:
        pg_cluster.psql(
            f"REVOKE CREATE ON SCHEMA public FROM PUBLIC; "
            f"REVOKE CREATE, TEMPORARY ON DATABASE {fresh_db} FROM PUBLIC; "
            "CREATE SCHEMA lifeboat; "
            "CREATE TABLE lifeboat.heartbeat (id int PRIMARY KEY CHECK (id = 1), "
            "beat_at timestamptz NOT NULL, beat_by text NOT NULL); "
            f"GRANT USAGE ON SCHEMA lifeboat TO {granted}; "
            f"GRANT SELECT, INSERT, UPDATE ON lifeboat.heartbeat TO {granted}",
            fresh_db,
        )
        with psycopg.connect(pg_cluster.dsn(fresh_db, granted), autocommit=True) as conn:
            beat(conn, by="inserted")
            updated = beat(conn, by="updated")
            assert last_beat(conn) == updated
        assert pg_cluster.psql("SELECT beat_by FROM lifeboat.heartbeat", fresh_db) == "updated"
        with (
            psycopg.connect(pg_cluster.dsn(fresh_db, bare), autocommit=True) as conn,
            pytest.raises(DatabaseError, match=r"permission denied.*grants") as refused,
        ):
            beat(conn)
        assert "\n" not in str(refused.value)
    finally:
        pg_cluster.psql(f'DROP DATABASE "{fresh_db}" WITH (FORCE)')
        pg_cluster.psql(f"DROP ROLE {granted}; DROP ROLE {bare}")


@on_oldest_major
def test_once_writes_one_beat(pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path) -> None:
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db), in_process=True)
    done = ws.run("heartbeat", "wms", "--once", "--json", check=True)
    written = datetime.fromisoformat(json.loads(done.stdout)["beat_at"])
    assert _last_beat(pg_cluster.dsn(fresh_db)) == written


def test_once_against_an_unreachable_server_fails_in_one_line(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path, UNREACHABLE_DSN, in_process=True)
    failed = ws.run("heartbeat", "wms", "--once")
    assert failed.returncode == 1
    assert "cannot reach database postgres@127.0.0.1:1/postgres" in error_line(failed)
    assert failed.stdout == ""


@contextmanager
def _beating(ws: Workspace, log_file: Path, *options: str) -> Iterator[subprocess.Popen[str]]:
    """`lifeboat heartbeat wms` running, its stderr in log_file; killed if still running."""
    with (
        log_file.open("w") as log,
        running(
            [LIFEBOAT, "--config", str(ws.config), "heartbeat", "wms", *options],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        ) as process,
    ):
        yield process


def _failed_beats(log_file: Path) -> list[str]:
    return [line for line in log_file.read_text().splitlines() if FAILED_BEAT in line]


def test_the_loop_goes_on_after_failures_and_ends_on_ctrl_c(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path, UNREACHABLE_DSN, in_process=True)
    log_file = tmp_path / "heartbeat.log"
    with _beating(ws, log_file, "--every", "1s") as process:
        wait_for(lambda: len(_failed_beats(log_file)) >= 2, "two failed beats")
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=60)
    assert process.returncode == 0, log_file.read_text()
    assert out.startswith("stopped: 0 heartbeat(s) written, ")
    assert "Traceback" not in log_file.read_text()
    for line in _failed_beats(log_file):
        assert "cannot reach database" in line


@on_oldest_major
def test_the_loop_beats_once_the_database_is_back_and_ends_on_sigterm(
    pg_cluster: ScratchCluster, tmp_path: Path
) -> None:
    """The configured interval drives the loop; the database it beats into does not exist
    at first (as during an outage): beats fail, the loop goes on, and once the database is
    there the beats land, two of them before the SIGTERM that ends the loop with exit 0."""
    db = f"t_{uuid.uuid4().hex[:16]}"
    dsn = pg_cluster.dsn(db)
    ws = make_workspace(tmp_path, dsn, in_process=True)
    ws.write_config(dsn, extra_source='[sources.wms.objectives]\nheartbeat = "1s"\n')
    log_file = tmp_path / "heartbeat.log"
    try:
        with _beating(ws, log_file) as process:
            wait_for(lambda: _failed_beats(log_file), "a beat failing on the absent database")
            pg_cluster.psql(f'CREATE DATABASE "{db}"')
            first = wait_for(lambda: _last_beat(dsn), "a beat once the database exists")
            wait_for(lambda: _last_beat(dsn) != first, "a second beat")
            process.send_signal(signal.SIGTERM)
            out, _ = process.communicate(timeout=60)
        assert process.returncode == 0, log_file.read_text()
        found = re.fullmatch(r"stopped: (\d+) heartbeat\(s\) written, (\d+) failed\n", out)
        assert found is not None, out
        assert int(found[1]) >= 2 and int(found[2]) >= 1
        assert "Traceback" not in log_file.read_text()
        assert "does not exist" in _failed_beats(log_file)[0]
    finally:
        pg_cluster.psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
