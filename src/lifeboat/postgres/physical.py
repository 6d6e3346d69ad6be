"""Physical base backups with pg_basebackup, streamed as one tar archive."""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lifeboat.errors import LifeboatError, ToolError
from lifeboat.pipeline.stream import ProcessOutput
from lifeboat.postgres import wal
from lifeboat.postgres.binaries import PgTools
from lifeboat.postgres.conn import PgEndpoint

if TYPE_CHECKING:
    import psycopg

BASE_FORMAT = "pg_basebackup-tar"
TABLESPACE_FORMAT = "pg_basebackup-tablespace-tar"


@dataclass(frozen=True)
class Tablespace:
    oid: int
    name: str
    location: str


@dataclass(frozen=True)
class ClusterFacts:
    version_num: int
    segment_size: int
    data_checksums: bool
    archive_mode: str
    archive_command: str
    extra_tablespaces: list[Tablespace]
    summarize_wal: bool


def cluster_facts(conn: psycopg.Connection[Any]) -> ClusterFacts:
    def setting(name: str) -> str:
        row = conn.execute("SELECT current_setting(%s)", (name,)).fetchone()
        return str(row[0]) if row else ""

    spaces = [
        Tablespace(int(r[0]), str(r[1]), str(r[2]))
        for r in conn.execute(
            "SELECT oid, spcname, pg_tablespace_location(oid) FROM pg_tablespace "
            "WHERE spcname NOT IN ('pg_default', 'pg_global') ORDER BY oid"
        )
    ]
    version_num = int(setting("server_version_num"))
    return ClusterFacts(
        version_num=version_num,
        segment_size=wal_segment_size(conn),
        data_checksums=setting("data_checksums") == "on",
        archive_mode=setting("archive_mode"),
        archive_command=setting("archive_command"),
        extra_tablespaces=spaces,
        summarize_wal=version_num >= 170000 and setting("summarize_wal") == "on",
    )


def wal_segment_size(conn: psycopg.Connection[Any]) -> int:
    """The server's WAL segment size in bytes (`current_setting` gives e.g. `16MB`)."""
    row = conn.execute("SELECT current_setting('wal_segment_size')").fetchone()
    text = str(row[0]) if row else ""
    return int(text) if text.isdigit() else _size(text)


def _size(text: str) -> int:
    match = re.match(r"^(\d+)\s*(kB|MB|GB)?$", text.strip())
    if not match:
        raise LifeboatError(f"cannot read wal_segment_size {text!r}")
    factor = {"kB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, None: 1}[match[2]]
    return int(match[1]) * factor


class ArchivingNotReadyError(LifeboatError):
    """WAL archiving is off or not working, so a base backup cannot be made consistent."""


class Killable(Protocol):
    def kill(self) -> None: ...


class ArchiveWaitWatchdog:
    """The server ends a base backup only once its last WAL segment is archived, and waits
    for that forever. This watches for that wait and stops the backup after `timeout`
    seconds with the archiver's own last failure as the reason."""

    def __init__(self, endpoint: PgEndpoint, label: str, stream: Killable, timeout: float) -> None:
        self._endpoint = endpoint
        self._label = label
        self._stream = stream
        self._timeout = timeout
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="archive-wait", daemon=True)
        self.reason: str | None = None

    def __enter__(self) -> ArchiveWaitWatchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        waiting_since: float | None = None
        try:
            conn = self._endpoint.connect(autocommit=True)
        except LifeboatError:
            return
        with conn:
            while not self._done.wait(0.5):
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender' "
                    "AND wait_event = 'BackupWaitWalArchive' AND strpos(query, %s) > 0",
                    (self._label,),
                ).fetchone()
                if not row or row[0] == 0:
                    waiting_since = None
                    continue
                waiting_since = waiting_since or time.monotonic()
                if time.monotonic() - waiting_since < self._timeout:
                    continue
                archiver = conn.execute(
                    "SELECT last_failed_wal, last_failed_time::text FROM pg_stat_archiver"
                ).fetchone()
                failed = (
                    f" (last failure: {archiver[0]} at {archiver[1]})"
                    if archiver and archiver[0]
                    else ""
                )
                self.reason = (
                    f"the server waited {self._timeout:.0f} s for WAL to be archived{failed}: "
                    "archive_command is not working, see the server log (`lifeboat check`)"
                )
                self._stream.kill()
                return


@dataclass
class WalRange:
    timeline: int
    start_lsn: int
    stop_lsn: int


def basebackup_command(
    tools: PgTools,
    endpoint: PgEndpoint,
    label: str,
    target: str,
    parent_manifest: Path | None,
    manifest_checksums: str,
) -> list[str]:
    """pg_basebackup writing tar into target: a folder, or - for stdout."""
    command = [
        tools.path("pg_basebackup"),
        "--dbname",
        endpoint.conninfo(),
        f"--pgdata={target}",
        "--format=tar",
        "--wal-method=none",  # the WAL comes from the archive, checked before commit
        "--checkpoint=fast",
        # the server computes these while it sends: SHA-256 costs about a second of CPU
        # per GB on the backup's critical path, CRC32C (PostgreSQL's default) next to none
        f"--manifest-checksums={manifest_checksums}",
        f"--label={label}",
        "--verbose",
        "--no-password",
    ]
    if parent_manifest is not None:
        command.append(f"--incremental={parent_manifest}")
    return command


def wal_range(backup_manifest: bytes | None) -> WalRange:
    """The WAL the backup needs, from the backup_manifest pg_basebackup put in the tar."""
    if not backup_manifest:
        raise ToolError("pg_basebackup's output held no backup_manifest")
    try:
        ranges = json.loads(backup_manifest)["WAL-Ranges"]
        first, last = ranges[0], ranges[-1]
        return WalRange(
            int(last["Timeline"]),
            wal.parse_lsn(first["Start-LSN"]),
            wal.parse_lsn(last["End-LSN"]),
        )
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ToolError(f"cannot read the WAL range from backup_manifest: {exc}") from None


class BaseBackupStream(ProcessOutput):
    """pg_basebackup's tar stream on stdout; backup_manifest is its last member."""

    def __init__(
        self,
        tools: PgTools,
        endpoint: PgEndpoint,
        label: str,
        manifest_checksums: str,
        parent_manifest: Path | None = None,
    ) -> None:
        command = basebackup_command(
            tools, endpoint, label, "-", parent_manifest, manifest_checksums
        )
        super().__init__(command, endpoint.env(), "pg_basebackup")


class BaseBackupToFifos:
    """pg_basebackup of a cluster with extra tablespaces: one tar per tablespace.

    pg_basebackup writes only a single tablespace to stdout; with more it writes
    `<folder>/base.tar` and `<folder>/<oid>.tar`, and refuses a folder that is not empty.
    So it gets a folder that does not exist yet: the moment it creates it (after its
    emptiness check, before it can receive any archive, which needs the server's
    checkpoint first) it is paused, each tar name is made a named pipe, and it resumes.
    Every archive then streams through a pipe: no plaintext file is ever written.
    backup_manifest, metadata only, arrives as a small regular file."""

    def __init__(
        self,
        tools: PgTools,
        endpoint: PgEndpoint,
        label: str,
        folder: Path,
        tablespace_oids: list[int],
        manifest_checksums: str,
        parent_manifest: Path | None = None,
    ) -> None:
        import os
        import signal
        import subprocess

        from lifeboat.util.proc import StderrCollector

        self.folder = folder
        self.archives = ["base.tar", *(f"{oid}.tar" for oid in tablespace_oids)]
        command = basebackup_command(
            tools, endpoint, label, str(folder), parent_manifest, manifest_checksums
        )
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(endpoint.env())
        )
        assert self.process.stderr is not None
        self.stderr = StderrCollector(self.process.stderr)
        self.stderr.start()
        deadline = time.monotonic() + 120
        while not folder.is_dir():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise ToolError(f"pg_basebackup failed: {self._detail()}")
            time.sleep(0.0005)
        os.kill(self.process.pid, signal.SIGSTOP)
        try:
            for name in self.archives:
                os.mkfifo(folder / name, 0o600)
        except FileExistsError:
            self.kill()
            raise ToolError(
                "pg_basebackup started writing before its output could be piped: retry"
            ) from None
        finally:
            os.kill(self.process.pid, signal.SIGCONT)

    def _detail(self) -> str:
        self.stderr.join(timeout=5)
        return self.stderr.error_line() or f"exit {self.process.poll()}"

    def reader(self, archive: str) -> FifoReader:
        return FifoReader(self.folder / archive)

    def finish(self) -> bytes:
        """Wait for pg_basebackup; its backup_manifest, or the reason it failed."""
        returncode = self.process.wait()
        self.release_readers()
        if returncode != 0:
            raise ToolError(f"pg_basebackup failed: {self._detail()}")
        try:
            return (self.folder / "backup_manifest").read_bytes()
        except OSError as exc:
            raise ToolError(f"pg_basebackup wrote no backup_manifest: {exc.strerror}") from None

    def release_readers(self) -> None:
        """A pipe pg_basebackup never opened would keep its reader waiting: open and close
        its writing end so the reader sees the end (and the backup fails as incomplete)."""
        import os

        for name in self.archives:
            try:
                fd = os.open(self.folder / name, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # no reader waiting, or gone
                continue
            os.close(fd)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.release_readers()


class FifoReader:
    """Reads a named pipe, opened on the first read (opening waits for the writer)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: Any = None

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._handle is None:
            self._handle = open(self.path, "rb", buffering=0)  # noqa: SIM115
        data: bytes = self._handle.read(size)
        return data

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
