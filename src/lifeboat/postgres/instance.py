"""Throw-away PostgreSQL clusters: for tests, the demo and restore drills.

A :class:`ScratchCluster` owns a base directory holding the data directory, the server
log and the unix socket directory.  It listens on 127.0.0.1 on a free TCP port and is
configured for physical backups (``wal_level=replica``, WAL senders enabled).

PostgreSQL refuses to run as root, so when this process is root the server programs
(``initdb``, ``pg_ctl``, ``postgres``) run as the ``postgres`` OS user (util/osuser.py);
client programs such as ``psql`` run as the current user and connect over TCP. Binary
folders come from postgres/binaries.py's ``find_bin_dirs``. Every failure is a
LifeboatError with one line to show.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import shutil
import socket
import subprocess
import tempfile
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from lifeboat.errors import DatabaseError, ToolError, UsageError
from lifeboat.postgres.binaries import SERVER_PROGRAMS, bin_dir_major, is_server_bin_dir
from lifeboat.postgres.recovery import RECOVERY_SIGNAL, setting_lines
from lifeboat.postgres.server import (
    Action,
    PgCtl,
    log_last_lines,
    log_since,
    port_taken,
    postmaster_pid,
    quit_now,
    start_and_wait,
    startup_failure,
    stop_reason,
)
from lifeboat.util.osuser import NoServerUser, OsUser, run_as, server_user
from lifeboat.util.proc import error_line

__all__ = ["ScratchCluster"]

T = TypeVar("T")

# Unix socket paths are limited to ~107 bytes; keep a margin for ".s.PGSQL.NNNNN".
_MAX_SOCKET_DIR_LEN = 90
_LOG_TAIL_LINES = 40


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@functools.cache
def _default_locale() -> str:
    """``C.UTF-8`` when the C library provides it, else ``C``."""
    try:
        proc = subprocess.run(
            ["locale", "-a"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "C"
    available = {line.strip().lower() for line in proc.stdout.splitlines()}
    return "C.UTF-8" if available & {"c.utf8", "c.utf-8"} else "C"


_LIVE: set[ScratchCluster] = set()


@atexit.register
def _stop_leftovers() -> None:
    for cluster in list(_LIVE):
        with contextlib.suppress(Exception):
            cluster.stop(mode="immediate")


# --------------------------------------------------------------------------- cluster


class ScratchCluster:
    """A disposable PostgreSQL cluster.

    Use as a context manager (``init`` + ``start`` on entry, ``destroy`` on exit) or call
    the methods yourself.  ``base_dir`` is removed entirely by :meth:`destroy`.
    """

    superuser = "postgres"

    def __init__(
        self,
        bin_dir: Path,
        base_dir: Path | None = None,
        *,
        port: int | None = None,
        password: str | None = None,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.bin_dir = Path(bin_dir).resolve()
        if not is_server_bin_dir(self.bin_dir):
            raise ToolError(f"{self.bin_dir} lacks one of {', '.join(SERVER_PROGRAMS)}")
        self.major = bin_dir_major(self.bin_dir)
        try:
            self._user: OsUser | None = server_user()
        except NoServerUser as exc:
            raise ToolError(str(exc)) from None

        if base_dir is None:
            base_dir = Path(tempfile.mkdtemp(prefix="lifeboat-pg-"))
            base_dir.chmod(0o755)
        self.base_dir = Path(base_dir).absolute()
        self.data_dir = self.base_dir / "data"
        self.log_file = self.base_dir / "server.log"

        self._own_socket_dir = False
        socket_dir = self.base_dir / "sock"
        if len(str(socket_dir)) > _MAX_SOCKET_DIR_LEN:
            socket_dir = Path(tempfile.mkdtemp(prefix="lifeboat-sock-"))
            self._own_socket_dir = True
        self.socket_dir = socket_dir

        self._auto_port = port is None
        self.port = port if port is not None else free_port()
        self.password = password
        self.settings: dict[str, str] = dict(settings or {})

    def __repr__(self) -> str:
        return f"ScratchCluster(pg{self.major}, port={self.port}, base_dir={self.base_dir})"

    # ------------------------------------------------------------------ process helpers

    def _server_env(self) -> dict[str, str]:
        """Ours without PG* variables: a PGPORT or PGDATA of the caller's must not steer
        the scratch server."""
        return {k: v for k, v in os.environ.items() if not k.startswith("PG")}

    def _pg_ctl(self) -> PgCtl:
        return PgCtl(self.bin_dir, self.data_dir, self._user, self._server_env(), self.base_dir)

    def _chown(self, path: Path) -> None:
        if self._user is not None:
            self._user.chown(path)

    def _prepare_dirs(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.base_dir.chmod(0o755)
        self._chown(self.base_dir)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.chmod(0o755)
        self._chown(self.socket_dir)
        user = self._user
        for path in (self.base_dir, self.bin_dir / "postgres"):
            if user is not None and not user.can_reach(path):
                raise UsageError(
                    f"the {user.name!r} OS user cannot reach {path}; use a directory outside "
                    "private (0700) parents such as /root or /tmp/pytest-of-root"
                )

    # ------------------------------------------------------------------------ lifecycle

    def init(self, *, sync: bool = True, checksums: bool = True) -> None:
        """Create the data directory with ``initdb`` and write the configuration;
        `sync=False` does not wait for the files to reach the disk (a throw-away cluster),
        `checksums=False` leaves data checksums off."""
        if (self.data_dir / "PG_VERSION").exists():
            raise UsageError(f"{self.data_dir} already holds a cluster")
        self._prepare_dirs()

        args = [
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            self.superuser,
            "-E",
            "UTF8",
            "--locale",
            _default_locale(),
            *(["--data-checksums"] if checksums else []),
            "--auth-local=trust",
            "--auth-host=" + ("scram-sha-256" if self.password is not None else "trust"),
        ]
        if self.major >= 13:
            args.append("--no-instructions")
        if not sync:
            args.append("--no-sync")

        pwfile: Path | None = None
        try:
            if self.password is not None:
                if "\n" in self.password or "\r" in self.password:
                    raise UsageError("the scratch cluster's password must not contain newlines")
                fd, name = tempfile.mkstemp(prefix="pwfile-", dir=self.base_dir)
                pwfile = Path(name)
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(self.password + "\n")
                self._chown(pwfile)
                args.append(f"--pwfile={pwfile}")
            proc = run_as(self._user, args, env=self._server_env(), cwd=self.base_dir, timeout=300)
        finally:
            if pwfile is not None:
                pwfile.unlink(missing_ok=True)
        if proc.returncode != 0:
            raise ToolError(f"initdb failed for {self!r}: {_tool_message(proc, 'exit')}")
        self.write_config()

    def write_config(self) -> None:
        """(Re)write the managed settings file ``lifeboat.conf`` in the data directory.

        ``postgresql.conf`` includes it at the end, so these settings win over the
        defaults (``ALTER SYSTEM`` values in ``postgresql.auto.conf`` still win over them).
        Call this after replacing the data directory (e.g. with a restored base backup)
        to point the cluster at this instance's port and socket directory again.
        """
        values: dict[str, str] = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "wal_level": "replica",
            "max_wal_senders": "10",
        }
        values.update(self.settings)
        lines = ["# Managed by lifeboat.postgres.instance; rewritten on every start."]
        lines += setting_lines(values)
        managed = self.data_dir / "lifeboat.conf"
        managed.write_text("\n".join(lines) + "\n", encoding="utf-8")
        managed.chmod(0o600)
        self._chown(managed)

        main_conf = self.data_dir / "postgresql.conf"
        include = "include 'lifeboat.conf'"
        text = main_conf.read_text(encoding="utf-8") if main_conf.exists() else ""
        if include not in text.splitlines():
            if text and not text.endswith("\n"):
                text += "\n"
            main_conf.write_text(text + include + "\n", encoding="utf-8")
            self._chown(main_conf)

    def is_running(self) -> bool:
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        return self._pg_ctl().is_running()

    def start(self) -> None:
        """Start the server (``pg_ctl start -w``); a ToolError with the log's reason, the
        log's last lines logged."""
        if not (self.data_dir / "PG_VERSION").exists():
            raise UsageError(f"{self.data_dir} holds no cluster; call init() first")

        def attempt(log_offset: int) -> None:
            proc = self._pg_ctl().start(self.log_file, wait_seconds=120, timeout=180)
            if proc.returncode != 0:
                new_log = log_since(self.log_file, log_offset)
                reason = startup_failure(new_log) or _tool_message(proc, "pg_ctl exit")
                raise ToolError(
                    f"PostgreSQL {self.major} failed to start ({self!r}): {reason} "
                    f"(see {self.log_file})"
                )

        self._on_a_free_port(attempt)
        _LIVE.add(self)

    def recover(
        self, *, action: Action = "promote", has_target: bool = False, timeout: float = 600
    ) -> tuple[str | None, str | None]:
        """Start a data directory a restore laid out in data_dir (its recovery settings
        written, without --start) on this instance's port and socket, and wait until
        recovery ends, pauses or shuts down at its target: the last replayed commit's time
        and LSN, as postgres/server.py's start_and_wait gives them."""
        if not (self.data_dir / RECOVERY_SIGNAL).exists():
            raise UsageError(f"{self.data_dir} holds no restored cluster waiting for recovery")

        def attempt(log_offset: int) -> tuple[str | None, str | None]:
            return start_and_wait(
                self._pg_ctl(),
                self.log_file,
                action=action,
                has_target=has_target,
                port=self.port,
                timeout=timeout,
                stopped=self._stopped,
            )

        replayed = self._on_a_free_port(attempt)
        if action != "shutdown":
            _LIVE.add(self)
        return replayed

    def _on_a_free_port(self, attempt: Callable[[int], T]) -> T:
        """Write the configuration and run attempt(offset of the log before it) to start the
        server on self.port. A port another program took between picking and binding it is
        replaced and the start tried again (a restored cluster's recovery.signal is still
        there then); any other failure has the log's last lines logged and is raised."""
        self._prepare_dirs()
        attempts = 3 if self._auto_port else 1
        for number in range(1, attempts + 1):
            self.write_config()
            log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
            try:
                return attempt(log_offset)
            except ToolError:
                if port_taken(log_since(self.log_file, log_offset)) and number < attempts:
                    self.port = free_port()
                    continue
                log_last_lines(self.log_file, _LOG_TAIL_LINES)
                raise
        raise ToolError(f"{self!r} found no free port in {attempts} attempts")

    def _stopped(self, what: str) -> ToolError:
        reason = stop_reason(self.log_file)
        return ToolError(
            f"the scratch cluster {self!r} {what}"
            + (f": {reason}" if reason else "")
            + f" (see {self.log_file})"
        )

    def keep_running(self) -> None:
        """Leave the server running when this process exits (the exit hook stops the
        others): the caller has told the user where it runs."""
        _LIVE.discard(self)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``pg_ctl stop -m mode``); a no-op when it is not running."""
        _LIVE.discard(self)
        if not (self.data_dir / "postmaster.pid").exists():
            return
        pid = postmaster_pid(self.data_dir)
        if mode == "immediate" and pid is not None:
            with contextlib.suppress(PermissionError):
                if quit_now(pid, 180):
                    return
        proc = self._pg_ctl().stop(mode, timeout=180)
        if proc.returncode != 0 and self.is_running():
            raise ToolError(f"pg_ctl stop failed for {self!r}: {_tool_message(proc, 'exit')}")

    def destroy(self) -> None:
        """Stop the server and delete ``base_dir`` (and a separate socket dir, if any).
        The stop is immediate: a shutdown checkpoint, or the archiver's last attempts,
        would only delay removing what is thrown away."""
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.base_dir, ignore_errors=True)
            if self._own_socket_dir:
                shutil.rmtree(self.socket_dir, ignore_errors=True)

    # --------------------------------------------------------------------------- clients

    def dsn(
        self, dbname: str = "postgres", user: str | None = None, *, with_password: bool = True
    ) -> str:
        """libpq URI for this cluster over TCP (with the superuser's password, unless
        with_password is off)."""
        user = user or self.superuser
        auth = urllib.parse.quote(user, safe="")
        if self.password is not None and user == self.superuser and with_password:
            auth += ":" + urllib.parse.quote(self.password, safe="")
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{urllib.parse.quote(dbname, safe='')}"

    def client_env(self) -> dict[str, str]:
        """Environment for client programs (psql, pg_dump...) run against this cluster as
        its superuser: the password travels here, never on their command line."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["PGCONNECT_TIMEOUT"] = "30"
        if self.password is not None:
            env["PGPASSWORD"] = self.password
        return env

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run *sql* with ``psql -X -At -v ON_ERROR_STOP=1`` and return its output.

        Statements are fed on stdin, so several statements (including ones that cannot
        run in a transaction block, like ``CREATE DATABASE``) may be given at once.  The
        trailing newline of the output is removed.
        """
        proc = subprocess.run(
            [
                str(self.bin_dir / "psql"),
                "-X",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                self.dsn(dbname, with_password=False),
                "-f",
                "-",
            ],
            input=sql,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            env=self.client_env(),
        )
        if proc.returncode != 0:
            raise DatabaseError(
                f"psql failed on {self!r} db {dbname!r}: {_tool_message(proc, 'exit')}"
            )
        return proc.stdout.removesuffix("\n")

    # -------------------------------------------------------------------- context manager

    def __enter__(self) -> ScratchCluster:
        try:
            self.init()
            self.start()
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.destroy()


def _tool_message(proc: subprocess.CompletedProcess[str], what: str) -> str:
    """A failed program's own word for a one-line error (psql follows its ERROR line with
    the statement and a caret), else `what` and its exit code."""
    lines = f"{proc.stderr or ''}\n{proc.stdout or ''}".splitlines()
    return error_line(lines) or f"{what} {proc.returncode}"
