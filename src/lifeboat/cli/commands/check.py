"""lifeboat check SOURCE: prove WAL archiving works end to end."""

from __future__ import annotations

import click

from lifeboat.cli import output
from lifeboat.cli.main import json_option, state, wants_json


@click.command()
@click.argument("source")
@click.option(
    "--timeout",
    type=float,
    default=60.0,
    show_default=True,
    help="Seconds to wait for the switched segment to arrive.",
)
@json_option
def command(source: str, timeout: float, as_json: bool) -> None:
    """Switch WAL, wait until the segment is in the repository, report the lag."""
    from lifeboat.ops.archiving import check_archiving

    result = check_archiving(state().context(), source, timeout)
    if wants_json(as_json):
        output.print_json(result.summary())
        return
    click.echo(f"archiving works: {result.segment} reached the repository in {result.seconds:.2f}s")
    click.echo(f"archived so far: {result.archived_count}, failed attempts: {result.failed_count}")
    for problem in result.problems:
        click.echo(f"warning: {problem}")
