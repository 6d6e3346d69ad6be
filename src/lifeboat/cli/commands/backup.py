"""lifeboat backup SOURCE [--type logical|physical] | --all | --group NAME [--parallel N]."""

from __future__ import annotations

import sys
from typing import Any

import click

from lifeboat.cli import output
from lifeboat.cli.main import json_option, state, wants_json
from lifeboat.cli.ping import pings
from lifeboat.cli.textfile import write_runs, writes_textfile
from lifeboat.errors import EXIT_FAILED, UsageError


@click.command()
@click.argument("source", required=False)
@click.option("--all", "every", is_flag=True, help="Back up every configured source.")
@click.option("--group", metavar="NAME", help="Back up the sources of the [groups] entry NAME.")
@click.option(
    "--parallel",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="--all/--group: how many sources are backed up at once.",
)
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
    source: str | None,
    every: bool,
    group: str | None,
    parallel: int,
    kind: str | None,
    wal_timeout: float,
    incremental: bool,
    accept_new_cluster: bool,
    as_json: bool,
) -> None:
    """Back up SOURCE: encrypted, compressed, checksummed; prints the backup id. With
    --all or --group: each source in turn (--parallel N at once), past any failure; one
    summary table, exit 1 if any failed."""
    if every or group is not None:
        _refuse_single_options(source, every, group, kind, incremental, accept_new_cluster)
        _back_up_many(every, group, parallel, as_json)
        return
    if source is None:
        raise UsageError("give a SOURCE, --all or --group NAME")
    if parallel != 1:
        raise UsageError("--parallel is for --all and --group")
    from lifeboat.ops.backup_one import back_up
    from lifeboat.sources.registry import BackupOptions

    ctx = state().context()
    options = BackupOptions(kind, wal_timeout, incremental, accept_new_cluster)
    done = back_up(ctx, source, options, notify=True)
    if wants_json(as_json):
        output.print_json(done.summary)
    else:
        click.echo(done.summary["id"])
    if done.failed:
        # the backup is safe in the other repositories, but this one lacks it: say so, and
        # make cron and systemd notice
        for name, why in done.failed.items():
            click.echo(
                f"lifeboat: error: repository {name} did not get the backup: {why}", err=True
            )
        sys.exit(EXIT_FAILED)


def _refuse_single_options(
    source: str | None,
    every: bool,
    group: str | None,
    kind: str | None,
    incremental: bool,
    accept_new_cluster: bool,
) -> None:
    given = [
        name
        for name, on in (
            ("SOURCE", source is not None),
            ("--all", every),
            ("--group", group is not None),
        )
        if on
    ]
    if len(given) > 1:
        raise UsageError(f"{' and '.join(given)} exclude each other: give one")
    # each source gets its own kind's defaults: a PostgreSQL source its logical backup
    for name, on in (
        ("--type", kind is not None),
        ("--incremental", incremental),
        ("--accept-new-cluster", accept_new_cluster),
    ):
        if on:
            raise UsageError(f"{name} is for one SOURCE, not --all or --group")


def _back_up_many(every: bool, group: str | None, parallel: int, as_json: bool) -> None:
    from lifeboat.notify.deliver import announce
    from lifeboat.ops.backup_many import SourceOutcome, backup_many, sources_of

    ctx = state().context()
    sources = sources_of(ctx.config, every, group)

    def told(outcome: SourceOutcome) -> None:
        # as `backup SOURCE` tells it, as soon as it ends
        announce(ctx.config, outcome.event())

    report = backup_many(ctx, sources, parallel, on_done=told)
    # each source's run, as `backup SOURCE` records it, in one rewrite of the textfile (the
    # repositories read once, not once per source)
    write_runs("backup", [(o.source, o.ok, o.seconds, o.backup_type) for o in report.outcomes])
    if wants_json(as_json):
        output.print_json(report.summary())
    else:
        _table(report.summary())
    for failed in report.failed:
        click.echo(f"lifeboat: error: backup of {failed.source} failed: {failed.problem}", err=True)
    if report.failed:
        sys.exit(EXIT_FAILED)


def _table(summary: dict[str, Any]) -> None:
    rows = [
        [
            row["source"],
            row["type"],
            "ok" if row["ok"] else "FAILED",
            row["id"] or "",
            output.seconds(row["seconds"]),
            "" if row["stored_size"] is None else output.size(row["stored_size"]),
            ", ".join(row["repositories"]),
            # cut to keep one line per source: stderr has each error whole
            output.shortened(row["error"] or "", 40),
        ]
        for row in summary["sources"]
    ]
    totals = summary["totals"]
    rows.append(
        [
            f"{totals['sources']} source(s)",
            "",
            f"{totals['succeeded']} ok, {totals['failed']} failed",
            "",
            output.seconds(totals["seconds"]),
            output.size(totals["stored_size"]),
            "",
            "",
        ]
    )
    output.table(
        None,
        ["source", "type", "result", "id", "took", "stored", "repositories", "error"],
        rows,
        whole=("id",),
    )
