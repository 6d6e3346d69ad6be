"""lifeboat backup SOURCE [--type logical|physical]."""

from __future__ import annotations

import sys

import click

from lifeboat.cli import output
from lifeboat.cli.main import json_option, state, wants_json
from lifeboat.cli.ping import pings
from lifeboat.cli.textfile import writes_textfile
from lifeboat.errors import EXIT_FAILED


@click.command()
@click.argument("source")
@click.option(
    "--type",
    "kind",
    type=click.Choice(["logical", "physical"]),
    help="PostgreSQL sources: logical (the default), pg_dump of the database; physical, base "
    "backup of the whole cluster (needs WAL archiving, for point-in-time recovery). Other "
    "kinds of source have one type, their own.",
)
@click.option(
    "--wal-timeout",
    type=float,
    default=120.0,
    show_default=True,
    help="physical: seconds to wait for the backup's WAL to reach the archive.",
)
@click.option(
    "--incremental",
    is_flag=True,
    help="physical, PostgreSQL >= 17: only what changed since the newest physical backup "
    "(needs summarize_wal = on).",
)
@click.option(
    "--accept-new-cluster",
    is_flag=True,
    help="The source moved to another PostgreSQL cluster on purpose (pg_upgrade, a rebuilt "
    "server): record the server's system identifier as the source's from now on, instead "
    "of refusing the backup. Its WAL is archived from then on; the old cluster's is refused.",
)
@json_option
@writes_textfile("backup")
@pings
def command(
    source: str,
    kind: str | None,
    wal_timeout: float,
    incremental: bool,
    accept_new_cluster: bool,
    as_json: bool,
) -> None:
    """Back up SOURCE: encrypted, compressed, checksummed; prints the backup id."""
    from lifeboat.notify import outcomes
    from lifeboat.notify.deliver import announce, failure_announced
    from lifeboat.ops.audit import note_config
    from lifeboat.sources.registry import BackupOptions, backup_kind

    ctx = state().context()
    config = ctx.source(source)
    options = BackupOptions(kind, wal_timeout, incremental, accept_new_cluster)
    chosen = backup_kind(source, config, options)
    kind = kind or ("logical" if config.type == "postgres" else config.type)
    with failure_announced(
        ctx.config, lambda line: outcomes.backup_failed(source, line, backup_type=kind)
    ):
        result = chosen.backup(ctx, source)
    note_config(ctx, result.repositories, source)
    summary = {
        **result.manifest.summary(),
        "repository": result.repository,
        "repositories": result.repositories,
        "failed_repositories": result.failed,
        "removed_leftovers": result.removed_leftovers,
    }
    if wants_json(as_json):
        output.print_json(summary)
    else:
        click.echo(result.manifest.id)
    announce(
        ctx.config,
        outcomes.backup_failed(source, _missed(result.failed), backup_type=kind)
        if result.failed
        else outcomes.backup_succeeded(source, summary),
    )
    if result.failed:
        # the backup is safe in the other repositories, but this one lacks it: say so, and
        # make cron and systemd notice
        for name, why in result.failed.items():
            click.echo(
                f"lifeboat: error: repository {name} did not get the backup: {why}", err=True
            )
        sys.exit(EXIT_FAILED)


def _missed(failed: dict[str, str]) -> str:
    name, why = next(iter(failed.items()))
    return f"repository {name} did not get the backup: {why}"
