"""lifeboat wal-push SOURCE PATH: for archive_command."""

from __future__ import annotations

from pathlib import Path

import click

from lifeboat import output
from lifeboat.cli import json_option, state, wants_json


@click.command()
@click.argument("source")
@click.argument("path", type=click.Path(path_type=Path))
@json_option
def command(source: str, path: Path, as_json: bool) -> None:
    """Archive one WAL file (archive_command = 'lifeboat wal-push SOURCE %p').

    Exits 0 only once the file is durable in the repository; pushing an identical file
    again succeeds, a different file under an archived name fails."""
    from lifeboat.config.paths import resolve_config_path
    from lifeboat.wal_archive import push
    from lifeboat.wal_settings import WalSettings

    settings = WalSettings.load(resolve_config_path(state().config))
    result = push(settings.storage(source), source, path, settings.encryptor(), settings.level)
    if wants_json(as_json):
        output.print_json(
            {
                "name": result.name,
                "key": result.key,
                "plain_size": result.plain_size,
                "stored_size": result.stored_size,
                "already_archived": result.already_archived,
            }
        )
