"""`lifeboat daemon` as a real process against a real PostgreSQL: a two-second schedule
backs up a few times, `lifeboat list` shows the backups, a second daemon on the same
configuration refuses, and SIGTERM while a backup is running (held inside pg_dump by a
table lock, so the signal lands mid-job for certain) cancels it: exit 1, nothing
half-written listed, `lifeboat verify` passes, and the next backup runs (the source's lock
was released)."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path

import psycopg
import pytest

from lifeboat.postgres.instance import ScratchCluster

from .helpers import LIFEBOAT, Workspace, error_line, make_workspace
from .versions import on_oldest_major

pytestmark = pytest.mark.integration

SCHEDULE = '\n[schedule.often]\nsource = "wms"\njob = "backup"\nevery = "2s"\nretries = 0\n'


class Daemon:
    """A `lifeboat daemon` process; its log lines are read as they come."""

    def __init__(self, ws: Workspace, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [
                LIFEBOAT,
                "--config",
                str(ws.config),
                "--log-format",
                "plain",
                "daemon",
                "--grace",
                "0s",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no log line with {text!r}: {self.seen}") from None
            self.seen.append(line)
            if text in line:
                return line

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def backup_ids(ws: Workspace) -> list[str]:
    return [b["id"] for b in ws.run_json("list") if b["source"] == "wms"]


def lock_waiters(cluster: ScratchCluster, db: str) -> int:
    """Sessions of db waiting for a lock: the backup's, held by the test's table lock."""
    out = cluster.psql(
        f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' AND wait_event_type = 'Lock'"
    )
    return int(out.strip())


@on_oldest_major
def test_daemon_backs_up_on_schedule_and_stops_cleanly_mid_job(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path
) -> None:
    pg_cluster.psql("CREATE TABLE lots (id int PRIMARY KEY); INSERT INTO lots VALUES (1)", fresh_db)
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db))
    ws.config.write_text(ws.config.read_text() + SCHEDULE)
    env = {**os.environ, "LIFEBOAT_STATE_DIR": str(tmp_path / "state")}
    daemon = Daemon(ws, env)
    try:
        for _ in range(2):
            daemon.wait_for("job often succeeded")
        listed = ws.run("list", "--json", env=env, check=True)
        assert listed.stdout.count('"source": "wms"') >= 2

        second = ws.run("daemon", "--once", env=env)
        assert second.returncode == 1
        assert "another lifeboat daemon runs with" in error_line(second)

        with psycopg.connect(pg_cluster.dsn(fresh_db)) as blocker:
            blocker.execute("LOCK TABLE lots IN ACCESS EXCLUSIVE MODE")
            daemon.wait_for("job often started")
            deadline = time.monotonic() + 120
            while lock_waiters(pg_cluster, fresh_db) == 0:  # the backup is inside pg_dump
                assert time.monotonic() < deadline, "the backup never reached the table"
                time.sleep(0.05)
            before = backup_ids(ws)
            daemon.process.send_signal(signal.SIGTERM)
            # --grace 0s: cancelled at once; the cancellation strikes when the job's
            # thread is back in Python, out of the query the table lock holds
            daemon.wait_for("job often: cancelled: the daemon stopped")
            blocker.rollback()
            assert daemon.process.wait(timeout=120) == 1
            daemon.wait_for("job often left unfinished")
    finally:
        daemon.stop()

    assert backup_ids(ws) == before, "the cancelled backup is listed"
    verified = ws.run("verify", env=env)
    assert verified.returncode == 0, verified.stderr
    state = ws.run("schedule", "--json", env=env, check=True)
    assert '"last_result": "cancelled"' in state.stdout
    ws.run("backup", "wms", env=env, check=True)
    assert len(set(backup_ids(ws)) - set(before)) == 1
