"""lifeboat wal-stream SOURCE: pg_receivewal into the repository, until stopped."""

from __future__ import annotations

from pathlib import Path

import click

from lifeboat.cli import output
from lifeboat.cli.main import json_option, state, wants_json


@click.command()
@click.argument("source")
@click.option(
    "--slot", metavar="NAME", help="Physical replication slot [default: lifeboat_SOURCE]."
)
@click.option(
    "--create-slot/--no-create-slot",
    default=True,
    show_default=True,
    help="Create the slot when it does not exist.",
)
@click.option(
    "--synchronous",
    is_flag=True,
    help="Flush every write and confirm it at once, so the stream can be a synchronous standby.",
)
@click.option(
    "--application-name",
    metavar="NAME",
    help="What synchronous_standby_names matches [default: lifeboat_SOURCE].",
)
@click.option(
    "--directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Staging folder [default: $XDG_STATE_HOME/lifeboat/stream/SOURCE].",
)
@click.option(
    "--partial-interval",
    type=click.FloatRange(min=0.2),
    default=5.0,
    show_default=True,
    help="Seconds between uploads of the segment being received, when it changed.",
)
@json_option
def command(
    source: str,
    slot: str | None,
    create_slot: bool,
    synchronous: bool,
    application_name: str | None,
    directory: Path | None,
    partial_interval: float,
    as_json: bool,
) -> None:
    """Stream WAL with pg_receivewal into the repository until SIGTERM or Ctrl-C.

    Completed segments go to the WAL archive; the segment being received is uploaded every
    --partial-interval seconds, at once when the connection drops, and before exiting.
    wal-fetch serves it when the archive lacks that segment. See docs/wal-stream.md for the
    trade-off of --synchronous."""
    from lifeboat.wal.stream import (
        StreamOptions,
        check_slot_name,
        default_directory,
        default_name,
        stream,
    )

    ctx = state().context()
    ctx.source(source)
    options = StreamOptions(
        slot=check_slot_name(slot or default_name(source)),
        application_name=application_name or default_name(source),
        directory=(directory or default_directory(source)).absolute(),
        create_slot=create_slot,
        synchronous=synchronous,
        partial_interval=partial_interval,
    )
    summary = stream(ctx, source, options)
    if wants_json(as_json):
        output.print_json(summary.as_dict())
        return
    click.echo(
        f"stopped: {len(summary.uploaded)} file(s) archived, "
        f"{summary.partial_uploads} partial upload(s), {summary.restarts} restart(s)"
    )
