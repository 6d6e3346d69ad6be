"""Physical base backups with pg_basebackup, streamed as one tar archive."""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from lifeboat.errors import LifeboatError, ToolError
from lifeboat.pipeline.stream import ProcessOutput
from lifeboat.postgres import wal
from lifeboat.postgres.binaries import PgTools
from lifeboat.postgres.conn import PgEndpoint

BASE_FORMAT = "pg_basebackup-tar"


@dataclass(frozen=True)
class ClusterFacts:
    version_num: int
    segment_size: int
    data_checksums: bool
    archive_mode: str
    archive_command: str
    extra_tablespaces: list[str]
    summarize_wal: bool


def cluster_facts(conn: psycopg.Connection[Any]) -> ClusterFacts:
    def setting(name: str) -> str:
        row = conn.execute("SELECT current_setting(%s)", (name,)).fetchone()
        return str(row[0]) if row else ""

    spaces = [
        str(r[0])
        for r in conn.execute(
            "SELECT spcname FROM pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global')"
        )
    ]
    version_num = int(setting("server_version_num"))
    return ClusterFacts(
        version_num=version_num,
        segment_size=int(setting("wal_segment_size"))
        if setting("wal_segment_size").isdigit()
        else _size(setting("wal_segment_size")),
        data_checksums=setting("data_checksums") == "on",
        archive_mode=setting("archive_mode"),
        archive_command=setting("archive_command"),
        extra_tablespaces=spaces,
        summarize_wal=version_num >= 170000 and setting("summarize_wal") == "on",
    )


def _size(text: str) -> int:
    match = re.match(r"^(\d+)\s*(kB|MB|GB)?$", text.strip())
    if not match:
        raise LifeboatError(f"cannot read wal_segment_size {text!r}")
    factor = {"kB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, None: 1}[match[2]]
    return int(match[1]) * factor


class ArchivingNotReadyError(LifeboatError):
    """WAL archiving is off or not working, so a base backup cannot be made consistent."""


class ArchiveWaitWatchdog:
    """The server ends a base backup only once its last WAL segment is archived, and waits
    for that forever. This watches for that wait and stops the backup after `timeout`
    seconds with the archiver's own last failure as the reason."""

    def __init__(
        self, endpoint: PgEndpoint, label: str, stream: BaseBackupStream, timeout: float
    ) -> None:
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


class BaseBackupStream(ProcessOutput):
    """pg_basebackup's tar stream on stdout; backup_manifest is its last member."""

    def __init__(
        self, tools: PgTools, endpoint: PgEndpoint, label: str, parent_manifest: Path | None = None
    ) -> None:
        command = [
            tools.path("pg_basebackup"),
            "--dbname",
            endpoint.conninfo(),
            "--pgdata=-",
            "--format=tar",
            "--wal-method=none",  # the WAL comes from the archive, checked before commit
            "--checkpoint=fast",
            "--manifest-checksums=SHA256",
            f"--label={label}",
            "--verbose",
            "--no-password",
        ]
        if parent_manifest is not None:
            command.append(f"--incremental={parent_manifest}")
        super().__init__(command, endpoint.env(), "pg_basebackup")

    def wal_range(self, backup_manifest: bytes | None) -> WalRange:
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
