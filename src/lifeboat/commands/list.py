"""lifeboat list [SOURCE]."""

from __future__ import annotations

import click

from lifeboat import output
from lifeboat.cli import json_option, state, wants_json


@click.command()
@click.argument("source", required=False)
@click.option("--repo", "repo_name", help="Repository to list (default: the first).")
@json_option
def command(source: str | None, repo_name: str | None, as_json: bool) -> None:
    """List committed backups, oldest first."""
    ctx = state().context()
    repo = (
        ctx.repository(repo_name)
        if repo_name
        else (ctx.repository_for(source) if source else ctx.repository())
    )
    repo.ensure_initialised()
    manifests = repo.list_backups(source)
    if wants_json(as_json):
        output.print_json([{**m.summary(), "repository": repo.name} for m in manifests])
        return
    if not manifests:
        click.echo(f"no backups in {repo.name}" + (f" for {source}" if source else ""))
        return
    output.table(
        None,
        ["id", "source", "type", "database", "size", "stored", "took", "labels"],
        [
            [
                m.id,
                m.source,
                m.type,
                m.database,
                output.size(m.plain_size),
                output.size(m.stored_size),
                f"{m.summary()['duration_s']:.1f}s",
                ",".join(f"{k}={v}" for k, v in m.labels.items()),
            ]
            for m in manifests
        ],
    )
