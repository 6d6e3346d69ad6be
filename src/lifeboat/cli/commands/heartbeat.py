"""lifeboat heartbeat SOURCE: keep a physical drill's RPO honest on an idle database."""

from __future__ import annotations

import click

from lifeboat.cli import output
from lifeboat.cli.main import json_option, state, wants_json


@click.command()
@click.argument("source")
@click.option(
    "--every",
    metavar="DURATION",
    help="Beat this often, e.g. 1m [default: heartbeat in [sources.SOURCE.objectives]].",
)
@click.option("--once", is_flag=True, help="Write one heartbeat and exit.")
@json_option
def command(source: str, every: str | None, once: bool, as_json: bool) -> None:
    """Write a heartbeat row (lifeboat.heartbeat) into the source, once or every DURATION
    until SIGTERM or Ctrl-C, so that an idle database still has a recent commit in its WAL.
    A failed beat in the loop is logged and the loop goes on. See docs/drills.md for the
    grants the source's role needs."""
    from lifeboat.errors import UsageError
    from lifeboat.ops.heartbeat import beat_once, beat_until_stopped, interval

    if once and every is not None:
        raise UsageError("--once writes one heartbeat: leave out --every")
    ctx = state().context()
    if once:
        written = beat_once(ctx, source)
        if wants_json(as_json):
            output.print_json({"source": source, "beat_at": written.isoformat()})
        else:
            click.echo(f"heartbeat written into {source} at {written.isoformat()}")
        return
    summary = beat_until_stopped(ctx, source, interval(ctx, source, every))
    if wants_json(as_json):
        output.print_json(summary.as_dict())
        return
    click.echo(f"stopped: {summary.beats} heartbeat(s) written, {summary.failures} failed")
