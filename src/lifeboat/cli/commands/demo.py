"""lifeboat demo: the whole story on a throwaway PostgreSQL, in one command."""

from __future__ import annotations

from pathlib import Path

import click

from lifeboat.cli import output
from lifeboat.cli.main import json_option, wants_json


@click.command()
@click.option(
    "--workdir",
    type=click.Path(path_type=Path),
    default=Path("lifeboat-demo"),
    show_default=True,
    help="Folder for the repository, key and config (replaced).",
)
@click.option("--size-mb", type=int, default=100, show_default=True, help="Sample data size.")
@click.option("--keep", is_flag=True, help="Leave the PostgreSQL cluster running.")
@json_option
def command(workdir: Path, size_mb: int, keep: bool, as_json: bool) -> None:
    """Back up, drop, restore and compare a sample warehouse database."""
    from lifeboat.cli import progress
    from lifeboat.demo.run import run_demo
    from lifeboat.util.progress import Reporter

    quiet = wants_json(as_json)

    def say(line: str) -> None:
        if not quiet:
            click.echo(f"- {line}")

    result = run_demo(workdir, size_mb, keep, say, Reporter() if quiet else progress.for_terminal())
    summary = {
        "postgres": result.postgres_version,
        "rows": result.rows,
        "database_bytes": result.database_bytes,
        "backup_id": result.backup_id,
        "dump_bytes": result.plain_bytes,
        "stored_bytes": result.stored_bytes,
        "seconds": {k: round(v, 2) for k, v in result.timings.items()},
        "identical": result.identical,
        "verified_tables": result.verified_tables,
        "drill": {
            "verdict": result.drill_verdict,
            "rto_seconds": result.drill_rto,
            "rpo_seconds": result.drill_rpo,
        },
        "workdir": str(result.workdir),
    }
    if quiet:
        output.print_json(summary)
        return
    ratio = result.plain_bytes / result.stored_bytes if result.stored_bytes else 0
    t = result.timings
    output.table(
        "Lifeboat demo",
        ["what", "result"],
        [
            ["PostgreSQL", result.postgres_version],
            ["rows", ", ".join(f"{k} {v:,}" for k, v in result.rows.items())],
            ["database size", output.size(result.database_bytes)],
            [
                "backup",
                f"{result.backup_id}: {output.size(result.plain_bytes)} dump -> "
                f"{output.size(result.stored_bytes)} stored (x{ratio:.1f}), {t['backup']:.1f}s",
            ],
            ["deep verify", f"ok, {t['verify']:.1f}s"],
            [
                "restore drill",
                f"{result.drill_verdict} on a scratch PostgreSQL: "
                f"RTO {result.drill_rto or 0:.1f}s, RPO {result.drill_rpo or 0:.1f}s "
                "(objectives 1h), recorded in the repository",
            ],
            ["restore", f"{t['restore']:.1f}s, {result.verified_tables} tables match the manifest"],
            [
                "data after restore",
                "identical (md5 of every table)" if result.identical else "DIFFERENT",
            ],
            ["repository, key, config", str(result.workdir)],
        ],
    )
