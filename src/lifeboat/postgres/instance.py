"""Throw-away PostgreSQL clusters for tests, the demo and restore drills.

A :class:`ScratchCluster` owns a base directory holding the data directory, the server
log and the unix socket directory.  It listens on 127.0.0.1 on a free TCP port and is
configured for physical backups (``wal_level=replica``, WAL senders enabled).

PostgreSQL refuses to run as root, so when this process is root the server programs
(``initdb``, ``pg_ctl``, ``postgres``) run as the ``postgres`` OS user; client programs
such as ``psql`` run as the current user and connect over TCP.

Binary directories are discovered by :func:`find_bin_dirs`: Debian-style
``/usr/lib/postgresql/<major>/bin``, the relocatable PostgreSQL 17 build unpacked by
``scripts/setup.sh`` into ``<repo>/.cache/pg17``, and any directory listed in the
``LIFEBOAT_PG_BIN_DIRS`` environment variable (``os.pathsep``-separated).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

__all__ = [
    "BIN_DIRS_ENV",
    "SERVER_PROGRAMS",
    "ScratchCluster",
    "bin_dir_major",
    "find_bin_dirs",
    "repo_root",
]

BIN_DIRS_ENV = "LIFEBOAT_PG_BIN_DIRS"
SERVER_PROGRAMS = ("initdb", "pg_ctl", "postgres")
SYSTEM_GLOB_ROOT = Path("/usr/lib/postgresql")
OS_USER = "postgres"

_VERSION_RE = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")
# Unix socket paths are limited to ~107 bytes; keep a margin for ".s.PGSQL.NNNNN".
_MAX_SOCKET_DIR_LEN = 90
_LOG_TAIL_LINES = 40


# --------------------------------------------------------------------------- discovery


def repo_root() -> Path | None:
    """The source checkout this module lives in (``src/lifeboat/postgres/``), if any."""
    candidate = Path(__file__).resolve().parents[3]
    if (candidate / "pyproject.toml").is_file():
        return candidate
    return None


def _is_bin_dir(path: Path) -> bool:
    return all(os.access(path / prog, os.X_OK) for prog in SERVER_PROGRAMS)


def _candidate_bin_dirs() -> list[Path]:
    """Candidates in order of preference (earlier wins when two share a major)."""
    candidates: list[Path] = []
    for entry in os.environ.get(BIN_DIRS_ENV, "").split(os.pathsep):
        if entry.strip():
            candidates.append(Path(entry.strip()).expanduser())
    if SYSTEM_GLOB_ROOT.is_dir():
        candidates.extend(sorted(SYSTEM_GLOB_ROOT.glob("*/bin")))
    root = repo_root()
    if root is not None:
        cache = root / ".cache" / "pg17"
        candidates.append(cache / "bin")
        candidates.extend(sorted(cache.glob("*/bin")))
    return candidates


@functools.cache
def _major_of(resolved_bin_dir: Path) -> int:
    postgres = resolved_bin_dir / "postgres"
    proc = subprocess.run(
        [str(postgres), "--version"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    match = _VERSION_RE.search(proc.stdout)
    if proc.returncode != 0 or match is None:
        raise RuntimeError(
            f"cannot determine PostgreSQL version of {postgres}: "
            f"exit {proc.returncode}, output {proc.stdout.strip()!r} {proc.stderr.strip()!r}"
        )
    return int(match.group(1))


def bin_dir_major(bin_dir: Path) -> int:
    """Major version (e.g. 15, 17) of the server in *bin_dir*, from ``postgres --version``."""
    return _major_of(Path(bin_dir).resolve())


def find_bin_dirs() -> list[Path]:
    """Every usable PostgreSQL bin directory, one per major version, sorted by major.

    A directory qualifies when it holds executable ``initdb``, ``pg_ctl`` and ``postgres``.
    When several directories provide the same major version, the first one found wins:
    ``LIFEBOAT_PG_BIN_DIRS`` entries, then ``/usr/lib/postgresql/*/bin``, then the
    repository's ``.cache/pg17``.
    """
    by_major: dict[int, Path] = {}
    seen: set[Path] = set()
    for candidate in _candidate_bin_dirs():
        if not candidate.is_dir() or not _is_bin_dir(candidate):
            continue
        resolved = candidate.resolve()
        if resolved in seen:
            continue
        seen.add(resolved)
        try:
            major = _major_of(resolved)
        except (OSError, RuntimeError, subprocess.TimeoutExpired):
            continue
        by_major.setdefault(major, resolved)
    return [by_major[major] for major in sorted(by_major)]


# ------------------------------------------------------------------------ OS helpers


@dataclass(frozen=True)
class _RunAs:
    """Identity the server programs run under (``None`` fields: the current user)."""

    uid: int | None = None
    gid: int | None = None
    groups: tuple[int, ...] = ()
    home: str | None = None
    name: str | None = None

    @property
    def switches(self) -> bool:
        return self.uid is not None


def _server_identity() -> _RunAs:
    if os.geteuid() != 0:
        return _RunAs()
    try:
        entry = pwd.getpwnam(OS_USER)
    except KeyError as exc:
        raise RuntimeError(
            f"running as root but there is no {OS_USER!r} OS user to run PostgreSQL as"
        ) from exc
    groups = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
    home = entry.pw_dir if os.path.isdir(entry.pw_dir) else "/"
    return _RunAs(entry.pw_uid, entry.pw_gid, groups, home, entry.pw_name)


def _free_port() -> int:
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


def _reachable_by(path: Path, ident: _RunAs) -> bool:
    """Whether *ident* can traverse every ancestor of *path* (a cheap mode-bit check)."""
    if not ident.switches:
        return True
    for ancestor in [path, *path.parents]:
        try:
            st = ancestor.stat()
        except FileNotFoundError:
            continue
        if st.st_uid == ident.uid:
            ok = bool(st.st_mode & 0o100)
        elif st.st_gid in ident.groups:
            ok = bool(st.st_mode & 0o010)
        else:
            ok = bool(st.st_mode & 0o001)
        if not ok:
            return False
    return True


def _quote_conf(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def log_tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    """The last lines of a server log, for an error message."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:])


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
        if not _is_bin_dir(self.bin_dir):
            raise ValueError(f"{self.bin_dir} lacks one of {', '.join(SERVER_PROGRAMS)}")
        self.major = bin_dir_major(self.bin_dir)
        self._ident = _server_identity()

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
        self.port = port if port is not None else _free_port()
        self.password = password
        self.settings: dict[str, str] = dict(settings or {})

    def __repr__(self) -> str:
        return f"ScratchCluster(pg{self.major}, port={self.port}, base_dir={self.base_dir})"

    # ------------------------------------------------------------------ process helpers

    def _server_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        if self._ident.switches:
            assert self._ident.home is not None and self._ident.name is not None
            env.update(HOME=self._ident.home, USER=self._ident.name, LOGNAME=self._ident.name)
        return env

    def _run_server_tool(
        self, args: Sequence[str], *, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run a server-side program (as ``postgres`` when we are root)."""
        ident = self._ident
        return subprocess.run(
            list(args),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=str(self.base_dir),
            env=self._server_env(),
            user=ident.uid,
            group=ident.gid,
            extra_groups=list(ident.groups) if ident.switches else None,
        )

    def _chown(self, path: Path) -> None:
        if self._ident.switches:
            assert self._ident.uid is not None and self._ident.gid is not None
            os.chown(path, self._ident.uid, self._ident.gid)

    def _prepare_dirs(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.base_dir.chmod(0o755)
        self._chown(self.base_dir)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.chmod(0o755)
        self._chown(self.socket_dir)
        for path in (self.base_dir, self.bin_dir / "postgres"):
            if not _reachable_by(path, self._ident):
                raise RuntimeError(
                    f"the {OS_USER!r} OS user cannot reach {path}; use a directory outside "
                    "private (0700) parents such as /root or /tmp/pytest-of-root"
                )

    # ------------------------------------------------------------------------ lifecycle

    def init(self) -> None:
        """Create the data directory with ``initdb`` and write the configuration."""
        if (self.data_dir / "PG_VERSION").exists():
            raise RuntimeError(f"{self.data_dir} already holds a cluster")
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
            "--data-checksums",
            "--auth-local=trust",
            "--auth-host=" + ("scram-sha-256" if self.password is not None else "trust"),
        ]
        if self.major >= 13:
            args.append("--no-instructions")

        pwfile: Path | None = None
        try:
            if self.password is not None:
                if "\n" in self.password or "\r" in self.password:
                    raise ValueError("password must not contain newlines")
                fd, name = tempfile.mkstemp(prefix="pwfile-", dir=self.base_dir)
                pwfile = Path(name)
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(self.password + "\n")
                self._chown(pwfile)
                args.append(f"--pwfile={pwfile}")
            proc = self._run_server_tool(args)
        finally:
            if pwfile is not None:
                pwfile.unlink(missing_ok=True)
        if proc.returncode != 0:
            raise RuntimeError(
                f"initdb failed for {self!r} (exit {proc.returncode}):\n"
                f"{proc.stdout}\n{proc.stderr}".rstrip()
            )
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
        lines += [f"{key} = {_quote_conf(value)}" for key, value in values.items()]
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
        proc = self._run_server_tool(
            [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "status"], timeout=60
        )
        return proc.returncode == 0

    def start(self) -> None:
        """Start the server (``pg_ctl start -w``); raise ``RuntimeError`` with the log tail."""
        if not (self.data_dir / "PG_VERSION").exists():
            raise RuntimeError(f"{self.data_dir} holds no cluster; call init() first")
        self._prepare_dirs()
        attempts = 3 if self._auto_port else 1
        for attempt in range(attempts):
            self.write_config()
            log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
            proc = self._run_server_tool(
                [
                    str(self.bin_dir / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log_file),
                    "-w",
                    "-t",
                    "120",
                    "start",
                ],
                timeout=180,
            )
            if proc.returncode == 0:
                _LIVE.add(self)
                return
            new_log = self._log_since(log_offset)
            port_clash = "could not bind" in new_log or "already in use" in new_log
            if port_clash and attempt + 1 < attempts:
                self.port = _free_port()
                continue
            raise RuntimeError(
                f"PostgreSQL {self.major} failed to start ({self!r}), pg_ctl exit "
                f"{proc.returncode}:\n{proc.stdout}{proc.stderr}\n"
                f"--- last lines of {self.log_file} ---\n{log_tail(self.log_file)}"
            )

    def _log_since(self, offset: int) -> str:
        try:
            with self.log_file.open("rb") as fh:
                fh.seek(offset)
                return fh.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``pg_ctl stop -m mode``); a no-op when it is not running."""
        _LIVE.discard(self)
        if not (self.data_dir / "postmaster.pid").exists():
            return
        proc = self._run_server_tool(
            [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop"],
            timeout=180,
        )
        if proc.returncode != 0 and self.is_running():
            raise RuntimeError(
                f"pg_ctl stop failed for {self!r} (exit {proc.returncode}):\n"
                f"{proc.stdout}{proc.stderr}"
            )

    def destroy(self) -> None:
        """Stop the server and delete ``base_dir`` (and a separate socket dir, if any)."""
        try:
            self.stop()
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
            raise RuntimeError(
                f"psql failed on {self!r} db {dbname!r} (exit {proc.returncode}): "
                f"{proc.stderr.strip()}"
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
