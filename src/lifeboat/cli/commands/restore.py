"""lifeboat restore SOURCE."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from lifeboat.cli import output
from lifeboat.cli.main import dsn_option, json_option, state, wants_json
from lifeboat.errors import UsageError


def _typed_confirmation(database: str, tables: tuple[str, ...] = ()) -> bool:
    if not sys.stdin.isatty():
        return False
    what = (
        f"The rows of {', '.join(tables)} in database {database} will be replaced. "
        "Type the database's name to go on"
        if tables
        else f"Database {database} exists and will be replaced. Type its name to go on"
    )
    answer = click.prompt(
        what,
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
@dsn_option(
    "--target-dsn",
    help="Server to restore into (default: the source's); ${NAME} is taken from the environment.",
    password_file_option="--target-password-file",
)
@click.option(
    "--target-password-file",
    type=click.Path(path_type=Path),
    help="File holding the password for --target-dsn (else PGPASSWORD or ~/.pgpass).",
)
@click.option("--table", "tables", multiple=True, help="Restore only this table (repeatable).")
@click.option(
    "--repo",
    "repo_name",
    help="Repository to restore from, any configured one, a copy target included (default: "
    "the first that has the backup, the source's own first); PITR then fetches WAL from it.",
)
@click.option(
    "--create-roles",
    is_flag=True,
    help="Create the roles the backup needs that the target lacks, from the backup's globals.",
)
@click.option("--no-owner", is_flag=True, help="Objects and database owned by the restoring role.")
@click.option("--no-privileges", is_flag=True, help="Leave out GRANTs and REVOKEs (ACLs).")
@click.option("--yes", "-y", is_flag=True, help="Overwrite an existing target without asking.")
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    help="Logical: pg_restore jobs run in parallel (default: the number of cores).",
)
@click.option(
    "--work-dir",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    help="Logical: folder the decrypted dump is written to for pg_restore, and removed from "
    "(default: the system's temporary folder); needs room for the dump's plain size.",
)
@click.option(
    "--pgdata",
    type=click.Path(path_type=Path),
    help="Physical restore: the data directory to create (point-in-time recovery).",
)
@click.option("--to-time", help="Recover up to this time, e.g. '2026-03-03 14:30:00+00'.")
@click.option("--to-lsn", help="Recover up to this WAL location, e.g. 0/3000000.")
@click.option("--to-xid", help="Recover up to this transaction id.")
@click.option("--to-name", help="Recover up to this restore point (pg_create_restore_point).")
@click.option("--latest", is_flag=True, help="Recover everything the archive holds (default).")
@click.option(
    "--accept-gap",
    is_flag=True,
    help="Physical: when a WAL segment is missing before the target, recover up to the gap "
    "instead of refusing.",
)
@click.option(
    "--target-action",
    type=click.Choice(["promote", "pause", "shutdown"]),
    default="promote",
    show_default=True,
    help="What the server does at the target.",
)
@click.option(
    "--timeline",
    default="latest",
    show_default=True,
    help="Timeline to follow: latest, current or a number.",
)
@click.option("--start", is_flag=True, help="Start the restored cluster and wait for recovery.")
@click.option("--port", type=int, help="Port for the restored cluster (else its own setting).")
@click.option("--force", is_flag=True, help="Replace a non-empty --pgdata.")
@click.option(
    "--delta",
    is_flag=True,
    help="Restore over an existing --pgdata (server stopped), writing only what differs.",
)
@click.option(
    "--tablespace-map",
    "tablespace_maps",
    multiple=True,
    metavar="NAME=DIR",
    help="Physical: restore tablespace NAME (or OID) into DIR instead of its original folder.",
)
@click.option(
    "--to",
    "to_path",
    type=click.Path(path_type=Path),
    help="Redis, files and SQLite sources: where to restore (the RDB file, the folder the "
    "files go into, the database file); refused if something is there, unless --yes.",
)
@click.option(
    "--path",
    "paths",
    multiple=True,
    help="Files sources: restore only this path of the backup (a folder with what is under "
    "it; repeatable).",
)
@click.option(
    "--archive-mode",
    type=click.Choice(["preserve", "off"]),
    default="preserve",
    show_default=True,
    help="off: the restored cluster does not archive (a copy that must not write into the "
    "source's archive).",
)
@json_option
def command(
    source: str,
    backup_id: str,
    target_db: str | None,
    target_dsn: str | None,
    target_password_file: Path | None,
    tables: tuple[str, ...],
    repo_name: str | None,
    create_roles: bool,
    no_owner: bool,
    no_privileges: bool,
    yes: bool,
    jobs: int | None,
    work_dir: Path | None,
    pgdata: Path | None,
    to_time: str | None,
    to_lsn: str | None,
    to_xid: str | None,
    to_name: str | None,
    latest: bool,
    accept_gap: bool,
    target_action: str,
    timeline: str,
    start: bool,
    port: int | None,
    force: bool,
    delta: bool,
    tablespace_maps: tuple[str, ...],
    archive_mode: str,
    to_path: Path | None,
    paths: tuple[str, ...],
    as_json: bool,
) -> None:
    """Restore a backup, check it against its manifest, then put it in place.

    With --pgdata: restore a physical backup into a new data directory and recover to a
    point in time through the WAL archive. With --to: restore a Redis, files or SQLite
    backup to that path."""
    postgres_only = {
        "--target-db": target_db,
        "--target-dsn": target_dsn,
        "--target-password-file": target_password_file,
        "--table": tables,
        "--create-roles": create_roles,
        "--no-owner": no_owner,
        "--no-privileges": no_privileges,
        "--jobs": jobs,
        "--work-dir": work_dir,
        "--pgdata": pgdata,
        "--to-time": to_time,
        "--to-lsn": to_lsn,
        "--to-xid": to_xid,
        "--to-name": to_name,
        "--latest": latest,
        "--accept-gap": accept_gap,
        "--start": start,
        "--port": port,
        "--force": force,
        "--delta": delta,
        "--tablespace-map": tablespace_maps,
    }
    if to_path is not None or paths or state().context().source(source).type != "postgres":
        given = [option for option, value in postgres_only.items() if value]
        _to_path(source, to_path, paths, backup_id, yes, repo_name, given, as_json)
        return
    targets = {"time": to_time, "lsn": to_lsn, "xid": to_xid, "name": to_name}
    chosen = {kind: value for kind, value in targets.items() if value}
    if pgdata is not None:
        if target_dsn or target_password_file or target_db or tables:
            raise UsageError(
                "--target-dsn, --target-password-file, --target-db and --table are for a "
                "logical restore, not with --pgdata"
            )
        if create_roles or no_owner or no_privileges or jobs or work_dir:
            raise UsageError(
                "--create-roles, --no-owner, --no-privileges, --jobs and --work-dir are for a "
                "logical restore, not with --pgdata"
            )
        if len(chosen) + int(latest) > 1:
            raise UsageError("give one of --to-time, --to-lsn, --to-xid, --to-name, --latest")
        _physical(
            source,
            pgdata,
            chosen,
            backup_id,
            target_action,
            timeline,
            start,
            port,
            force,
            delta,
            _tablespace_map(tablespace_maps),
            archive_mode,
            as_json,
            repo_name,
            accept_gap,
        )
        return
    if target_password_file is not None and target_dsn is None:
        raise UsageError("--target-password-file goes with --target-dsn")
    if tables and (create_roles or no_owner or no_privileges):
        raise UsageError(
            "--create-roles, --no-owner and --no-privileges are for a full restore; --table "
            "keeps an existing table's owner and grants, and a table it creates belongs to "
            "the restoring role"
        )
    if tables and (jobs or work_dir):
        raise UsageError(
            "--jobs and --work-dir are for a full restore; --table streams the tables' rows "
            "into one transaction"
        )
    if chosen or latest or start or delta or force or tablespace_maps or accept_gap:
        raise UsageError(
            "--to-*, --latest, --accept-gap, --start, --delta, --force and --tablespace-map "
            "need --pgdata (a physical restore)"
        )
    from lifeboat.postgres.dbprops import Ownership
    from lifeboat.sources.postgres.kinds import LogicalRestoreRequest, PostgresLogical

    request = LogicalRestoreRequest(
        backup=backup_id,
        target_db=target_db,
        target_dsn=target_dsn,
        target_password_file=target_password_file,
        tables=tables,
        assume_yes=yes,
        confirm=lambda database: _typed_confirmation(database, tables),
        repository=repo_name,
        ownership=Ownership(owners=not no_owner, privileges=not no_privileges),
        create_roles=create_roles,
        jobs=jobs,
        work_dir=work_dir,
    )
    result = PostgresLogical().restore(state().context(), source, request)
    if wants_json(as_json):
        output.print_json(result.summary())
        return
    checked = result.check.tables
    rows = sum(t.actual or 0 for t in checked)
    click.echo(
        f"restored {result.manifest.source}/{result.manifest.id} from {result.repository} "
        f"into {result.database} "
        f"({result.target}) in {result.seconds:.1f}s"
    )
    if result.safety_backup:
        click.echo(f"safety backup of the previous {result.database}: {result.safety_backup}")
    if result.created_roles:
        click.echo(f"created roles: {', '.join(result.created_roles)}")
    click.echo(
        f"verified: {len(checked)} tables, {rows} rows match the backup; "
        f"{result.check.checked_indexes} indexes and "
        f"{result.check.checked_constraints} constraints present"
        if result.check.ok
        else "verification FAILED: " + "; ".join(result.check.problems())
    )
    for note in result.notes:
        click.echo(f"note: {note}")


def _tablespace_map(pairs: tuple[str, ...]) -> dict[str, Path]:
    mapping = {}
    for pair in pairs:
        name, equals, folder = pair.partition("=")
        if not equals or not name or not folder:
            raise UsageError(f"--tablespace-map {pair!r} is not NAME=DIR")
        mapping[name] = Path(folder)
    return mapping


def _physical(
    source: str,
    pgdata: Path,
    chosen: dict[str, str],
    backup_id: str,
    action: str,
    timeline: str,
    start: bool,
    port: int | None,
    force: bool,
    delta: bool,
    tablespace_map: dict[str, Path],
    archive_mode: str,
    as_json: bool,
    repo_name: str | None = None,
    accept_gap: bool = False,
) -> None:
    from lifeboat.errors import RestoreError
    from lifeboat.policy.recovery import RecoveryTarget
    from lifeboat.sources.postgres.kinds import PhysicalRestoreRequest, PostgresPhysical

    kind, value = next(iter(chosen.items())) if chosen else ("latest", None)
    target = RecoveryTarget(kind, value, action, timeline)  # type: ignore[arg-type]
    cli = state()
    ctx: Any = cli.context()
    request = PhysicalRestoreRequest(
        pgdata,
        target,
        backup=None if backup_id == "latest" else backup_id,
        force=force,
        delta=delta,
        tablespace_map=tablespace_map,
        archive_mode=archive_mode,  # type: ignore[arg-type]
        start=start,
        port=port,
        config_path=ctx.config_path,
        repository=repo_name,
        accept_gap=accept_gap,
    )
    result = PostgresPhysical().restore(ctx, source, request)
    gap = result.reach.gap_text()
    if wants_json(as_json):
        output.print_json(result.summary())
    else:
        click.echo(
            f"restored {source}/{result.manifest.id} from {result.repository} into "
            f"{result.pgdata} in {result.seconds:.1f}s"
        )
        if result.started:
            point = result.recovered_to or "the end of the archive"
            if not result.recovered_point_read:
                point = "unknown (restore could not connect to the restored server to read it)"
            lsn = f" (LSN {result.recovered_lsn})" if result.recovered_lsn else ""
            end = result.reach.summary()["archive_end"]
            click.echo(f"recovered to: {point}{lsn}; the archive holds WAL up to {end}")
        else:
            click.echo(
                "recovery is configured; start the cluster to replay the WAL (or use --start)"
            )
        if gap:
            click.echo(f"WAL gap accepted: {gap}")
        if result.shortfall:
            click.echo(f"SHORTFALL: {result.shortfall}")
    if result.shortfall:
        # the cluster runs, promoted short of what the archive holds: not a success
        raise RestoreError(result.shortfall)


def _to_path(
    source: str,
    to_path: Path | None,
    paths: tuple[str, ...],
    backup_id: str,
    yes: bool,
    repo_name: str | None,
    postgres_options: list[str],
    as_json: bool,
) -> None:
    from lifeboat.sources.base import PathRestoreRequest
    from lifeboat.sources.registry import path_kind

    ctx = state().context()
    source_type = ctx.source(source).type
    kind = path_kind(source, source_type)
    if postgres_options:
        raise UsageError(
            f"{', '.join(postgres_options)}: for PostgreSQL sources; {source} is a "
            f"{source_type} source (restore it with --to PATH)"
        )
    if to_path is None:
        raise UsageError(f"{source} is a {source_type} source: give --to PATH")
    if paths and source_type != "files":
        raise UsageError(f"--path is for files sources; {source} is a {source_type} source")
    request = PathRestoreRequest(
        to=to_path, backup=backup_id, paths=paths, assume_yes=yes, repository=repo_name
    )
    result = kind.restore(ctx, source, request)
    if wants_json(as_json):
        output.print_json(result.summary())
        return
    for line in result.lines():
        click.echo(line)
