"""The scratch folder a restore drill works in, removed afterwards whatever happens; and the
janitor that removes what a killed drill left behind.

A drill starts a PostgreSQL server in its folder. pg_ctl detaches that server, so a drill
killed with SIGKILL leaves it running, holding a port and the folder's disk space. Each
folder therefore carries an owner file naming the process that made it (pid, its start
time and the boot, so that a reused pid is not mistaken for the owner, and the host) and
the servers started in it. Every new workspace first looks at the folders of the same root
whose owner is gone: it stops their servers and removes them.

A server is signalled only once its postmaster is seen serving the noted data directory
(/proc/PID/cwd or its command line): a postmaster.pid left by a crash may name a pid that
another process, perhaps a production server's backend, has taken since. pg_ctl would
signal that pid without looking."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from lifeboat.errors import UsageError
from lifeboat.postgres.server import postmaster_pid, quit_now
from lifeboat.util.clock import process_start_ticks
from lifeboat.util.fs import write_atomically
from lifeboat.util.osuser import NoServerUser, OsUser, server_user
from lifeboat.util.proc import boot_id, pid_alive

__all__ = ["DrillWorkspace", "clean_leftovers"]

log = logging.getLogger(__name__)

PREFIX = "lifeboat-drill-"
OWNER_FILE = "owner.json"
# a folder without an owner file is a drill killed between mkdir and writing it, or one
# being made right now: only an old one is a leftover
ORPHAN_AFTER_SECONDS = 3600
# how long an immediate stop may take before the folder is left for the next drill
STOP_SECONDS = 60
# ScratchCluster's socket folder when its own path is too long for a unix socket
_SOCKET_DIR_PREFIX = "lifeboat-sock-"
_PROC = Path("/proc/self/stat")
_SOCKET_SETTING = re.compile(r"^unix_socket_directories = '(.*)'$", re.MULTILINE)


@dataclass(frozen=True)
class NotedServer:
    """A server started in a workspace: stopped when its drill ends or dies."""

    data_dir: str
    bin_dir: str


@dataclass
class Owner:
    """Who made a workspace, as its owner file tells."""

    pid: int
    started: int | None  # clock ticks after boot, /proc/PID/stat
    boot: str | None
    host: str
    created_at: str
    servers: list[NotedServer] = field(default_factory=list)

    @classmethod
    def of_this_process(cls) -> Owner:
        pid = os.getpid()
        created = datetime.now(UTC).isoformat(timespec="seconds")
        return cls(pid, process_start_ticks(pid), boot_id(), socket.gethostname(), created)

    @classmethod
    def read(cls, folder: Path) -> Owner | None:
        """The owner file's content; None when it is absent or not one (a folder this
        user cannot read raises PermissionError)."""
        try:
            data = json.loads((folder / OWNER_FILE).read_text(encoding="utf-8"))
            servers = [NotedServer(str(s["data_dir"]), str(s["bin_dir"])) for s in data["servers"]]
            return cls(
                int(data["pid"]),
                None if data["started"] is None else int(data["started"]),
                None if data["boot"] is None else str(data["boot"]),
                str(data["host"]),
                str(data["created_at"]),
                servers,
            )
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring the unreadable %s in %s: %s", OWNER_FILE, folder, exc)
            return None

    def write(self, folder: Path) -> None:
        write_atomically(folder / OWNER_FILE, json.dumps(asdict(self), indent=2).encode())

    def is_alive(self) -> bool:
        """Whether the process that made the folder still runs (on this host)."""
        if not _PROC.exists():
            return pid_alive(self.pid)  # no start times to tell a reused pid by
        started = process_start_ticks(self.pid)
        if started is None:
            return False
        if self.boot is not None and self.boot != boot_id():
            return False
        return self.started is None or started == self.started


class DrillWorkspace:
    """A fresh private folder under root (default: the system's temporary folder) for one
    drill, reachable by the server's OS user. On entry, the leftovers of killed drills
    under root are removed first; on exit, every noted server still running is stopped
    and the folder removed, whatever happened."""

    def __init__(self, root: Path | None, label: str) -> None:
        self.root = Path(root if root is not None else tempfile.gettempdir()).absolute()
        # the label names the folder: keep it short and harmless in a path
        self.label = re.sub(r"[^A-Za-z0-9_.-]+", "_", label)[:40] or "drill"
        self._path: Path | None = None
        self._owner = Owner.of_this_process()
        self._user = _server_user()

    @property
    def path(self) -> Path:
        if self._path is None:
            raise RuntimeError("the drill workspace is used outside its `with` block")
        return self._path

    def note_server(self, data_dir: Path, bin_dir: Path) -> None:
        """Remember a server started (or about to be) in this workspace: stopped on exit,
        and by the next drill if this process dies first."""
        self._owner.servers.append(NotedServer(str(data_dir.absolute()), str(bin_dir.absolute())))
        self._owner.write(self.path)

    def __enter__(self) -> DrillWorkspace:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create the drill root {self.root}: {exc.strerror}") from None
        clean_leftovers(self.root)
        try:
            path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{self.label}-", dir=self.root))
        except OSError as exc:
            raise UsageError(f"cannot create a folder in {self.root}: {exc.strerror}") from None
        try:
            self._owner.write(path)
            if self._user is not None:
                # mode 0700 stays: private to the server's user (and root)
                self._user.chown(path)
                if not self._user.can_reach(path):
                    raise UsageError(
                        f"the {self._user.name!r} OS user cannot reach {path}: make the drill "
                        f"folder {self.root} and its parents searchable by it (mode o+x), or "
                        "set [sources.NAME.drill] work_dir"
                    )
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        self._path = path
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        path, self._path = self.path, None
        for line in _remove(path, self._owner.servers):
            log.info("%s", line)


def clean_leftovers(root: Path) -> list[str]:
    """Stop the servers and remove the folders of drills under root whose process is gone
    (and folders without an owner file older than an hour); one line per thing done, each
    logged. A folder of a live process, of another host or that this user cannot read is
    left alone."""
    done: list[str] = []
    try:
        folders = sorted(p for p in root.glob(f"{PREFIX}*") if p.is_dir() and not p.is_symlink())
    except OSError as exc:
        log.warning("cannot look for drill leftovers in %s: %s", root, exc.strerror)
        return done
    for folder in folders:
        try:
            owner = Owner.read(folder)
            if owner is None:
                age = time.time() - folder.stat().st_mtime
                if age < ORPHAN_AFTER_SECONDS:
                    continue
                servers: list[NotedServer] = []
                why = "no owner file, older than an hour"
            elif owner.host != socket.gethostname():
                continue  # its process is out of sight: it may well run
            elif owner.is_alive():
                continue
            else:
                servers = owner.servers
                why = f"its drill (pid {owner.pid}, {owner.created_at}) is gone"
        except OSError as exc:
            log.debug("leaving %s alone: %s", folder, exc)
            continue
        lines = _remove(folder, servers)
        lines.append(f"removed the drill leftover {folder}: {why}")
        if folder.exists():
            lines[-1] = f"left the drill leftover {folder} in place: it could not be removed"
        for line in lines:
            log.info("%s", line)
        done += lines
    return done


def _remove(folder: Path, servers: list[NotedServer]) -> list[str]:
    """Stop the servers still running, remove their socket folders kept elsewhere and the
    folder; what was done. A server that would not stop keeps the folder."""
    done: list[str] = []
    all_stopped = True
    for server in servers:
        outcome = _stop(server)
        if outcome is not None:
            done.append(outcome[0])
            if not outcome[1]:
                all_stopped = False
                continue
        socket_dir = _separate_socket_dir(Path(server.data_dir), folder)
        if socket_dir is not None:
            shutil.rmtree(socket_dir, ignore_errors=True)
            done.append(f"removed the socket folder {socket_dir}")
    if all_stopped:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        log.warning("left %s in place: a server in it still runs", folder)
    return done


def _stop(server: NotedServer) -> tuple[str, bool] | None:
    """Stop the server if it still runs: what was done, and whether it is gone. None when
    no server runs there."""
    data_dir = Path(server.data_dir)
    pid = postmaster_pid(data_dir)
    if pid is None or process_start_ticks(pid) is None:
        return None
    if not _serves(pid, data_dir):
        return f"left pid {pid} alone: it does not serve {data_dir} (a stale postmaster.pid)", True
    try:
        gone = quit_now(pid, STOP_SECONDS)
    except PermissionError:
        return f"could not stop the server of {data_dir} (pid {pid}): not allowed to", False
    if not gone:
        return f"could not stop the server of {data_dir} (pid {pid}) with SIGQUIT", False
    return f"stopped the server of {data_dir} (pid {pid}) with SIGQUIT", True


def _serves(pid: int, data_dir: Path) -> bool:
    """Whether process pid is a server of data_dir: the postmaster works in its data
    directory, and pg_ctl starts it with -D data_dir."""
    with contextlib.suppress(OSError):
        if Path(os.readlink(f"/proc/{pid}/cwd")) == data_dir.resolve():
            return True
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    spellings = {os.fsencode(str(data_dir)), os.fsencode(str(data_dir.resolve()))}
    return not spellings.isdisjoint(arguments)


def _separate_socket_dir(data_dir: Path, folder: Path) -> Path | None:
    """The socket folder ScratchCluster made outside the workspace for a data directory
    whose own path was too long for a unix socket (its lifeboat.conf names it)."""
    try:
        conf = (data_dir / "lifeboat.conf").read_text(encoding="utf-8")
    except OSError:
        return None
    found = _SOCKET_SETTING.search(conf)
    if found is None:
        return None
    place = Path(found[1].replace("''", "'").replace("\\\\", "\\"))
    if not place.name.startswith(_SOCKET_DIR_PREFIX) or place.is_relative_to(folder):
        return None
    # a restored data directory may still hold its source's lifeboat.conf: never take a
    # running server's socket away
    return place if place.is_dir() and not _in_use(place) else None


def _in_use(socket_dir: Path) -> bool:
    """Whether a running server keeps its socket in socket_dir (its lock file names it),
    or the folder holds anything else than servers' sockets."""
    try:
        for entry in socket_dir.iterdir():
            if not entry.name.startswith(".s.PGSQL."):
                return True
            if entry.name.endswith(".lock"):
                pid = int(entry.read_text().split("\n", 1)[0])
                if process_start_ticks(pid) is not None:
                    return True
    except (OSError, ValueError):
        return True
    return False


def _server_user() -> OsUser | None:
    try:
        return server_user()
    except NoServerUser:
        return None  # then no server can have been started as it either
