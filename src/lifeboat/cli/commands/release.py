"""lifeboat release ID [--reason TEXT] [--source S] [--repo R]."""

from __future__ import annotations

import click

from lifeboat.cli import output
from lifeboat.cli.main import json_option, state, wants_json


@click.command()
@click.argument("backup_id")
@click.option("--reason", default="released", help="Why the hold ends (kept in the audit trail).")
@click.option("--source", help="Source, when the id exists for several.")
@click.option("--repo", "repo_name", help="Only this repository (default: every one that has it).")
@json_option
def command(
    backup_id: str, reason: str, source: str | None, repo_name: str | None, as_json: bool
) -> None:
    """End a hold: prune may delete the backup again when no rule keeps it."""
    from lifeboat.ops.holds import release

    results = [
        release(repo, manifest, reason)
        for repo, manifest in state().context().backups_named(backup_id, source, repo_name)
    ]
    if wants_json(as_json):
        output.print_json([r.summary() for r in results])
        return
    for r in results:
        click.echo(f"released {r.source}/{r.backup} in {r.repository}")
