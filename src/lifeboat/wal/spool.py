"""Asynchronous WAL archiving, the foreground: wal-push spools, a background worker uploads.

With `[sources.NAME.archive] async = true`, wal-push only makes the segment durable in
`<spool>/out/` and makes sure a worker runs; PostgreSQL then considers it archived. The
worker itself (wal/worker.py) drains the spool. This module holds what wal-push does with
async on, and the spool's durable files and single-instance locks that the worker and the
prefetcher (wal/prefetch.py) use as well.

This module is on the path of every archive_command: it imports nothing heavy (no
compression, no encryption, no pydantic) unless a segment has to be pushed here."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import time
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifeboat.errors import LifeboatError
from lifeboat.postgres import wal
from lifeboat.util import fs
from lifeboat.util.fs import fsync_dir, make_private_dirs
from lifeboat.util.singleton import lock_is_held
from lifeboat.wal.spool_paths import SpoolPaths

if TYPE_CHECKING:
    from lifeboat.config.lean import ArchiveSettings
    from lifeboat.storage.base import Storage

log = logging.getLogger(__name__)

FILE_MODE = 0o600
DIR_MODE = 0o700
# a worker log beyond this is started afresh rather than growing forever
WORKER_LOG_LIMIT = 1 << 20
# the worker lingers this long with an empty spool, so a busy server does not pay a start
# per segment, then exits
IDLE_EXIT_SECONDS = 3.0
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


# --- what the foreground learns from the worker's read-ahead ----------------------------------


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
