"""lifeboat copy --from REPO --to REPO [--source SOURCE]."""

from __future__ import annotations

import click

from lifeboat.cli import output
from lifeboat.cli.main import json_option, state, wants_json
from lifeboat.cli.ping import pings
from lifeboat.cli.textfile import writes_textfile


@click.command()
@click.option("--from", "origin_name", required=True, help="Repository to copy from.")
@click.option("--to", "target_name", required=True, help="Repository to copy to.")
@click.option("--source", help="Copy only this source (default: every source found).")
@json_option
@writes_textfile("copy")
@pings
def command(origin_name: str, target_name: str, source: str | None, as_json: bool) -> None:
    """Copy the backups and WAL that one repository has and another lacks, checked by
    checksum, the manifest of each backup last; run it again to resume. A backup whose id
    the target holds for a different backup is not copied, and makes copy fail (exit 1)."""
    from lifeboat.repo.copy import copy_repository, raise_conflicts, sources_to_copy

    ctx = state().context()
    origin, target = ctx.repository(origin_name), ctx.repository(target_name)
    sources = sources_to_copy(origin, list(ctx.config.sources), source)
    reports = copy_repository(origin, target, sources)
    if wants_json(as_json):
        output.print_json([r.summary() for r in reports])
    else:
        for report in reports:
            conflicts = f", {len(report.conflicts)} in conflict" if report.conflicts else ""
            click.echo(
                f"{report.source}: {len(report.backups_copied)} backups copied "
                f"({report.backups_present} already there{conflicts}), {report.wal_copied} WAL "
                f"files copied ({report.wal_present} already there), "
                f"{output.size(report.bytes_copied)}"
            )
    raise_conflicts(reports)
