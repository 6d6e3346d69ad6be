"""lifeboat prune [SOURCE] [--repo REPO] [--dry-run]."""

from __future__ import annotations

from functools import partial

import click

from lifeboat.cli import output
from lifeboat.cli.main import json_option, state, wants_json
from lifeboat.cli.ping import pings
from lifeboat.cli.textfile import writes_textfile
from lifeboat.config.model import archives_wal


@click.command()
@click.argument("source", required=False)
@click.option(
    "--repo", "repo_name", help="Prune only this repository (default: each of the source's)."
)
@click.option("--dry-run", is_flag=True, help="Show what would be kept and deleted, and why.")
@json_option
@writes_textfile("prune")
@pings
def command(source: str | None, repo_name: str | None, dry_run: bool, as_json: bool) -> None:
    """Apply the retention policy: delete the backups no rule keeps, and the WAL no kept
    backup needs. Shows every backup, its rules and the decision."""
    from lifeboat.notify import outcomes
    from lifeboat.notify.deliver import announce, failure_announced
    from lifeboat.ops.prune import policy_for, prune

    ctx = state().context()
    sources = [source] if source else list(ctx.config.sources)
    reports = []
    for name in sources:
        with failure_announced(ctx.config, partial(outcomes.job_failed, "prune", name)):
            for repo in ctx.repositories_for(name, repo_name):
                policy, zone = policy_for(ctx.config, name, repo.name)
                reports.append(prune(repo, name, policy, zone, dry_run))
        if not dry_run:
            announce(ctx.config, outcomes.job_succeeded("prune", name))
    if not dry_run:
        for report in reports:
            applied = outcomes.prune_reported(report.summary())
            if applied is not None:
                announce(ctx.config, applied)
    if wants_json(as_json):
        output.print_json([report.summary() for report in reports])
        return
    for report in reports:
        summary = report.summary()
        verb = "would delete" if dry_run else "deleted"
        output.table(
            f"{report.source} in {report.repository}" + (" (dry run)" if dry_run else ""),
            ["id", "type", "started", "decision", "rules", "why"],
            [
                [
                    b["id"],
                    output.backup_type(b["type"], b["safety"]),
                    b["started_at"][:19].replace("T", " "),
                    b["decision"],
                    ", ".join(b["rules"]) or "-",
                    "; ".join(b["reasons"]),
                ]
                for b in summary["backups"]
            ],
        )
        wal = summary["wal"]
        wal_line = (
            f"; WAL: {wal['expired']} files before {wal['oldest_kept']} {verb}"
            if wal["oldest_kept"]
            else "; WAL: kept (no physical backup is kept)"
        )
        if not archives_wal(ctx.source(report.source)):
            wal_line = ""
        deleted = len(summary["delete"])
        kept = len(summary["backups"]) - deleted
        click.echo(f"{deleted} backups {verb}, {kept} kept{wal_line}")
