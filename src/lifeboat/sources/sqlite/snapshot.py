"""A consistent snapshot of a live SQLite database, in a private folder, for a backup to
check and stream.

Where: a private folder (0700, named lifeboat-sqlite-<pid>-<random>) in the system's
temporary folder ($TMPDIR, else /tmp), not beside the database: Lifeboat may only read the
application's folder, and a full copy there could fill the file system the application
writes to. The folder goes whatever happens (an error, Ctrl-C, SIGTERM); one a killed
backup left behind (SIGKILL, a crash) is removed by the next backup, once its process is
gone.

How (backup-api): SQLite's online backup API copies pages in steps of a few MB. A step
holds the database's read lock only while it runs; between steps the application's
writers go on, but a commit by another connection makes SQLite start the copy over. In WAL
mode readers never block writers, so the copy runs in one read transaction (still in steps,
none of them restarting): writers are never held up, the copy always finishes. In rollback
(DELETE, TRUNCATE...) mode a read transaction would hold writers off for the whole copy, so
the copy first runs in steps without one; once it started over more than MAX_RESTARTS
times (the database is written to steadily) it runs once more in one read transaction,
which always finishes, and holds writers off for that one copy's time. vacuum-into:
VACUUM INTO the folder, one read transaction too."""

from __future__ import annotations

import logging
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lifeboat.repo import fetch
from lifeboat.repo.fetch import require_free_space
from lifeboat.sources.sqlite.database import (
    RETRY_SECONDS,
    explain,
    locked,
    open_source,
    pragma,
    read_transaction,
    when_free,
)
from lifeboat.util.proc import interrupt_on_sigterm

log = logging.getLogger(__name__)

FOLDER_PREFIX = "lifeboat-sqlite-"
SNAPSHOT_NAME = "snapshot.db"
# each step of the backup API copies about this much, holding the read lock meanwhile
STEP_BYTES = 4 << 20
# copies started over (another connection committed) before the copy holds writers off
MAX_RESTARTS = 3
# sqlite3_backup_step's answers when the database is locked
_BUSY_STATUSES = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED

Method = Literal["backup-api", "vacuum-into"]


def work_dir() -> Path:
    """Where snapshots (and a drill's or verify's decrypted copies) go: $TMPDIR or /tmp."""
    return Path(tempfile.gettempdir())


def private_folder(parent: Path, what: str) -> AbstractContextManager[Path]:
    """A private folder (repo/fetch.py) named as an SQLite run's."""
    return fetch.private_folder(parent, what, FOLDER_PREFIX)


def stop_on_sigterm() -> AbstractContextManager[None]:
    """SIGTERM stops a backup or restore as Ctrl-C does, so its private folder is removed
    on the way out. Signals can only be handled in the main thread: a run in another one
    (several sources at once) leaves them to whoever runs it, and a folder left by a killed
    process is removed by the next run."""
    if threading.current_thread() is threading.main_thread():
        return interrupt_on_sigterm()
    return nullcontext()


@dataclass(frozen=True)
class Snapshot:
    path: Path
    journal_mode: str  # the source's
    how: str  # how the copy went, for the log


def take(
    source: Path,
    method: Method,
    folder: Path,
    timeout: float,
    on_step: Callable[[int], None] | None = None,
) -> Snapshot:
    """A consistent copy of source in folder/SNAPSHOT_NAME, as method says. on_step is
    told the bytes copied so far after each step of the backup API (they go back to 0
    when SQLite starts the copy over)."""
    target = folder / SNAPSHOT_NAME
    conn = open_source(source)
    try:
        journal_mode, page_size, page_count = when_free(
            source,
            timeout,
            lambda: (
                pragma(conn, "journal_mode"),
                int(pragma(conn, "page_size")),
                int(pragma(conn, "page_count")),
            ),
        )
        size = page_size * page_count
        require_free_space(folder, size, f"the snapshot of {source}")
        if method == "vacuum-into":

            def vacuum() -> None:
                target.unlink(missing_ok=True)  # what a busy attempt began
                conn.execute("VACUUM INTO ?", (str(target),))

            when_free(source, timeout, vacuum)
            how = "VACUUM INTO"
        else:
            copy = _Copy(conn, source, target, page_size, timeout, on_step)
            how = copy.backup_api(journal_mode)
    finally:
        conn.close()
    log.info("snapshot of %s taken (%s, journal mode %s)", source, how, journal_mode)
    return Snapshot(target, journal_mode, how)


class _StartedOver(Exception):
    """The stepped copy restarted too often: the database is written to steadily."""


@dataclass(frozen=True)
class _Copy:
    """A copy of the source through the backup API (see the module's note)."""

    conn: sqlite3.Connection
    source: Path
    target: Path
    page_size: int
    timeout: float
    on_step: Callable[[int], None] | None

    def backup_api(self, journal_mode: str) -> str:
        """Copy, as the journal mode allows; how it went."""
        if journal_mode != "wal":
            try:
                restarts = self.run(MAX_RESTARTS)
                return f"backup API in steps, {restarts} restarts"
            except _StartedOver:
                log.info(
                    "%s: the copy started over more than %d times (steady writes): copying "
                    "it in one read transaction, writers wait meanwhile",
                    self.source,
                    MAX_RESTARTS,
                )
        with read_transaction(self.conn, self.source, self.timeout):
            self.run(None)
        return "backup API in one read transaction"

    def run(self, max_restarts: int | None) -> int:
        """The database into target, STEP_BYTES at a time; how many times it started
        over. Raises _StartedOver beyond max_restarts, and DatabaseError when the
        database stays locked past the timeout."""
        self.target.unlink(missing_ok=True)
        restarts = 0
        remaining_before: int | None = None
        busy_since: float | None = None

        def progress(status: int, remaining: int, total: int) -> None:
            # called after every step, in Python: a pending SIGTERM or Ctrl-C is raised
            # here, which aborts the copy
            nonlocal restarts, remaining_before, busy_since
            if status in _BUSY_STATUSES:
                busy_since = busy_since if busy_since is not None else time.monotonic()
                if time.monotonic() - busy_since >= self.timeout:
                    raise locked(self.source, self.timeout)
                return
            busy_since = None
            # each step that goes on copies more pages; one that starts over copies the
            # first pages again, so no fewer remain than before it
            if remaining_before is not None and remaining >= remaining_before:
                restarts += 1
                if max_restarts is not None and restarts > max_restarts:
                    raise _StartedOver
            remaining_before = remaining
            if self.on_step is not None:
                self.on_step((total - remaining) * self.page_size)

        destination = sqlite3.connect(self.target, isolation_level=None)
        # a private scratch copy: a crash discards it, so it needs neither a rollback
        # journal nor waiting for the disk at each commit (it is checked before it is stored)
        destination.execute("PRAGMA journal_mode = OFF")
        destination.execute("PRAGMA synchronous = OFF")
        try:
            self.conn.backup(
                destination,
                pages=max(1, STEP_BYTES // self.page_size),
                progress=progress,
                sleep=RETRY_SECONDS,
            )
        except sqlite3.Error as exc:
            raise explain(self.source, exc) from None
        finally:
            destination.close()
        return restarts
