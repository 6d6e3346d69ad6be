"""`lifeboat daemon` as a real process against a real PostgreSQL: a two-second schedule
backs up a few times, `lifeboat list` shows the backups, a second daemon on the same
configuration refuses, and SIGTERM while a backup is running (held inside pg_dump by a
table lock, so the signal lands mid-job for certain) cancels it: exit 1, nothing
half-written listed, `lifeboat verify` passes, and the next backup runs (the source's lock
was released)."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from lifeboat.postgres.instance import ScratchCluster
from tests.servers.receivers import HttpReceiver, http_receiver
from tests.waiting import wait_for

from .helpers import LIFEBOAT, Workspace, error_line, make_workspace
from .versions import on_oldest_major

pytestmark = pytest.mark.integration

SCHEDULE = '\n[schedule.often]\nsource = "wms"\njob = "backup"\nevery = "1s"\nretries = 0\n'


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
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db), in_process=True)
    with contextlib.ExitStack() as stack:
        receiver = stack.enter_context(http_receiver())
        ws.config.write_text(
            ws.config.read_text()
            + SCHEDULE
            + f'ping_url = "{receiver.url("/ping/often")}"\n'
            + '\n[metrics]\nlisten = "127.0.0.1:0"\n'
            + f'\n[notifications.hook]\ntype = "webhook"\nurl = "{receiver.url()}"\n'
        )
        env = {**os.environ, "LIFEBOAT_STATE_DIR": str(tmp_path / "state")}
        daemon = Daemon(ws, env)
        stack.callback(daemon.stop)
        serving = daemon.wait_for("serving /metrics and /healthz")
        port = int(serving.rsplit("port ", 1)[1].split()[0])
        for _ in range(2):
            daemon.wait_for("job often succeeded")
        listed = ws.run("list", "--json", env=env, check=True)
        assert listed.stdout.count('"source": "wms"') >= 2
        _metrics_and_notifications_tell_the_runs(port, receiver)
        before = _cancelled_mid_job(pg_cluster, fresh_db, ws, env, daemon, receiver)
    _left_consistent(ws, env, before)


def _metrics_and_notifications_tell_the_runs(port: int, receiver: HttpReceiver) -> None:
    """/metrics counts the runs and the heartbeat beats, /healthz answers 200, and each run
    reached the webhook and the dead-man's-switch (through a sender thread: polled)."""
    families = {
        family.name: family
        for family in text_string_to_metric_families(
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read().decode()
        )
    }
    runs = {
        sample.labels["result"]: sample.value
        for sample in families["lifeboat_job_runs"].samples
        if sample.name == "lifeboat_job_runs_total" and sample.labels["job"] == "often"
    }
    assert runs["succeeded"] >= 2 and runs["failed"] == 0
    (beat,) = families["lifeboat_daemon_heartbeat_timestamp_seconds"].samples
    assert abs(beat.value - time.time()) < 120
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=30) as health:
        assert health.status == 200

    def told() -> bool:
        paths = [r.path for r in receiver.received]
        bodies = [json.loads(r.body) for r in receiver.received if r.path == "/hook"]
        events = [body["event"] for body in bodies]
        # each names the backup it made, as `lifeboat backup` tells it
        assert all(b["details"]["backup_id"] for b in bodies if b["event"] == "backup_succeeded")
        return (
            events.count("backup_succeeded") >= 2
            and paths.count("/ping/often/start") >= 2
            and paths.count("/ping/often") >= 2
        )

    wait_for(told, lambda: f"two runs told: {[r.path for r in receiver.received]}")


def _cancelled_mid_job(
    pg_cluster: ScratchCluster,
    fresh_db: str,
    ws: Workspace,
    env: dict[str, str],
    daemon: Daemon,
    receiver: HttpReceiver,
) -> list[str]:
    """A second daemon refuses; SIGTERM while a backup waits inside pg_dump cancels it
    (exit 1), and its run is counted, notified and pinged as failed before the exit. The
    backups listed before the signal."""
    # a daemon of its own: its lock and its metrics port are the process's
    second = ws.run("daemon", "--once", env=env, own_process=True)
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
    # the sender thread drained before the daemon exited: no polling needed
    failed = [json.loads(r.body) for r in receiver.received if r.path == "/hook"][-1]
    assert failed["event"] == "backup_failed"
    assert "cancelled: the daemon stopped" in failed["summary"]
    assert "/ping/often/fail" in [r.path for r in receiver.received]
    return before


def _left_consistent(ws: Workspace, env: dict[str, str], before: list[str]) -> None:
    """Nothing half-written listed, verify passes, the schedule shows the cancelled run,
    and the next backup runs (the source's lock was released)."""
    assert backup_ids(ws) == before, "the cancelled backup is listed"
    verified = ws.run("verify", env=env)
    assert verified.returncode == 0, verified.stderr
    state = ws.run("schedule", "--json", env=env, check=True)
    assert '"last_result": "cancelled"' in state.stdout
    ws.run("backup", "wms", env=env, check=True)
    assert len(set(backup_ids(ws)) - set(before)) == 1
