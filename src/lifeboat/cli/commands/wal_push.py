"""lifeboat wal-push SOURCE PATH: for archive_command."""

from __future__ import annotations

from pathlib import Path

import click

from lifeboat.cli import output
from lifeboat.cli.main import json_option, state, wants_json


@click.command()
@click.argument("source")
@click.argument("path", type=click.Path(path_type=Path))
@json_option
def command(source: str, path: Path, as_json: bool) -> None:
    """Archive one WAL file (archive_command = 'lifeboat wal-push SOURCE %p').

    Exits 0 only once the file is durable in the repository, or with
    [sources.NAME.archive] async = true, in the local spool a background worker uploads;
    pushing an identical file again succeeds, a different file under an archived name fails."""
    from lifeboat.wal.commands import wal_push

    result = wal_push(state().config, source, path)
    if wants_json(as_json):
        output.print_json(result)
