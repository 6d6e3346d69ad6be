"""lifeboat keygen: a new age key pair; the public key goes into the config."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import click

from lifeboat.cli import output
from lifeboat.cli.main import json_option, wants_json
from lifeboat.errors import UsageError
from lifeboat.pipeline.crypto import generate_age_identity


def write_identity(path: Path, force: bool = False) -> str:
    """Write an age identity file in age-keygen's format (mode 0600); returns the public key."""
    if path.exists() and not force:
        raise UsageError(f"{path} exists: refusing to overwrite a key (use --force)")
    secret, public = generate_age_identity()
    stamp = datetime.now(UTC).replace(microsecond=0).isoformat()
    text = f"# created: {stamp}\n# public key: {public}\n{secret}\n"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | (0 if force else os.O_EXCL)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)
    return public


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
