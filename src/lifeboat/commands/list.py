"""lifeboat list [SOURCE]."""

from __future__ import annotations

import click

from lifeboat import output
from lifeboat.cli import json_option, state, wants_json


@click.command()
@click.argument("source", required=False)
@click.option(
    "--repo", "repo_name", help="Repository to list (default: each of the source's, or all)."
)
@json_option
def command(source: str | None, repo_name: str | None, as_json: bool) -> None:
    """List committed backups, oldest first."""
    ctx = state().context()
    if repo_name:
        repos = [ctx.repository(repo_name)]
    elif source:
        repos = ctx.repositories_for(source)
    else:
        repos = list(ctx.repositories.values())
    listed = []
    for repo in repos:
        repo.ensure_initialised()
        listed += [(repo.name, m) for m in repo.list_backups(source)]
    if wants_json(as_json):
        output.print_json([{**m.summary(), "repository": name} for name, m in listed])
        return
    if not listed:
        names = ", ".join(r.name for r in repos)
        click.echo(f"no backups in {names}" + (f" for {source}" if source else ""))
        return
    output.table(
        None,
        ["repository", "id", "source", "type", "database", "size", "stored", "took", "labels"],
        [
            [
                name,
                m.id,
                m.source,
                m.type,
                m.database,
                output.size(m.plain_size),
                output.size(m.stored_size),
                f"{m.summary()['duration_s']:.1f}s",
                ",".join(f"{k}={v}" for k, v in m.labels.items()),
            ]
            for name, m in listed
        ],
    )
