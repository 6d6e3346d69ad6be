"""lifeboat backup SOURCE."""

from __future__ import annotations

import click

from lifeboat import output
from lifeboat.cli import json_option, state, wants_json


@click.command()
@click.argument("source")
@json_option
def command(source: str, as_json: bool) -> None:
    """Back up SOURCE: encrypted, compressed, checksummed; prints the backup id."""
    from lifeboat.backup import backup_logical

    result = backup_logical(state().context(), source)
    summary = {
        **result.manifest.summary(),
        "repository": result.repository,
        "removed_leftovers": result.removed_leftovers,
    }
    if wants_json(as_json):
        output.print_json(summary)
    else:
        click.echo(result.manifest.id)
