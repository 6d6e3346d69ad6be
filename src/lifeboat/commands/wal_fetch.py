"""lifeboat wal-fetch SOURCE NAME DEST: for restore_command."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from lifeboat import output
from lifeboat.cli import json_option, state, wants_json

log = logging.getLogger("lifeboat.wal_fetch")


@click.command()
@click.argument("source")
@click.argument("name")
@click.argument("destination", type=click.Path(path_type=Path))
@json_option
def command(source: str, name: str, destination: Path, as_json: bool) -> None:
    """Restore one archived WAL file (restore_command = 'lifeboat wal-fetch SOURCE %f %p').

    Exits 1 when the archive does not hold NAME, as PostgreSQL expects at the end of WAL.
    Any other failure (a corrupted object, an unreachable repository, a missing key) exits
    255, which makes PostgreSQL stop recovery instead of ending it early and promoting a
    cluster that lacks the rest of the WAL.
    With [sources.NAME.archive] prefetch > 0, the next segments are downloaded ahead."""
    from lifeboat.errors import LifeboatError, RecoveryStopError
    from lifeboat.wal_archive import WalNotFoundError

    try:
        _fetch(source, name, destination, as_json)
    except WalNotFoundError:
        raise
    except LifeboatError as exc:
        raise RecoveryStopError(exc.message) from exc
    except Exception as exc:
        raise RecoveryStopError(f"unexpected {type(exc).__name__}: {exc}") from exc


def _fetch(source: str, name: str, destination: Path, as_json: bool) -> None:
    from lifeboat.config.paths import resolve_config_path
    from lifeboat.wal_settings import WalSettings

    config_path = resolve_config_path(state().config)
    settings = WalSettings.load(config_path)
    archive = settings.archive(source)
    from lifeboat import wal_prefetch, wal_spool
    from lifeboat.postgres import wal

    wal.check_archive_name(name)  # before it becomes part of a path
    spool = wal_spool.SpoolPaths(archive.spool)
    prefetched = archive.prefetch > 0 and wal_prefetch.take_prefetched(spool, name, destination)
    if prefetched:
        size = destination.stat().st_size
        log.info("restored %s from the prefetch spool", name)
    else:
        from lifeboat.wal_archive import fetch

        size = fetch(settings.storage(source), source, name, destination, settings.decryptor)
    if archive.prefetch > 0:
        # only once NAME was found: at the end of WAL recovery keeps asking for a segment
        # that does not exist, and each ask would start a process for nothing
        wal_prefetch.request_prefetch(spool, name, config_path, source)
    if wants_json(as_json):
        output.print_json(
            {"name": name, "destination": str(destination), "size": size, "prefetched": prefetched}
        )
