"""lifeboat drill [SOURCE | --all] [--backup ID | --pick latest|oldest|random]."""

from __future__ import annotations

import click

from lifeboat.cli import output
from lifeboat.cli.main import json_option, state, wants_json
from lifeboat.cli.ping import pings
from lifeboat.cli.textfile import writes_textfile
from lifeboat.errors import DrillFailedError, UsageError
from lifeboat.repo.drills import DrillRecord
from lifeboat.util.proc import interrupt_on_sigterm


def _seconds(value: float | None) -> str:
    from lifeboat.policy.drill import seconds_text

    return "-" if value is None else seconds_text(value)


def _print_record(record: DrillRecord) -> None:
    from lifeboat.policy.drill import evidence_units

    verdict = "PASS" if record.passed else "FAIL"
    click.echo(
        f"{verdict} {record.source}/{record.backup} ({record.kind}, {record.picked}, "
        f"depth {record.depth}) on {record.target}"
    )
    objective = record.objectives
    rto_goal = objective.get("rto_seconds")
    rpo_goal = objective.get("rpo_seconds")
    click.echo(
        f"  RTO {_seconds(record.rto_seconds)}"
        + (f" (objective {_seconds(rto_goal)})" if rto_goal else "")
        + f", RPO {_seconds(record.rpo_seconds)} by {record.rpo_method or 'nothing'}"
        + (f" (objective {_seconds(rpo_goal)})" if rpo_goal else "")
    )
    click.echo("  phases: " + ", ".join(f"{p.name} {_seconds(p.seconds)}" for p in record.phases))
    if record.tables:
        rows = sum(t.expected for t in record.tables)
        matching = sum(1 for t in record.tables if t.ok)
        parts, counted = evidence_units(record.kind)
        click.echo(f"  evidence: {matching}/{len(record.tables)} {parts} match ({rows} {counted})")
    for check in record.checks:
        click.echo(f"  {'ok ' if check.ok else 'FAILED'} {check.name}: {check.message}")
    for reason in record.reasons:
        click.echo(f"  reason: {reason}")
    if record.repositories:
        click.echo(f"  recorded in {', '.join(record.repositories)}")


@click.command()
@click.argument("source", required=False)
@click.option("--all", "every_source", is_flag=True, help="Drill every configured source.")
@click.option("--backup", "backup_id", help="Drill this backup (default: see --pick).")
@click.option(
    "--pick",
    type=click.Choice(["latest", "oldest", "random"]),
    default="latest",
    show_default=True,
    help="Which backup of each type the source has: the newest, the oldest kept, or one at random.",
)
@click.option("--within", help="With --pick: only backups finished this recently, e.g. 30d.")
@click.option(
    "--to-time", help="Physical: recover up to this time instead of the end of the archive."
)
@click.option(
    "--depth",
    type=click.Choice(["quick", "standard", "full"]),
    help="Override the configured depth (quick: restore and evidence; standard: also read "
    "every table; full: also amcheck).",
)
@click.option("--operator", help="Who runs the drill, for the record (default: the OS user).")
@click.option(
    "--repo", "repo_name", help="Drill from this repository (default: the first that has it)."
)
@json_option
@writes_textfile("drill")
@pings
def command(
    source: str | None,
    every_source: bool,
    backup_id: str | None,
    pick: str,
    within: str | None,
    to_time: str | None,
    depth: str | None,
    operator: str | None,
    repo_name: str | None,
    as_json: bool,
) -> None:
    """Prove that backups restore: restore on a scratch instance, compare, check, measure
    RTO and RPO, and record the result in the repository."""
    from lifeboat.ops.drill import DrillOptions, drill
    from lifeboat.policy.retention import parse_duration
    from lifeboat.util.clock import PROCESS_STARTED

    if every_source == bool(source):
        raise UsageError("name a SOURCE or pass --all")
    if backup_id and (every_source or pick != "latest" or within):
        raise UsageError("--backup names one backup: it goes without --all, --pick and --within")
    try:
        window = parse_duration(within) if within else None
    except ValueError as exc:
        raise UsageError(f"--within: {exc}") from None
    ctx = state().context()
    sources = sorted(ctx.config.sources) if every_source else [str(source)]
    options = DrillOptions(
        backup=backup_id,
        pick=pick,  # type: ignore[arg-type]
        within=window,
        to_time=to_time,
        depth=depth,  # type: ignore[arg-type]
        operator=operator,
        repository=repo_name,
        began=PROCESS_STARTED,
    )
    from lifeboat.notify import outcomes
    from lifeboat.notify.deliver import announce, failure_announced

    # stopped by a service manager or `timeout`, a drill still stops its scratch server
    # and removes its folder on the way out
    with (
        failure_announced(ctx.config, lambda line: outcomes.drill_failed(source, line)),
        interrupt_on_sigterm(),
    ):
        report = drill(ctx, sources, options)
    for record in report.records:
        announce(
            ctx.config,
            outcomes.drill_finished(
                record.source,
                record.backup,
                record.passed,
                record.rto_seconds,
                record.rpo_seconds,
                record.reasons,
            ),
        )
    for name, why in report.errors.items():
        announce(ctx.config, outcomes.drill_failed(name, why))
    if wants_json(as_json):
        output.print_json(
            {
                "drills": [r.to_json() for r in report.records],
                "errors": report.errors,
                "ok": report.ok,
            }
        )
    else:
        for record in report.records:
            _print_record(record)
    if not report.ok:
        failed = [r for r in report.records if not r.passed]
        what = [f"{r.source}/{r.backup}: {r.reasons[0]}" for r in failed[:3]]
        what += [f"{name}: {why}" for name, why in report.errors.items()]
        raise DrillFailedError(
            f"{len(failed) + len(report.errors)} drill(s) failed: " + "; ".join(what)
        )
