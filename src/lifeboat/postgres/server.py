"""Starting and stopping a data directory's server, and waiting for its recovery to end.

Restore and the scratch instance both run pg_ctl through PgCtl, as the cluster's OS user
(util/osuser.py). The wait reads the server itself while it answers, and its postmaster.pid,
pg_control and log when it does not: a server that stops on the way is noticed as soon as
its postmaster is gone, with its log's own reason."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lifeboat.errors import LifeboatError
from lifeboat.postgres.pgcontrol import DB_IN_PRODUCTION, cluster_state, shut_down_in_recovery
from lifeboat.util.clock import process_start_ticks
from lifeboat.util.osuser import OsUser, run_as
from lifeboat.util.proc import pid_alive

log = logging.getLogger(__name__)

Action = Literal["promote", "pause", "shutdown"]
# what wait_for_recovery returns for the replayed time when it could not ask the server
UNREAD = "\0unread"
# how often a wait looks again at the server
POLL_SECONDS = 0.1
# an immediate shutdown takes some hundredths of a second
_QUIT_POLL_SECONDS = 0.01
# how often an open connection asks whether recovery has ended
_RECOVERY_POLL_SECONDS = 0.02
# the server log's own account of why it stopped
_SERVER_FAILURE = re.compile(r"\b(?:FATAL|PANIC):\s+(.*)")


def postmaster_pid(pgdata: Path) -> int | None:
    """The pid of the postmaster running in pgdata, from its postmaster.pid (which it
    removes when it exits); None when none runs."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def quit_now(pid: int, timeout: float) -> bool:
    """An immediate shutdown of the postmaster pid: the SIGQUIT pg_ctl stop -m immediate
    sends, then a wait for the process to be gone, looked at every hundredth of a second
    (pg_ctl looks every tenth). Whether it is gone; PermissionError when this user may not
    signal it."""
    started = process_start_ticks(pid)  # the pid names this process only while it runs
    if started is None:
        return True
    try:
        os.kill(pid, signal.SIGQUIT)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while process_start_ticks(pid) == started:
        if time.monotonic() >= deadline:
            return False
        time.sleep(_QUIT_POLL_SECONDS)
    return True


def log_tail(path: Path, lines: int) -> str:
    """The last lines of a server log, for an error message."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def stop_reason(log_file: Path) -> str | None:
    """Why the server stopped, in its log's words: its first FATAL or PANIC, skipping what
    clients (a wait among them) were told while it was not ready."""
    try:
        text = log_file.read_text(errors="replace")
    except OSError:
        return None
    reasons = (m[1] for m in _SERVER_FAILURE.finditer(text))
    return next((r for r in reasons if not r.startswith("the database system is")), None)


# a line of the default log_line_prefix ('%m [%p] '): its pid, level and message
_LOG_LINE = re.compile(r"\[(\d+)\]\s+([A-Z]+):\s+(.*)")


def startup_failure(log_text: str) -> str | None:
    """Why a start failed, from the log it wrote: its FATAL or PANIC, after the line the
    same process wrote just before it when that one says what was wrong (a bad setting is
    logged, then "configuration file ... contains errors")."""
    previous: tuple[str, str] | None = None
    for line in log_text.splitlines():
        match = _LOG_LINE.search(line)
        if match is None:
            continue
        pid, level, message = match.groups()
        if level in ("FATAL", "PANIC") and not message.startswith("the database system is"):
            if previous is not None and previous[0] == pid:
                return f"{previous[1]}; {message}"
            return message
        previous = (pid, message)
    return None


def log_since(log_file: Path, offset: int) -> str:
    """What the server wrote to its log after byte offset ('' when it cannot be read)."""
    try:
        with log_file.open("rb") as fh:
            fh.seek(offset)
            return fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def port_taken(log_text: str) -> bool:
    """Whether a server's start failed because another program holds its port: a port
    picked free can be taken before the server binds it, and is then worth another try."""
    return "could not bind" in log_text or "already in use" in log_text


def log_last_lines(log_file: Path, count: int) -> None:
    """Log the end of a server log, for a stop whose error message has one line only."""
    tail = log_tail(log_file, count).splitlines()
    log.error("last %d lines of %s:", len(tail), log_file)
    for line in tail:
        log.error("  %s", line)


@dataclass(frozen=True)
class PgCtl:
    """pg_ctl on one data directory, run as the cluster's OS user (None: as ourselves).
    `env` is the environment it runs in (None: ours), `cwd` a folder that user may enter."""

    bin_dir: Path
    pgdata: Path
    user: OsUser | None
    env: Mapping[str, str] | None = None
    cwd: Path | None = None

    def run(self, args: list[str], timeout: float | None) -> subprocess.CompletedProcess[str]:
        return run_as(self.user, args, env=self.env, cwd=self.cwd, timeout=timeout)

    def start(
        self, log_file: Path, *, wait_seconds: int, timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        """pg_ctl start -w: returns once the server accepts connections (or recovery
        stopped it, or wait_seconds passed); the caller reads the exit code."""
        command = [str(self.bin_dir / "pg_ctl"), "start", "-D", str(self.pgdata)]
        command += ["-l", str(log_file), "-w", "-t", str(wait_seconds)]
        return self.run(command, timeout)

    def stop(self, mode: str, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / "pg_ctl"), "stop", "-D", str(self.pgdata), "-m", mode]
        return self.run([*command, "-w"], timeout)

    def is_running(self) -> bool:
        done = self.run([str(self.bin_dir / "pg_ctl"), "status", "-D", str(self.pgdata)], 60)
        return done.returncode == 0

    def show(self, setting: str) -> str:
        """A setting as the server would start with it (postgres -C)."""
        done = self.run([str(self.bin_dir / "postgres"), "-D", str(self.pgdata), "-C", setting], 60)
        return done.stdout.strip()


def wait_for_recovery(
    pgdata: Path,
    port: int,
    action: Action,
    timeout: float,
    stopped: Callable[[str], LifeboatError],
) -> tuple[str | None, str | None]:
    """Wait until the started server's recovery ends (or, with action pause, pauses at its
    target); the last replayed commit's time and the last replayed LSN. A server that
    stops on the way raises stopped("stopped during recovery")."""
    import psycopg

    conninfo = f"host=127.0.0.1 port={port} dbname=postgres user=postgres connect_timeout=5"
    deadline = time.monotonic() + timeout
    refused_after_recovery = False
    # one connection, asked again and again, once the server lets it in: the end of
    # recovery is seen within a few hundredths of a second (a drill's RTO ends there)
    conn: psycopg.Connection[Any] | None = None
    try:
        while time.monotonic() < deadline:
            try:
                if conn is None:
                    conn = psycopg.connect(conninfo, autocommit=True)
                row = conn.execute(
                    "SELECT pg_is_in_recovery(), pg_last_xact_replay_timestamp()::text, "
                    "pg_last_wal_replay_lsn()::text"
                ).fetchone()
                if row is None:
                    raise LifeboatError(f"the server in {pgdata} returned no recovery state")
                in_recovery, replayed, lsn = row
                if not in_recovery:
                    return replayed, lsn
                if action == "pause":
                    state = conn.execute("SELECT pg_get_wal_replay_pause_state()").fetchone()
                    if state and state[0] == "paused":
                        return replayed, lsn
            except psycopg.OperationalError as exc:
                if conn is not None:
                    conn.close()
                    conn = None
                if postmaster_pid(pgdata) is None:
                    raise stopped("stopped during recovery") from None
                # the restored pg_hba.conf may not let this connection in (a password for
                # host connections): pg_control still tells that recovery has ended, twice
                # in a row so that a connection refused just before promotion does not count
                if cluster_state(pgdata) == DB_IN_PRODUCTION:
                    if refused_after_recovery:
                        log.warning(
                            "recovery of %s has ended, but restore cannot connect to read "
                            "where (%s): check the recovered point yourself",
                            pgdata,
                            str(exc).strip().splitlines()[-1] if str(exc).strip() else exc,
                        )
                        return UNREAD, None  # pg_last_* could not be read
                    refused_after_recovery = True
                    continue
                time.sleep(POLL_SECONDS)  # not accepting connections yet
                continue
            time.sleep(_RECOVERY_POLL_SECONDS)
    finally:
        if conn is not None:
            conn.close()
    raise LifeboatError(f"recovery of {pgdata} did not finish within {timeout:.0f} s")


def wait_for_shutdown_at_target(
    pgdata: Path, timeout: float, stopped: Callable[[str], LifeboatError]
) -> None:
    """Wait until the server, told to shut down at its target, is gone, and tell that
    shutdown from a stop at an error (a target it cannot reach, an unreadable WAL file):
    only the first leaves pg_control "shut down in recovery". pg_ctl has returned, so a
    postmaster that was started has written its postmaster.pid already."""
    deadline = time.monotonic() + timeout
    while postmaster_pid(pgdata) is not None:
        if time.monotonic() >= deadline:
            raise LifeboatError(f"recovery of {pgdata} did not finish within {timeout:.0f} s")
        time.sleep(POLL_SECONDS)
    if not shut_down_in_recovery(pgdata):
        raise stopped("stopped during recovery")


def start_and_wait(
    pg_ctl: PgCtl,
    log_file: Path,
    *,
    action: Action,
    has_target: bool,
    port: int | None,
    timeout: float,
    stopped: Callable[[str], LifeboatError],
) -> tuple[str | None, str | None]:
    """Start a data directory set up for recovery and wait until recovery ends, pauses
    at its target or shuts down there; the last replayed commit's time and LSN (None,
    None after a shutdown at the target; UNREAD for the time when the server would not
    let us in to read them). A server that stops on the way raises stopped(what)."""
    started = pg_ctl.start(log_file, wait_seconds=600)
    shuts_down = action == "shutdown"
    if started.returncode != 0 and not shuts_down:
        raise stopped("did not start")
    if shuts_down and has_target:
        wait_for_shutdown_at_target(pg_ctl.pgdata, timeout, stopped)
        return None, None
    if port is None:
        port = int(pg_ctl.show("port") or "5432")
    return wait_for_recovery(pg_ctl.pgdata, port, action, timeout, stopped)
