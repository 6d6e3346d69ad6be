"""lifeboat runbook SOURCE [--output FILE]."""

from __future__ import annotations

from pathlib import Path

import click

from lifeboat.cli.main import state
from lifeboat.errors import LifeboatError, RepositoryError


@click.command()
@click.argument("source")
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the runbook into this file (default: print it).",
)
def command(source: str, output: Path | None) -> None:
    """The disaster-recovery runbook of SOURCE in Markdown: where its backups are, the
    commands that restore them with this configuration, the keys they need, the time the
    newest drills took (docs/compliance.md). Exits 1, after writing it, when one of the
    source's repositories cannot be read."""
    from lifeboat.ops.runbook import build
    from lifeboat.ops.runbook_markdown import render
    from lifeboat.util.fs import write_atomically

    book = build(state().context(), source)
    text = render(book)
    if output is None:
        click.echo(text, nl=False)
    else:
        try:
            write_atomically(output, text.encode())
        except OSError as exc:
            raise LifeboatError(
                f"cannot write the runbook to {output}: {exc.strerror or exc}"
            ) from None
        click.echo(f"runbook of {source} written to {output}")
    if book.unreadable:
        # the runbook is written all the same (it names the repository), but one it may
        # send the operator to is out of reach now: monitoring must see that
        first = book.unreadable[0]
        raise RepositoryError(
            f"repository {first.name} cannot be read: {first.error}; the runbook says so"
        )
