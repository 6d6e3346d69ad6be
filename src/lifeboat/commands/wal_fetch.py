"""lifeboat wal-fetch SOURCE NAME DEST: for restore_command."""

from __future__ import annotations

from pathlib import Path

import click

from lifeboat import output
from lifeboat.cli import json_option, state, wants_json


@click.command()
@click.argument("source")
@click.argument("name")
@click.argument("destination", type=click.Path(path_type=Path))
@json_option
def command(source: str, name: str, destination: Path, as_json: bool) -> None:
    """Restore one archived WAL file (restore_command = 'lifeboat wal-fetch SOURCE %f %p').

    Exits 1 when the archive does not hold NAME, as PostgreSQL expects at the end of WAL."""
    from lifeboat.config.paths import resolve_config_path
    from lifeboat.wal_archive import fetch
    from lifeboat.wal_settings import WalSettings

    settings = WalSettings.load(resolve_config_path(state().config))
    size = fetch(settings.storage(source), source, name, destination, settings.decryptor)
    if wants_json(as_json):
        output.print_json({"name": name, "destination": str(destination), "size": size})
