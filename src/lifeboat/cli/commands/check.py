"""lifeboat check SOURCE: prove WAL archiving works end to end (PostgreSQL); for another
kind of source, what would keep a backup of it from working."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from lifeboat.cli import output
from lifeboat.cli.main import json_option, state, wants_json
from lifeboat.errors import EXIT_FAILED

if TYPE_CHECKING:
    from lifeboat.context import Context


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
    """Switch WAL, wait until the segment is in the repository, report the lag. For a
    Redis, files or SQLite source: its kind's checks (server, tools, paths), exit 1 with
    what would keep a backup from working."""
    from lifeboat.ops.archiving import check_archiving

    ctx = state().context()
    config = ctx.source(source)
    if config.type != "postgres":
        _check_kind(ctx, source, config.type, as_json)
        return
    result = check_archiving(ctx, source, timeout)
    if wants_json(as_json):
        output.print_json(result.summary())
        return
    click.echo(f"archiving works: {result.segment} reached the repository in {result.seconds:.2f}s")
    click.echo(f"archived so far: {result.archived_count}, failed attempts: {result.failed_count}")
    for problem in result.problems:
        click.echo(f"warning: {problem}")


def _check_kind(ctx: Context, source: str, source_type: str, as_json: bool) -> None:
    from lifeboat.sources.registry import path_kind

    problems = path_kind(source, source_type).checks(ctx, source)
    if wants_json(as_json):
        output.print_json(
            {"source": source, "type": source_type, "ok": not problems, "problems": problems}
        )
    elif not problems:
        click.echo(f"{source} ({source_type}): nothing keeps a backup from working")
    for problem in problems:
        click.echo(f"lifeboat: error: {source}: {problem}", err=True)
    if problems:
        sys.exit(EXIT_FAILED)
