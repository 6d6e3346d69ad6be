"""lifeboat init: create every configured repository."""

from __future__ import annotations

import click

from lifeboat.cli import output
from lifeboat.cli.main import json_option, state, wants_json


@click.command()
@click.option("--repo", "repo_name", help="Only this repository.")
@json_option
def command(repo_name: str | None, as_json: bool) -> None:
    """Create the repository (idempotent)."""
    ctx = state().context()
    names = [repo_name] if repo_name else list(ctx.repositories)
    results = []
    for name in names:
        repo = ctx.repository(name)
        created, marker = repo.init()
        results.append(
            {
                "repository": name,
                "url": repo.storage.url,
                "created": created,
                "repository_id": marker.get("repository_id"),
            }
        )
    if wants_json(as_json):
        output.print_json(results)
        return
    for item in results:
        verb = "initialised" if item["created"] else "already initialised"
        click.echo(f"repository {item['repository']} ({item['url']}) {verb}")
