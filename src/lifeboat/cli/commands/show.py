"""lifeboat show ID."""

from __future__ import annotations

import click

from lifeboat.cli import output
from lifeboat.cli.main import json_option, state, wants_json
from lifeboat.repo.catalog import Repository
from lifeboat.repo.choice import first_that_serves
from lifeboat.repo.manifest import Manifest, document


@click.command()
@click.argument("backup_id")
@click.option("--source", help="Source, when the id exists for several.")
@click.option(
    "--repo",
    "repo_name",
    help="Repository, any configured one (default: the first that has it, the source's first).",
)
@json_option
def command(backup_id: str, source: str | None, repo_name: str | None, as_json: bool) -> None:
    """Show a backup's manifest, and the repository it was read from."""
    ctx = state().context()

    def load(repo: Repository) -> Manifest:
        repo.ensure_initialised()
        return repo.load_manifest(source, backup_id) if source else repo.find(backup_id)

    repo, manifest = first_that_serves(ctx.repositories_to_read(source, repo_name), load)
    from lifeboat.cli.commands.list import hold_text
    from lifeboat.repo.drills import newest_verdicts
    from lifeboat.repo.records import current_holds
    from lifeboat.sources.registry import facts_of

    held = current_holds(repo.storage, manifest.source).get(manifest.id)
    drill = newest_verdicts(repo.storage, manifest.source, manifest.id).get(manifest.id)
    facts = facts_of(manifest)
    if wants_json(as_json):
        output.print_json(
            {
                **document(manifest),  # as its format stores it
                "facts": facts,  # as its kind describes it
                "repository": repo.name,
                "hold": held.summary() if held else None,
                "drill": drill.summary() if drill else None,
            }
        )
        return
    summary = {
        **manifest.summary(),
        "type": output.backup_type(manifest.type, manifest.safety),
        "repository": repo.name,
    }
    # a PostgreSQL backup's facts have rows of their own below; another kind's are its own
    for key in (
        "id",
        "source",
        "repository",
        "type",
        "database",
        "started_at",
        "finished_at",
        "server_version",
        "encryption",
    ):
        if manifest.postgres or key not in ("database", "server_version"):
            click.echo(f"{key:>15}: {summary[key]}")
    if not manifest.postgres:
        if manifest.version and not any(key.endswith("version") for key in facts):
            click.echo(f"{'version':>15}: {manifest.version}")
        for key, value in facts.items():
            click.echo(f"{key:>15}: {_fact(value)}")
    click.echo(
        f"{'size':>15}: {output.size(manifest.plain_size)} "
        f"(stored {output.size(manifest.stored_size)})"
    )
    click.echo(f"{'recipients':>15}: {', '.join(r['id'] for r in manifest.encryption.recipients)}")
    if manifest.labels:
        click.echo(f"{'labels':>15}: {output.labels(manifest.labels)}")
    if held is not None:
        click.echo(f"{'hold':>15}: {hold_text(held)} (by {held.by}, {held.at:%Y-%m-%d %H:%M} UTC)")
    click.echo(
        f"{'newest drill':>15}: "
        + (f"{drill.verdict}, started {drill.at:%Y-%m-%d %H:%M} UTC" if drill else "none")
    )
    for obj in manifest.objects:
        click.echo(f"{'object':>15}: {obj.name} sha256 {obj.sha256}")
    if manifest.physical is not None:
        wal = manifest.physical
        click.echo(f"{'timeline':>15}: {wal.timeline}")
        click.echo(
            f"{'WAL':>15}: {wal.start_lsn} ({wal.start_wal}) .. {wal.stop_lsn} ({wal.stop_wal})"
        )
    if manifest.evidence is not None:
        output.table(
            "row counts",
            ["table", "rows"],
            [[name, count] for name, count in manifest.evidence.row_counts.items()],
        )
        click.echo(
            f"{len(manifest.evidence.indexes)} indexes, "
            f"{len(manifest.evidence.constraints)} constraints recorded"
        )


def _fact(value: object) -> str:
    """A kind's fact on one line: a mapping as key=value pairs, a list comma-separated."""
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "none"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    return "none" if value is None else str(value)
