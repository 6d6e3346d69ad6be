"""lifeboat hold ID --reason TEXT [--until DATE] [--source S] [--repo R]."""

from __future__ import annotations

import click

from lifeboat.cli import output
from lifeboat.cli.main import json_option, moment_option_value, state, wants_json


@click.command()
@click.argument("backup_id")
@click.option("--reason", required=True, help="Why it is held (shown by list, show, prune).")
@click.option("--until", "until_text", help="When the hold ends by itself (default: at release).")
@click.option("--source", help="Source, when the id exists for several.")
@click.option("--repo", "repo_name", help="Only this repository (default: every one that has it).")
@json_option
def command(
    backup_id: str,
    reason: str,
    until_text: str | None,
    source: str | None,
    repo_name: str | None,
    as_json: bool,
) -> None:
    """Keep a backup from being pruned (and, on S3 with Object Lock, from being deleted by
    anyone) until released or until --until."""
    from lifeboat.ops.holds import hold

    until = moment_option_value(until_text)
    results = [
        hold(repo, manifest, reason, until)
        for repo, manifest in state().context().backups_named(backup_id, source, repo_name)
    ]
    if wants_json(as_json):
        output.print_json([r.summary() for r in results])
        return
    for r in results:
        ends = f"until {r.until:%Y-%m-%d %H:%M} UTC" if r.until else "until released"
        click.echo(f"held {r.source}/{r.backup} in {r.repository} {ends}: {r.reason}")
