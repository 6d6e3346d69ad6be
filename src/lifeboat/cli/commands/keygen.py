"""lifeboat keygen: a new age key pair; the public key goes into the config."""

from __future__ import annotations

from pathlib import Path

import click

from lifeboat.cli import output
from lifeboat.cli.main import json_option, wants_json
from lifeboat.pipeline.crypto import write_identity


@click.command()
@click.option(
    "--output",
    "-o",
    "output_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Where to write the private key (mode 0600).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@json_option
def command(output_path: Path, force: bool, as_json: bool) -> None:
    """Create an age key pair and print the public key."""
    public = write_identity(output_path, force)
    if wants_json(as_json):
        output.print_json({"public_key": public, "identity_file": str(output_path)})
    else:
        click.echo(public)
