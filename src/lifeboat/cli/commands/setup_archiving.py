"""lifeboat setup-archiving SOURCE: the postgresql.conf settings, checked against the server."""

from __future__ import annotations

import click

from lifeboat.cli import output
from lifeboat.cli.main import json_option, state, wants_json


@click.command()
@click.argument("source")
@json_option
def command(source: str, as_json: bool) -> None:
    """Print the settings WAL archiving needs and whether the server has them."""
    from lifeboat.ops.archiving import check_settings

    checks = check_settings(state().context(), source)
    if wants_json(as_json):
        output.print_json(
            [{"name": c.name, "wanted": c.wanted, "current": c.current, "ok": c.ok} for c in checks]
        )
        return
    click.echo("# postgresql.conf (archive_mode and wal_level need a restart)")
    for check in checks:
        value = check.wanted.replace("'", "''")
        click.echo(f"{check.name} = '{value}'")
    missing = [c for c in checks if not c.ok]
    click.echo()
    if missing:
        for check in missing:
            click.echo(f"# to change: {check.name} is now {check.current!r}")
    else:
        click.echo("# the server has these settings; run `lifeboat check` to prove archiving works")
