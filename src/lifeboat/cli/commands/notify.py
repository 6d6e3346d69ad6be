"""lifeboat notify test NAME."""

from __future__ import annotations

import click

from lifeboat.cli.main import state


@click.group()
def command() -> None:
    """Notification channels ([notifications.NAME] in the config)."""


@command.command("test")
@click.argument("name")
def test(name: str) -> None:
    """Send a test message through channel NAME; exit 1 when it cannot be delivered."""
    from lifeboat.notify.deliver import send_test

    send_test(state().context().config, name)
    click.echo(f"test message delivered through {name}")
