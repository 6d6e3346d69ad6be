"""What `wal-push` and `wal-fetch` do, shared by their click commands and the lean entry
point that PostgreSQL's archive_command and restore_command go through."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from lifeboat.errors import LifeboatError
from lifeboat.wal.spool_paths import SpoolPaths

log = logging.getLogger(__name__)


def wal_push(config: str | None, source: str, path: Path) -> dict[str, Any]:
    """Archive one WAL file; with async on, spool it for the background worker."""
    from lifeboat.config.paths import resolve_config_path
    from lifeboat.context import LeanContext

    config_path = resolve_config_path(config)
    context = LeanContext.load(config_path)
    archive = context.lean.archive(source)
    if archive.async_push:
        from lifeboat.wal import spool as wal_spool

        spool = SpoolPaths(archive.spool)
        if wal_spool.take_marker(spool, path) or wal_spool.wait_for_read_ahead(spool, path):
            # the worker read this segment ahead from pg_wal and archived it already
            return {"name": path.name, "spooled": False, "already_archived": True}
        wal_spool.note_wal_dir(spool, path.parent)
        error = wal_spool.worker_error(spool)
        if error is not None:
            # archive_command's stderr lands in the server log, where someone may look
            log.warning(
                "the async archive worker keeps failing on %s: %s (see `lifeboat status`)",
                error.get("segment"),
                error.get("message"),
            )
        outcome = wal_spool.push_async(archive, source, path, config_path)
        if outcome is wal_spool.Spooled.SPOOL_FULL:
            log.warning(
                "the spool %s holds %d segments already (spool_max_segments): "
                "pushing %s synchronously",
                spool.outgoing,
                archive.spool_max_segments,
                path.name,
            )
        elif outcome is not wal_spool.Spooled.OTHER_CLUSTER:
            already = outcome is wal_spool.Spooled.ALREADY_SPOOLED
            return {"name": path.name, "spooled": True, "already_spooled": already}
        # OTHER_CLUSTER: the repository's own record decides, synchronously
    else:
        _drain_leftover_spool(archive.spool, config_path, source)

    from lifeboat.wal.archive import push

    storages = context.storages(source)
    result = push(
        storages, source, path, context.encryptor(), context.lean.level, context.decryptor
    )
    if archive.async_push:
        wal_spool.note_cluster_of(spool, storages, source)
    return {
        "name": result.name,
        "key": result.key,
        "plain_size": result.plain_size,
        "stored_size": result.stored_size,
        "already_archived": result.already_archived,
        "spooled": False,
    }


def _drain_leftover_spool(spool_root: Path, config_path: Path, source: str) -> None:
    """Async was turned off with segments still spooled: they still have to go up. A spool
    this user cannot read is not this push's business, which must not fail for it."""
    outgoing = spool_root / "out"
    try:
        waiting = any(not name.startswith(".") for name in os.listdir(outgoing))
    except FileNotFoundError:
        return  # the usual case: never spooled; the spool's module is not even loaded
    except OSError as exc:
        log.warning("cannot look at the spool %s: %s", outgoing, exc.strerror)
        return
    from lifeboat.wal import spool as wal_spool

    spool = SpoolPaths(spool_root)  # whose outgoing is spool_root / "out"

    try:
        if waiting:
            wal_spool.ensure_worker(spool, config_path, source)
    except (OSError, LifeboatError) as exc:
        log.warning("cannot look at the spool %s: %s", spool.outgoing, exc)


def wal_fetch(
    config: str | None,
    source: str,
    name: str,
    destination: Path,
    repository: str | None = None,
) -> dict[str, Any]:
    """Restore one archived WAL file, from the source's repositories in order or from
    `repository` alone. A file the archive lacks raises WalNotFoundError (exit 1, the end
    of WAL for PostgreSQL); any other failure raises RecoveryStopError (exit 255), so that
    recovery stops rather than ends early without the rest of the WAL."""
    from lifeboat.errors import LifeboatError, RecoveryStopError
    from lifeboat.wal.archive import WalNotFoundError

    try:
        return _fetch(config, source, name, destination, repository)
    except WalNotFoundError:
        raise
    except LifeboatError as exc:
        raise RecoveryStopError(exc.message) from exc
    except Exception as exc:
        raise RecoveryStopError(f"unexpected {type(exc).__name__}: {exc}") from exc


def _fetch(
    config: str | None, source: str, name: str, destination: Path, repository: str | None
) -> dict[str, Any]:
    from lifeboat.config.paths import resolve_config_path
    from lifeboat.context import LeanContext
    from lifeboat.postgres import wal

    config_path = resolve_config_path(config)
    context = LeanContext.load(config_path)
    archive = context.lean.archive(source, repository)
    wal.check_archive_name(name)  # before it becomes part of a path
    spool = SpoolPaths(archive.spool)
    # the prefetcher is imported only when it has something: the misses at the end of
    # recovery then cost less
    prefetched = False
    if archive.prefetch > 0 and os.path.exists(spool.incoming / name):
        from lifeboat.wal import prefetch as wal_prefetch

        prefetched = wal_prefetch.take_prefetched(spool, name, destination)
    if prefetched:
        size = destination.stat().st_size
        log.info("restored %s from the prefetch spool", name)
    else:
        from lifeboat.wal.stage import fetch

        storages = context.storages(source, repository)
        size = fetch(storages, source, name, destination, context.decryptor)
    if archive.prefetch > 0:
        from lifeboat.wal import prefetch as wal_prefetch

        # only once NAME was found: at the end of WAL recovery keeps asking for a segment
        # that does not exist, and each ask would start a process for nothing
        wal_prefetch.request_prefetch(spool, name, config_path, source, repository)
    return {"name": name, "destination": str(destination), "size": size, "prefetched": prefetched}
