"""lifeboat wal-push SOURCE PATH: for archive_command."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from lifeboat import output
from lifeboat.cli import json_option, state, wants_json

log = logging.getLogger("lifeboat.wal_push")


@click.command()
@click.argument("source")
@click.argument("path", type=click.Path(path_type=Path))
@json_option
def command(source: str, path: Path, as_json: bool) -> None:
    """Archive one WAL file (archive_command = 'lifeboat wal-push SOURCE %p').

    Exits 0 only once the file is durable in the repository, or with
    [sources.NAME.archive] async = true, in the local spool a background worker uploads;
    pushing an identical file again succeeds, a different file under an archived name fails."""
    from lifeboat import wal_spool
    from lifeboat.config.paths import resolve_config_path
    from lifeboat.wal_settings import WalSettings

    config_path = resolve_config_path(state().config)
    settings = WalSettings.load(config_path)
    archive = settings.archive(source)
    spool = wal_spool.SpoolPaths(archive.spool)
    if archive.async_push:
        error = wal_spool.worker_error(spool)
        if error is not None:
            # archive_command's stderr lands in the server log, where someone may look
            log.warning(
                "the async archive worker keeps failing on %s: %s (see `lifeboat status`)",
                error.get("segment"),
                error.get("message"),
            )
        outcome = wal_spool.push_async(archive, source, path, config_path)
        if outcome is not wal_spool.Spooled.SPOOL_FULL:
            if wants_json(as_json):
                already = outcome is wal_spool.Spooled.ALREADY_SPOOLED
                output.print_json({"name": path.name, "spooled": True, "already_spooled": already})
            return
        log.warning(
            "the spool %s holds %d segments already (spool_max_segments): pushing %s synchronously",
            spool.outgoing,
            archive.spool_max_segments,
            path.name,
        )
    elif wal_spool.queued(spool.outgoing):
        # async was turned off with segments still spooled: they still have to go up
        wal_spool.ensure_worker(spool, config_path, source)

    from lifeboat.wal_archive import push

    result = push(settings.storage(source), source, path, settings.encryptor(), settings.level)
    if wants_json(as_json):
        output.print_json(
            {
                "name": result.name,
                "key": result.key,
                "plain_size": result.plain_size,
                "stored_size": result.stored_size,
                "already_archived": result.already_archived,
                "spooled": False,
            }
        )
