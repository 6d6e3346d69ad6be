"""lifeboat notify test NAME."""

from __future__ import annotations

import click

from lifeboat.cli import output
from lifeboat.cli.main import json_option, state, wants_json


@click.group()
def command() -> None:
    """Notification channels ([notifications.NAME] in the config)."""


@command.command("test")
@click.argument("name")
@json_option
def test(name: str, as_json: bool) -> None:
    """Send a test message through channel NAME; exit 1 when it cannot be delivered."""
    from lifeboat.notify.deliver import send_test

    send_test(state().context().config, name)
    if wants_json(as_json):
        output.print_json({"channel": name, "delivered": True})
    else:
        click.echo(f"test message delivered through {name}")
