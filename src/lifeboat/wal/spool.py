"""Asynchronous WAL archiving: wal-push spools, a background worker uploads.

With `[sources.NAME.archive] async = true`, wal-push only makes the segment durable in
`<spool>/out/` and makes sure a worker runs; PostgreSQL then considers it archived. The
worker (one per spool, by an exclusive flock on `<spool>/worker.lock`) uploads the spool in
parallel with `archive.push`, removes each file only once its push returned, retries
failures with capped exponential backoff and writes what it did to `<spool>/status.json`.

This module is on the path of every archive_command: it imports nothing heavy (no
compression, no encryption, no pydantic) unless a segment has to be pushed here."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifeboat.errors import LifeboatError
from lifeboat.postgres import wal
from lifeboat.util import fs
from lifeboat.util.fs import fsync_dir, make_private_dirs
from lifeboat.wal.spool_paths import SpoolPaths

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    from lifeboat.storage.base import Storage
    from lifeboat.wal.settings import ArchiveSettings, WalSettings

log = logging.getLogger(__name__)

FILE_MODE = 0o600
DIR_MODE = 0o700
# a worker log beyond this is started afresh rather than growing forever
WORKER_LOG_LIMIT = 1 << 20
# the worker lingers this long with an empty spool, so a busy server does not pay a start
# per segment, then exits
IDLE_EXIT_SECONDS = 3.0
RETRY_FIRST_DELAY = 0.5
RETRY_MAX_DELAY = 30.0
# how long a starting worker tries for the lock: a foreground wal-push probing it holds it
# for microseconds, a running worker for good
LOCK_PATIENCE_SECONDS = 1.0


# --- small durable file helpers -----------------------------------------------------------


def is_temporary(name: str) -> bool:
    """Files being written carry a leading dot until they are renamed into place."""
    return name.startswith(".")


def write_durably(folder: Path, name: str, data: bytes) -> Path:
    """folder/name holds data, or nothing: temp file, fsync, rename, fsync the folder."""
    final = folder / name
    try:
        fs.write_durably(final, data)
    except OSError as exc:
        raise LifeboatError(f"cannot write {final}: {exc.strerror or exc}") from None
    return final


def write_json_atomically(path: Path, document: dict[str, Any]) -> None:
    """Readers see the old or the new document, never half of one. Not fsynced: it only
    reports, and losing the last update in a crash costs nothing."""
    fs.write_atomically(path, json.dumps(document, indent=2).encode())


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def queued(folder: Path) -> list[str]:
    """Names waiting in a spool folder, oldest WAL first (WAL names sort in WAL order);
    raises OSError when the folder exists but cannot be read."""
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(name for name in names if not is_temporary(name))


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --- single instance by flock ---------------------------------------------------------------


def lock_is_held(lock_path: Path) -> bool:
    """Whether a process holds lock_path; creates nothing, so status can ask too."""
    try:
        fd = os.open(lock_path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases a lock we took
    return False


def try_lock(lock_path: Path, patience: float = LOCK_PATIENCE_SECONDS) -> int | None:
    """An fd holding the exclusive lock, or None when another process keeps it."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    deadline = time.monotonic() + patience
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                return None
            time.sleep(0.02)


def release_lock(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def spawn_detached(command: list[str], log_path: Path) -> None:
    """Start command in its own session, so it outlives the caller and PostgreSQL does not
    wait for it; its output goes to log_path."""
    import subprocess

    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
    with contextlib.suppress(FileNotFoundError):
        if log_path.stat().st_size > WORKER_LOG_LIMIT:
            flags |= os.O_TRUNC
    log_fd = os.open(log_path, flags, FILE_MODE)
    try:
        subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=log_fd,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:
        raise LifeboatError(f"cannot start {command[0]}: {exc.strerror or exc}") from None
    finally:
        os.close(log_fd)


def background_command(config_path: Path, role: str, source: str) -> list[str]:
    """`lifeboat wal-worker push|prefetch SOURCE`, with the caller's executable and config."""
    from lifeboat.util.executable import lifeboat_executable

    return [
        lifeboat_executable(),
        "--config",
        str(config_path.absolute()),
        "wal-worker",
        role,
        source,
    ]


def ensure_worker(spool: SpoolPaths, config_path: Path, source: str) -> bool:
    """Start a worker unless one holds the lock; True when one was started. Two callers may
    both start one: the second exits when it cannot get the lock."""
    if lock_is_held(spool.worker_lock):
        return False
    spawn_detached(background_command(config_path, "push", source), spool.worker_log)
    return True


# --- the foreground: wal-push with async on -------------------------------------------------


class Spooled(Enum):
    SPOOLED = "spooled"
    ALREADY_SPOOLED = "already spooled"
    SPOOL_FULL = "spool full"
    OTHER_CLUSTER = "of another cluster than the spool's"


def _same_content(first: Path, second: Path) -> bool:
    try:
        if first.stat().st_size != second.stat().st_size:
            return False
        return first.read_bytes() == second.read_bytes()
    except OSError as exc:
        raise LifeboatError(f"cannot compare {first} with {second}: {exc.strerror}") from None


def _copy_range(source_fd: int, target_fd: int, size: int) -> int:
    """Copy in the kernel where it can; plain reads and writes where it cannot."""
    copied = 0
    try:
        while copied < size:
            step = os.copy_file_range(source_fd, target_fd, size - copied)
            if step == 0:
                break
            copied += step
        return copied
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise
    while copied < size:
        chunk = os.pread(source_fd, min(size - copied, 1 << 20), copied)
        if not chunk:
            break
        view = memoryview(chunk)
        while view:
            written = os.pwrite(target_fd, view, copied)
            view = view[written:]
            copied += written
    return copied


def copy_durably(source: Path, folder: Path, name: str) -> None:
    """folder/name becomes a copy of source, or nothing: temp file, fsync, rename, fsync the
    folder."""
    try:
        source_fd = os.open(source, os.O_RDONLY)
    except OSError as exc:
        raise LifeboatError(f"cannot read {source}: {exc.strerror}") from None
    final = folder / name
    temp = folder / f".{name}.{os.getpid()}.tmp"
    try:
        size = os.fstat(source_fd).st_size
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        try:
            copied = _copy_range(source_fd, fd, size)
            os.fdatasync(fd)
        finally:
            os.close(fd)
        if copied != size:
            raise LifeboatError(f"{source} changed size while it was copied to {folder}")
        os.replace(temp, final)
        fsync_dir(folder)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise LifeboatError(f"cannot write {final}: {exc.strerror or exc}") from None
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    finally:
        os.close(source_fd)


def _sender(path: Path, name: str) -> str | None:
    """The system identifier of the cluster that sent the file, once it is checked to be a
    whole segment (what the worker would refuse for good, refused now: once spooled,
    PostgreSQL counts a file as archived); None when the file cannot tell."""
    if not wal.is_whole_segment_name(name):
        from lifeboat.postgres import pgcontrol

        sender = pgcontrol.sender_system_identifier(path)
        return None if sender is None else str(sender)
    from lifeboat.postgres import walheader

    try:
        with open(path, "rb") as handle:
            head = handle.read(walheader.LONG_HEADER_SIZE)
            size = os.fstat(handle.fileno()).st_size
    except OSError as exc:
        raise LifeboatError(f"cannot read {path}: {exc.strerror}") from None
    try:
        header = walheader.whole_segment_header(name, head, size)
    except ValueError as exc:
        from lifeboat.wal.archive import NotASegmentError

        raise NotASegmentError(str(exc)) from None
    return str(header.system_identifier)


def note_cluster(spool: SpoolPaths, system_identifier: str) -> None:
    """Keep the record in force where the foreground finds it without the repository.
    Written by whoever read the record (the worker, a synchronous push); not fsynced: a
    lost update only sends the next file through a synchronous push."""
    if spooled_cluster(spool) == system_identifier:
        return
    make_private_dirs(spool.root)
    write_json_atomically(
        spool.cluster_file, {"system_identifier": system_identifier, "noted_at": utc_now()}
    )


def note_cluster_of(spool: SpoolPaths, storages: list[Storage], source: str) -> None:
    """note_cluster with the record the repositories hold (read by the push just done, so
    cached); a spool that cannot be written only loses the shortcut."""
    from lifeboat.repo import cluster

    try:
        for storage in storages:
            record = cluster.current(storage, source)
            if record is not None:
                note_cluster(spool, record.system_identifier)
                return
    except (LifeboatError, OSError) as exc:
        log.warning("cannot note the source's cluster in %s: %s", spool.cluster_file, exc)


def spooled_cluster(spool: SpoolPaths) -> str | None:
    """The system identifier note_cluster last kept, None before any."""
    document = read_json(spool.cluster_file)
    found = document.get("system_identifier") if document else None
    return found if isinstance(found, str) else None


def spool_segment(spool: SpoolPaths, path: Path, max_segments: int) -> Spooled:
    """Make path durable in the spool. SPOOL_FULL and OTHER_CLUSTER mean nothing was
    written: the caller pushes synchronously instead, so no WAL is ever dropped, and a file
    of another cluster is refused by the repository itself (exit 1, nothing stored). Going
    to the repository rather than refusing here keeps a spool whose note is stale (a new
    cluster was accepted since) from refusing the new cluster's WAL."""
    name = wal.check_archive_name(path.name)
    sender = _sender(path, name)
    noted = spooled_cluster(spool) if sender is not None else None
    if noted is not None and noted != sender:
        return Spooled.OTHER_CLUSTER
    make_private_dirs(spool.outgoing)
    existing = spool.outgoing / name
    if existing.exists():
        if _same_content(existing, path):
            return Spooled.ALREADY_SPOOLED
        from lifeboat.wal.archive import WalConflictError

        raise WalConflictError(
            f"{name} is already spooled for archiving with different content ({existing}); "
            "refusing to overwrite it: is another cluster archiving into this source?"
        )
    if len(queued(spool.outgoing)) >= max_segments:
        return Spooled.SPOOL_FULL
    copy_durably(path, spool.outgoing, name)
    return Spooled.SPOOLED


def push_async(archive: ArchiveSettings, source: str, path: Path, config_path: Path) -> Spooled:
    """wal-push with async on: spool the file and make sure a worker will upload it."""
    spool = SpoolPaths(archive.spool)
    outcome = spool_segment(spool, path, archive.spool_max_segments)
    ensure_worker(spool, config_path, source)
    return outcome


def worker_error(spool: SpoolPaths) -> dict[str, Any] | None:
    """The worker's current error, if it has one (cheap: one small file)."""
    status = read_json(spool.status_file)
    error = status.get("last_error") if status else None
    return error if isinstance(error, dict) else None


# --- the worker -----------------------------------------------------------------------------


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

    @classmethod
    def resume(cls, path: Path) -> WorkerStatus:
        previous = read_json(path) or {}
        count = previous.get("pushed_count")
        last = previous.get("last_pushed")
        refused = previous.get("refused")
        status = cls(
            path,
            pushed_count=count if isinstance(count, int) else 0,
            last_pushed=last if isinstance(last, dict) else None,
            refused=refused if isinstance(refused, dict) else {},
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
        delay = min(RETRY_FIRST_DELAY * 2 ** (attempts - 1), RETRY_MAX_DELAY)
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
) -> bool:
    """Upload the spool until it stays empty for idle_exit seconds. False when another
    worker holds the lock (then this one does nothing)."""
    from concurrent.futures import ThreadPoolExecutor

    make_private_dirs(spool.outgoing)
    with contextlib.suppress(OSError):  # a folder made by hand may be looser; ours if we can
        os.chmod(spool.outgoing, DIR_MODE)
    fd = try_lock(spool.worker_lock)
    if fd is None:
        log.debug("another worker holds %s", spool.worker_lock)
        return False
    status = WorkerStatus.resume(spool.status_file)
    status.save()  # records this worker's pid
    forget_stale_markers(spool)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="wal-push") as pool:
        try:
            while True:
                _drain(spool, upload, workers, idle_exit, status, pool, read_ahead_limit)
                # Release, then look again: a wal-push that spooled a file while we held the
                # lock did not start a worker, so the file is ours to find now; one that
                # spools after this sees the lock free and starts its own.
                release_lock(fd)
                fd = None
                if not queued(spool.outgoing):
                    return True
                fd = try_lock(spool.worker_lock)
                if fd is None:
                    return True
        finally:
            if fd is not None:
                release_lock(fd)


READY_SUFFIX = ".ready"
# markers nobody consumed this long after they were written are not trusted any more
MARKER_MAX_AGE_SECONDS = 600.0


def note_wal_dir(spool: SpoolPaths, wal_dir: Path) -> None:
    """Tell the worker where pg_wal is (the folder of the path archive_command got)."""
    text = str(wal_dir.absolute())
    try:
        if spool.wal_dir_file.read_text(encoding="utf-8") == text:
            return
    except OSError:
        pass
    make_private_dirs(spool.root)
    write_durably(spool.root, spool.wal_dir_file.name, text.encode())


def take_marker(spool: SpoolPaths, path: Path) -> bool:
    """True when the worker already archived this very file from pg_wal (its marker holds
    the sha256 the repository has); the marker is consumed either way."""
    import hashlib

    marker = spool.acknowledged / path.name
    try:
        expected = marker.read_text(encoding="ascii").strip()
    except OSError:
        return False
    try:
        with open(path, "rb") as handle:
            actual = hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError as exc:
        raise LifeboatError(f"cannot read {path}: {exc.strerror}") from None
    marker.unlink(missing_ok=True)
    return actual == expected


def wait_for_read_ahead(spool: SpoolPaths, path: Path, timeout: float = 10.0) -> bool:
    """When the worker is archiving this segment from pg_wal already, wait for it rather
    than spool a second copy; True when it finished with a marker for this very file."""
    busy = spool.reading_ahead / path.name
    deadline = time.monotonic() + timeout
    while busy.exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    return take_marker(spool, path)


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


def archive_uploader(settings: WalSettings, source: str, spool: SpoolPaths) -> Uploader:
    """Pushes one spooled file to the source's repository. The repository is opened on the
    first upload, so a repository that cannot be reached yet is retried like a failed push."""
    import threading

    from lifeboat.wal.archive import push

    opening = threading.Lock()
    opened: list[Any] = []

    def upload(path: Path) -> str:
        with opening:
            if not opened:
                opened.extend([settings.storages(source), settings.encryptor()])
        storages, encryptor = opened
        pushed = push(storages, source, path, encryptor, settings.level, settings.decryptor)
        digest = pushed.plain_sha256
        note_cluster_of(spool, storages, source)
        return digest

    return upload
