"""The async push worker: the background process that drains a WAL spool.

wal-push with async on (wal/spool.py) leaves segments in `<spool>/out/` and starts
`lifeboat wal-worker push SOURCE`, which runs run_push_worker: one per spool, by an
exclusive flock on `<spool>/worker.lock`. It uploads the spool in parallel with
`archive.push`, removes each file only once its push returned, retries failures with capped
exponential backoff, sets aside what the repository refuses for good, and writes what it did
to `<spool>/status.json`. It also reads ahead: segments PostgreSQL marked ready in pg_wal
are archived before archive_command asks, which then only consumes a marker."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifeboat.postgres import wal
from lifeboat.util import fs
from lifeboat.util.fs import fsync_dir, make_private_dirs
from lifeboat.util.singleton import serve_while_wanted
from lifeboat.wal.spool import (
    DIR_MODE,
    IDLE_EXIT_SECONDS,
    LOCK_PATIENCE_SECONDS,
    note_cluster_of,
    queued,
    read_json,
    utc_now,
    write_json_atomically,
)
from lifeboat.wal.spool_paths import SpoolPaths

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    from lifeboat.context import WalView

log = logging.getLogger(__name__)


# a failed push is retried after this delay, doubled per attempt up to the maximum
RETRY_FIRST_DELAY = 0.5
RETRY_MAX_DELAY = 30.0


@dataclass
class _Failure:
    attempts: int
    retry_at: float
    message: str
    at: str


@dataclass
class WorkerStatus:
    """What <spool>/status.json says; the push count carries over between workers."""

    path: Path
    pushed_count: int = 0
    last_pushed: dict[str, str] | None = None
    failures: dict[str, _Failure] = field(default_factory=dict)
    last_error: dict[str, Any] | None = None
    # files the repository refused for good, moved to <spool>/refused/: name -> the error
    refused: dict[str, dict[str, Any]] = field(default_factory=dict)
    # read ahead from pg_wal and refused: left to archive_command (not saved)
    skipped_ahead: set[str] = field(default_factory=set)
    # the wait after a file's first failure; it doubles with each further one
    first_retry_delay: float = RETRY_FIRST_DELAY

    @classmethod
    def resume(cls, path: Path, first_retry_delay: float = RETRY_FIRST_DELAY) -> WorkerStatus:
        previous = read_json(path) or {}
        count = previous.get("pushed_count")
        last = previous.get("last_pushed")
        refused = previous.get("refused")
        status = cls(
            path,
            pushed_count=count if isinstance(count, int) else 0,
            last_pushed=last if isinstance(last, dict) else None,
            refused=refused if isinstance(refused, dict) else {},
            first_retry_delay=first_retry_delay,
        )
        status.forget(())  # refused files someone took away are forgotten
        return status

    def refuse(self, name: str, message: str, kept: Path) -> None:
        """The repository refused the file for good: it is not retried, and stays visible
        as the error until someone takes it out of kept's folder."""
        self.failures.pop(name, None)
        self.refused[name] = {
            "segment": name,
            "message": f"{message} (refused for good, moved to {kept})",
            "at": utc_now(),
            "attempts": 1,
            "kept": str(kept),
        }
        self.last_error = self.refused[name]

    def pushed(self, name: str) -> None:
        self.pushed_count += 1
        self.last_pushed = {"segment": name, "at": utc_now()}
        self.failures.pop(name, None)
        self._refresh_error()

    def failed(self, name: str, message: str, now: float) -> _Failure:
        attempts = self.failures[name].attempts + 1 if name in self.failures else 1
        delay = min(self.first_retry_delay * 2 ** (attempts - 1), RETRY_MAX_DELAY)
        failure = _Failure(attempts, now + delay, message, utc_now())
        self.failures[name] = failure
        self.last_error = {
            "segment": name,
            "message": message,
            "at": failure.at,
            "attempts": attempts,
        }
        return failure

    def forget(self, names: Iterable[str]) -> None:
        """Failures of files that left the spool some other way, and refused files removed
        from where they were kept."""
        for name in set(self.failures) - set(names):
            del self.failures[name]
        for name, refusal in list(self.refused.items()):
            if not Path(str(refusal.get("kept"))).exists():
                del self.refused[name]
        self._refresh_error()

    def _refresh_error(self) -> None:
        """A success clears the error unless another segment is still failing, or a refused
        one is kept: that one stays visible."""
        if not self.failures:
            self.last_error = max(
                self.refused.values(), key=lambda refusal: str(refusal["at"]), default=None
            )
        elif self.last_error is None or self.last_error["segment"] not in self.failures:
            name, failure = max(self.failures.items(), key=lambda item: item[1].at)
            self.last_error = {
                "segment": name,
                "message": failure.message,
                "at": failure.at,
                "attempts": failure.attempts,
            }

    def save(self) -> None:
        try:
            write_json_atomically(
                self.path,
                {
                    "pid": os.getpid(),
                    "updated_at": utc_now(),
                    "pushed_count": self.pushed_count,
                    "last_pushed": self.last_pushed,
                    "last_error": self.last_error,
                    "failing": len(self.failures),
                    "refused": self.refused,
                },
            )
        except OSError as exc:
            log.warning("cannot write %s: %s", self.path, exc.strerror or exc)


# pushes one file, returns the sha256 of its plaintext
Uploader = Callable[[Path], str]


def run_push_worker(
    spool: SpoolPaths,
    upload: Uploader,
    workers: int,
    idle_exit: float = IDLE_EXIT_SECONDS,
    read_ahead_limit: int = 64,
    first_retry_delay: float = RETRY_FIRST_DELAY,
) -> bool:
    """Upload the spool until it stays empty for idle_exit seconds. False when another
    worker holds the lock (then this one does nothing)."""
    from concurrent.futures import ThreadPoolExecutor

    make_private_dirs(spool.outgoing)
    with contextlib.suppress(OSError):  # a folder made by hand may be looser; ours if we can
        os.chmod(spool.outgoing, DIR_MODE)
    status: WorkerStatus | None = None
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="wal-push") as pool:

        def drain() -> None:
            nonlocal status
            if status is None:  # the first turn: the status is this worker's from now on
                status = WorkerStatus.resume(spool.status_file, first_retry_delay)
                status.save()  # records this worker's pid
                forget_stale_markers(spool)
            _drain(spool, upload, workers, idle_exit, status, pool, read_ahead_limit)

        # a wal-push that spools a file while the lock is held starts no worker
        served = serve_while_wanted(
            spool.worker_lock, LOCK_PATIENCE_SECONDS, drain, lambda: bool(queued(spool.outgoing))
        )
    if not served:
        log.debug("another worker holds %s", spool.worker_lock)
    return served


READY_SUFFIX = ".ready"


# markers nobody consumed this long after they were written are not trusted any more
MARKER_MAX_AGE_SECONDS = 600.0


def read_ahead(spool: SpoolPaths, limit: int) -> list[Path]:
    """Segments PostgreSQL marked ready to archive that nobody has taken yet: the worker
    archives them before archive_command asks, which then only consumes a marker. Reading
    them in pg_wal is safe: the server recycles a segment only once it is archived."""
    try:
        wal_dir = Path(spool.wal_dir_file.read_text(encoding="utf-8"))
        ready = os.listdir(wal_dir / "archive_status")
        taken = set(os.listdir(spool.acknowledged)) if spool.acknowledged.is_dir() else set()
    except (OSError, ValueError):
        return []
    room = limit - len(taken)
    names = sorted(n.removesuffix(READY_SUFFIX) for n in ready if n.endswith(READY_SUFFIX))
    found: list[Path] = []
    for name in names:
        if len(found) >= room:
            break
        if name not in taken and wal.is_archive_name(name):
            found.append(wal_dir / name)
    return found


def _write_marker(spool: SpoolPaths, name: str, plain_sha256: str) -> None:
    """Not fsynced: a marker lost in a crash only means archive_command pushes that
    segment again, which the archive recognises as already archived."""
    fs.write_atomically(spool.acknowledged / name, plain_sha256.encode())


def forget_stale_markers(spool: SpoolPaths) -> None:
    """A marker nobody consumed for long may belong to a cluster that is gone."""
    now = time.time()
    try:
        entries = list(os.scandir(spool.acknowledged))
    except OSError:
        return
    for entry in entries:
        with contextlib.suppress(OSError):
            if now - entry.stat().st_mtime > MARKER_MAX_AGE_SECONDS:
                os.unlink(entry.path)


def _drain(
    spool: SpoolPaths,
    upload: Uploader,
    workers: int,
    idle_exit: float,
    status: WorkerStatus,
    pool: ThreadPoolExecutor,
    read_ahead_limit: int,
) -> None:
    from concurrent.futures import FIRST_COMPLETED, wait

    in_flight: dict[Future[str], Path] = {}
    idle_since = time.monotonic()
    make_private_dirs(spool.acknowledged)
    make_private_dirs(spool.reading_ahead)
    for stale in os.listdir(spool.reading_ahead):  # of a worker that was killed
        (spool.reading_ahead / stale).unlink(missing_ok=True)
    while True:
        now = time.monotonic()
        spooled = [spool.outgoing / name for name in queued(spool.outgoing)]
        spooled_names = {p.name for p in spooled}
        ahead = [
            p
            for p in read_ahead(spool, read_ahead_limit)
            if p.name not in spooled_names and p.name not in status.skipped_ahead
        ]
        waiting = spooled + ahead
        status.forget({p.name for p in waiting})
        busy = {p.name for p in in_flight.values()}
        for path in waiting:
            if len(in_flight) >= workers:
                break
            failure = status.failures.get(path.name)
            if path.name in busy or (failure is not None and failure.retry_at > now):
                continue
            if path.parent != spool.outgoing:
                (spool.reading_ahead / path.name).touch()
            in_flight[pool.submit(upload, path)] = path
        if not in_flight:
            if waiting:
                idle_since = now
                waiting_names = {p.name for p in waiting}
                soonest = min(
                    (f.retry_at for n, f in status.failures.items() if n in waiting_names),
                    default=now + 0.05,
                )
                time.sleep(min(max(soonest - now, 0.01), 0.2))
                continue
            if now - idle_since >= idle_exit:
                return
            time.sleep(0.05)
            continue
        idle_since = now
        done, _ = wait(in_flight, timeout=0.2, return_when=FIRST_COMPLETED)
        for future in done:
            path = in_flight.pop(future)
            error = future.exception()
            busy_marker = spool.reading_ahead / path.name
            if error is None:
                if path.parent == spool.outgoing:
                    # only now: a worker killed before this line leaves the file to push
                    # again, which the archive recognises as already archived
                    path.unlink(missing_ok=True)
                    # read ahead as well while it was being spooled: nobody will ask
                    (spool.acknowledged / path.name).unlink(missing_ok=True)
                else:
                    _write_marker(spool, path.name, future.result())
                    busy_marker.unlink(missing_ok=True)
                status.pushed(path.name)
                log.info("pushed %s", path.name)
            elif path.parent != spool.outgoing and not path.exists():
                busy_marker.unlink(missing_ok=True)
                continue  # archived and recycled meanwhile: nothing to read ahead
            elif _refused_for_good(error):
                busy_marker.unlink(missing_ok=True)
                _set_aside(spool, path, str(error), status)
            else:
                busy_marker.unlink(missing_ok=True)
                message = str(error) or type(error).__name__
                failure = status.failed(path.name, message, time.monotonic())
                log.warning(
                    "pushing %s failed (attempt %d, retrying in %.1fs): %s",
                    path.name,
                    failure.attempts,
                    failure.retry_at - time.monotonic(),
                    message,
                )
        if done:
            status.save()


def _refused_for_good(error: BaseException) -> bool:
    from lifeboat.wal.archive import WalRefusedError

    return isinstance(error, WalRefusedError)


def _set_aside(spool: SpoolPaths, path: Path, message: str, status: WorkerStatus) -> None:
    """A file the repository refused for good (another cluster's, a conflict): retrying
    cannot help, so a spooled one moves to <spool>/refused/ for someone to look at. One
    read ahead from pg_wal stays there: archive_command pushes it, and fails, itself."""
    log.error("%s", message)
    if path.parent != spool.outgoing:
        status.skipped_ahead.add(path.name)
        return
    make_private_dirs(spool.refused)
    kept = spool.refused / path.name
    try:
        os.replace(path, kept)
        fsync_dir(spool.refused)
    except OSError as exc:
        status.failed(
            path.name, f"{message}; cannot move it to {kept}: {exc.strerror}", time.monotonic()
        )
        return
    status.refuse(path.name, message, kept)


def archive_uploader(context: WalView, source: str, spool: SpoolPaths) -> Uploader:
    """Pushes one spooled file to the source's repository. The repository is opened on the
    first upload, so a repository that cannot be reached yet is retried like a failed push."""
    import threading

    from lifeboat.wal.archive import push

    opening = threading.Lock()
    opened: list[Any] = []

    def upload(path: Path) -> str:
        with opening:
            if not opened:
                opened.extend([context.storages(source), context.encryptor()])
        storages, encryptor = opened
        pushed = push(storages, source, path, encryptor, context.lean.level, context.decryptor)
        digest = pushed.plain_sha256
        note_cluster_of(spool, storages, source)
        return digest

    return upload
