"""lifeboat restore SOURCE."""

from __future__ import annotations

import sys

import click

from lifeboat import output
from lifeboat.cli import json_option, state, wants_json


def _typed_confirmation(database: str) -> bool:
    if not sys.stdin.isatty():
        return False
    answer = click.prompt(
        f"Database {database} exists and will be replaced. Type its name to go on",
        default="",
        show_default=False,
        err=True,
    )
    return bool(answer == database)


@click.command()
@click.argument("source")
@click.option(
    "--backup", "backup_id", default="latest", show_default=True, help="Backup id or latest."
)
@click.option("--target-db", help="Database to restore into (default: the backed-up one).")
@click.option("--target-dsn", help="Server to restore into (default: the source's).")
@click.option("--table", "tables", multiple=True, help="Restore only this table (repeatable).")
@click.option("--repo", "repo_name", help="Repository to restore from.")
@click.option("--yes", "-y", is_flag=True, help="Overwrite an existing target without asking.")
@json_option
def command(
    source: str,
    backup_id: str,
    target_db: str | None,
    target_dsn: str | None,
    tables: tuple[str, ...],
    repo_name: str | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Restore a backup, check it against its manifest, then put it in place."""
    from lifeboat.restore import restore_logical

    result = restore_logical(
        state().context(),
        source,
        backup=backup_id,
        target_db=target_db,
        target_dsn=target_dsn,
        tables=tables,
        assume_yes=yes,
        confirm=_typed_confirmation,
        repository=repo_name,
    )
    if wants_json(as_json):
        output.print_json(result.summary())
        return
    checked = result.check.tables
    rows = sum(t.actual or 0 for t in checked)
    click.echo(
        f"restored {result.manifest.source}/{result.manifest.id} into {result.database} "
        f"({result.target}) in {result.seconds:.1f}s"
    )
    if result.safety_backup:
        click.echo(f"safety backup of the previous {result.database}: {result.safety_backup}")
    click.echo(
        f"verified: {len(checked)} tables, {rows} rows match the backup; "
        f"{len(result.manifest.evidence.indexes)} indexes and "
        f"{len(result.manifest.evidence.constraints)} constraints present"
        if result.check.ok
        else "verification FAILED: " + "; ".join(result.check.problems())
    )
