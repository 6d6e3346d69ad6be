"""lifeboat verify [SOURCE] [--deep]."""

from __future__ import annotations

import click

from lifeboat.cli import output
from lifeboat.cli.main import json_option, state, wants_json
from lifeboat.cli.ping import pings
from lifeboat.cli.textfile import writes_textfile
from lifeboat.errors import IntegrityError


@click.command()
@click.argument("source", required=False)
@click.option("--deep", is_flag=True, help="Decrypt, decompress and pg_restore --list each backup.")
@click.option(
    "--repo", "repo_name", help="Only this repository, any configured one (default: every one)."
)
@json_option
@writes_textfile("verify")
@pings
def command(source: str | None, deep: bool, repo_name: str | None, as_json: bool) -> None:
    """Check every backup against its manifest."""
    from lifeboat.notify import outcomes
    from lifeboat.notify.deliver import announce, failure_announced
    from lifeboat.ops.verify import verify

    ctx = state().context()
    with failure_announced(ctx.config, lambda line: outcomes.verification(source, [line])):
        report = verify(ctx, source, deep, repo_name)
    for name in sorted({c.source for c in report.checks}):
        problems = [
            f"{c.source}/{c.backup}: {c.problems[0]}"
            for c in report.checks
            if c.source == name and not c.ok
        ]
        announce(ctx.config, outcomes.verification(name, problems))
    if wants_json(as_json):
        output.print_json([c.summary() for c in report.checks])
    else:
        for check in report.checks:
            status = "ok" if check.ok else "FAILED: " + "; ".join(check.problems)
            click.echo(f"{check.repository} {check.source}/{check.backup} {status}")
        kind = "deep" if deep else "stored checksums"
        click.echo(f"{len(report.checks)} backup(s) verified ({kind})")
    if not report.ok:
        failed = [c for c in report.checks if not c.ok]
        raise IntegrityError(
            f"{len(failed)} backup(s) failed verification: "
            + "; ".join(f"{c.source}/{c.backup}: {c.problems[0]}" for c in failed[:3])
        )
