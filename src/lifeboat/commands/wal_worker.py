"""lifeboat wal-worker push|prefetch SOURCE: the background processes of the WAL spool.

Hidden: wal-push and wal-fetch start these detached, with the same executable and config."""

from __future__ import annotations

import click

from lifeboat.cli import state


@click.command(hidden=True)
@click.argument("role", type=click.Choice(["push", "prefetch"]))
@click.argument("source")
def command(role: str, source: str) -> None:
    """Upload the async spool (push) or download ahead for recovery (prefetch)."""
    from lifeboat import wal_spool
    from lifeboat.config.paths import resolve_config_path
    from lifeboat.spool_paths import SpoolPaths
    from lifeboat.wal_settings import WalSettings

    settings = WalSettings.load(resolve_config_path(state().config))
    archive = settings.archive(source)
    spool = SpoolPaths(archive.spool)
    if role == "push":
        uploader = wal_spool.archive_uploader(settings, source, spool)
        wal_spool.run_push_worker(
            spool, uploader, archive.workers, read_ahead_limit=archive.spool_max_segments
        )
        return
    from lifeboat import wal_prefetch

    downloader = wal_prefetch.archive_downloader(settings, source)
    parallel = max(1, min(archive.prefetch, archive.workers))
    wal_prefetch.run_prefetcher(spool, downloader, archive.prefetch, parallel)
