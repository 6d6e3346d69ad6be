"""lifeboat wal-worker push|prefetch SOURCE: the background processes of the WAL spool.

Hidden: wal-push and wal-fetch start these detached, with the same executable and config."""

from __future__ import annotations

import click

from lifeboat.cli.main import state
from lifeboat.errors import UsageError


@click.command(hidden=True)
@click.argument("role", type=click.Choice(["push", "prefetch"]))
@click.argument("source")
@click.option("--repo", "repo_name", help="prefetch: download from this repository alone.")
def command(role: str, source: str, repo_name: str | None) -> None:
    """Upload the async spool (push) or download ahead for recovery (prefetch)."""
    from lifeboat.config.paths import resolve_config_path
    from lifeboat.context import LeanContext
    from lifeboat.wal import worker as wal_worker
    from lifeboat.wal.spool_paths import SpoolPaths

    context = LeanContext.load(resolve_config_path(state().config))
    if role == "push" and repo_name is not None:
        raise UsageError("--repo is for prefetch: WAL is pushed to every repository of the source")
    archive = context.lean.archive(source, repo_name)
    spool = SpoolPaths(archive.spool)
    if role == "push":
        uploader = wal_worker.archive_uploader(context, source, spool)
        wal_worker.run_push_worker(
            spool, uploader, archive.workers, read_ahead_limit=archive.spool_max_segments
        )
        return
    from lifeboat.wal import prefetch as wal_prefetch

    downloader = wal_prefetch.archive_downloader(context, source, repo_name)
    parallel = max(1, min(archive.prefetch, archive.workers))
    wal_prefetch.run_prefetcher(spool, downloader, archive.prefetch, parallel)
