"""lifeboat wal-fetch SOURCE NAME DEST: for restore_command."""

from __future__ import annotations

from pathlib import Path

import click

from lifeboat.cli import output
from lifeboat.cli.main import json_option, state, wants_json


@click.command()
@click.argument("source")
@click.argument("name")
@click.argument("destination", type=click.Path(path_type=Path))
@click.option(
    "--repo",
    "repo_name",
    help="Fetch from this repository alone, any configured one (default: the source's, "
    "in order). A restore from a copy target writes it into restore_command.",
)
@json_option
def command(
    source: str, name: str, destination: Path, repo_name: str | None, as_json: bool
) -> None:
    """Restore one archived WAL file (restore_command = 'lifeboat wal-fetch SOURCE %f %p').

    Exits 1 when the archive does not hold NAME, as PostgreSQL expects at the end of WAL.
    Any other failure (a corrupted object, an unreachable repository, a missing key) exits
    255, which makes PostgreSQL stop recovery instead of ending it early and promoting a
    cluster that lacks the rest of the WAL.
    With [sources.NAME.archive] prefetch > 0, the next segments are downloaded ahead."""
    from lifeboat.wal.commands import wal_fetch

    result = wal_fetch(state().config, source, name, destination, repo_name)
    if wants_json(as_json):
        output.print_json(result)
