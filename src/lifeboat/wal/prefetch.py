"""Prefetch for wal-fetch: download the next segments while recovery replays this one.

wal-fetch (restore_command) first looks for the requested file in `<spool>/in/`; a file
there was checksum-verified when it was downloaded and is moved into place. Then it records
the segment it was asked for in `<spool>/in.wanted` and makes sure a prefetcher runs (one
per spool, by an exclusive flock on `<spool>/in.lock`). The prefetcher downloads the next
`prefetch` segments of the same timeline that the archive holds, in parallel, each through
a temporary name so a half-written file is never taken, and removes the files older than
the requested segment. Files in `in/` are plaintext WAL: 0600 in a 0700 folder."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from lifeboat.errors import LifeboatError
from lifeboat.postgres import wal
from lifeboat.util.fs import fsync_dir, make_private_dirs
from lifeboat.util.singleton import lock_is_held, serve_while_wanted
from lifeboat.wal.spool import (
    DIR_MODE,
    IDLE_EXIT_SECONDS,
    LOCK_PATIENCE_SECONDS,
    background_command,
    is_temporary,
    queued,
    spawn_detached,
    write_durably,
)
from lifeboat.wal.spool_paths import SpoolPaths

if TYPE_CHECKING:
    from lifeboat.context import WalView
    from lifeboat.storage.base import Storage

log = logging.getLogger(__name__)

# downloads `name` into the given path (temp file + rename), verified; raises
# WalNotFoundError when the archive does not hold it
Downloader = Callable[[str, Path], None]


def take_prefetched(spool: SpoolPaths, name: str, destination: Path) -> bool:
    """Move a prefetched `name` to destination, durably; False when it was not prefetched."""
    prefetched = spool.incoming / name
    try:
        os.replace(prefetched, destination)
    except FileNotFoundError:
        return False
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise LifeboatError(
                f"cannot move {prefetched} to {destination}: {exc.strerror}"
            ) from None
        # another file system: copy durably, then drop the spool's copy
        try:
            data = prefetched.read_bytes()
        except FileNotFoundError:
            return False
        write_durably(destination.parent, destination.name, data)
        prefetched.unlink(missing_ok=True)
        return True
    fd = os.open(destination, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    fsync_dir(destination.parent)
    return True


def request_prefetch(
    spool: SpoolPaths, name: str, config_path: Path, source: str, repository: str | None = None
) -> bool:
    """Ask for the segments after `name`; True when a prefetcher was started (downloading
    from `repository` alone when given). The running prefetcher, if any, reads the new
    request itself: the spool is one per set of repositories fetched from."""
    if not wal.is_segment_name(name):
        return False
    make_private_dirs(spool.incoming)
    # written before looking at the lock: see run_prefetcher for why that order matters.
    # Renamed into place, not fsynced: after a crash, recovery asks again.
    temp = spool.prefetch_wanted.with_name(f".{spool.prefetch_wanted.name}.{os.getpid()}.tmp")
    temp.write_text(name, encoding="ascii")
    os.replace(temp, spool.prefetch_wanted)
    if lock_is_held(spool.prefetch_lock):
        return False
    command = background_command(config_path, "prefetch", source)
    if repository is not None:
        command += ["--repo", repository]
    spawn_detached(command, spool.prefetch_log)
    return True


def wanted(spool: SpoolPaths) -> str | None:
    try:
        name = spool.prefetch_wanted.read_text(encoding="ascii").strip()
    except (OSError, ValueError):
        return None
    return name if wal.is_segment_name(name) else None


def following_segments(name: str, count: int) -> list[str]:
    segment = wal.Segment.parse(name)
    names = []
    for _ in range(count):
        segment = segment.next()
        names.append(segment.name())
    return names


def remove_older(spool: SpoolPaths, name: str) -> None:
    """Recovery asked for `name`: prefetched segments before it will not be asked for."""
    for present in queued(spool.incoming):
        if wal.is_segment_name(present) and present < name:
            (spool.incoming / present).unlink(missing_ok=True)


def prefetch_window(
    spool: SpoolPaths, name: str, count: int, download: Downloader, pool: ThreadPoolExecutor
) -> list[str]:
    """Download the `count` segments after `name` not already in in/; returns those fetched."""
    from lifeboat.wal.archive import WalNotFoundError

    remove_older(spool, name)
    present = set(queued(spool.incoming))
    missing = [n for n in following_segments(name, count) if n not in present]

    def fetch_one(segment: str) -> str | None:
        try:
            download(segment, spool.incoming / segment)
        except WalNotFoundError:
            return None
        except LifeboatError as exc:
            # wal-fetch downloads it itself when asked; nothing is lost
            log.warning("prefetching %s failed: %s", segment, exc)
            return None
        return segment

    fetched = [n for n in pool.map(fetch_one, missing) if n is not None]
    for segment in fetched:
        log.info("prefetched %s", segment)
    return fetched


def run_prefetcher(
    spool: SpoolPaths,
    download: Downloader,
    count: int,
    parallel: int,
    idle_exit: float = IDLE_EXIT_SECONDS,
) -> bool:
    """Serve requests from in.wanted until none comes for idle_exit seconds. False when
    another prefetcher holds the lock."""
    # what it writes is plaintext WAL: nobody else may read it
    os.umask(0o077)
    make_private_dirs(spool.incoming)
    with contextlib.suppress(OSError):  # a folder made by hand may be looser; ours if we can
        os.chmod(spool.incoming, DIR_MODE)
    served: str | None = None
    first_turn = True

    def serve() -> None:
        nonlocal served, first_turn
        if first_turn:
            # a prefetcher killed mid-download leaves its temporary file; no one else
            # writes here
            first_turn = False
            for leftover in os.listdir(spool.incoming):
                if is_temporary(leftover):
                    with contextlib.suppress(OSError):
                        (spool.incoming / leftover).unlink()
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < idle_exit:
            request = wanted(spool)
            if request is not None and request != served:
                prefetch_window(spool, request, count, download, pool)
                served = request
                idle_since = time.monotonic()
            else:
                time.sleep(0.05)

    def asked_again() -> bool:
        # a wal-fetch that asks while the lock is held starts no prefetcher
        request = wanted(spool)
        return request is not None and request != served

    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="wal-prefetch") as pool:
        return serve_while_wanted(spool.prefetch_lock, LOCK_PATIENCE_SECONDS, serve, asked_again)


def archive_downloader(context: WalView, source: str, repository: str | None = None) -> Downloader:
    """Downloads from the source's repositories (or `repository` alone), opened on the
    first download."""
    import threading

    from lifeboat.wal.stage import fetch

    opening = threading.Lock()
    opened: list[Storage] = []

    def download(name: str, destination: Path) -> None:
        with opening:
            if not opened:
                opened.extend(context.storages(source, repository))
        # never a stream partial: it may still grow until recovery really asks for it
        fetch(opened, source, name, destination, context.decryptor, allow_stream_partial=False)

    return download
