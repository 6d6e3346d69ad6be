"""lifeboat metrics [--textfile FILE]."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lifeboat.cli.main import state
from lifeboat.errors import LifeboatError


@click.command()
@click.option(
    "--textfile",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write them atomically into FILE (a .prom file for node_exporter) instead of "
    "printing them; the last runs FILE holds are kept.",
)
def command(textfile: Path | None) -> None:
    """Print the metrics once, read from the repositories now, in the Prometheus text
    format: for cron users, and to see what the daemon serves."""
    from lifeboat.metrics.runs import LastRuns
    from lifeboat.metrics.textfile import render, write_textfile

    ctx = state().context()
    if textfile is None:
        sys.stdout.buffer.write(render(ctx, LastRuns()))
        return
    try:
        write_textfile(ctx, textfile, None)
    except OSError as exc:
        raise LifeboatError(f"cannot write {textfile}: {exc.strerror or exc}") from None
