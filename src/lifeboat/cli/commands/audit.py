"""lifeboat audit verify|show|anchor: the repositories' hash-chained audit trail."""

from __future__ import annotations

import click

from lifeboat.cli import output
from lifeboat.cli.main import json_option, moment_option_value, state, wants_json
from lifeboat.errors import IntegrityError


@click.group()
def command() -> None:
    """The hash-chained audit trail of each repository (docs/compliance.md)."""


@command.command()
@click.option("--repo", "repo_name", help="Only this repository (default: every one).")
@click.option(
    "--anchor",
    "anchors",
    multiple=True,
    help="SEQUENCE:SHA256 of a head kept by hand (as `audit anchor` prints it); repeatable.",
)
@json_option
def verify(repo_name: str | None, anchors: tuple[str, ...], as_json: bool) -> None:
    """Walk each chain and check the anchors of it kept in every configured repository.
    Exits 1, naming the first bad event, when a chain is broken."""
    from lifeboat.ops.audit import parse_anchor, verify

    given = [parse_anchor(text) for text in anchors]
    results = verify(state().context(), repo_name, given)
    if wants_json(as_json):
        output.print_json([r.to_json() for r in results])
    else:
        for r in results:
            report = r.report
            head = f"head {report.head.sequence} {report.head.hash}" if report.head else "no head"
            verdict = "whole" if report.whole else f"BROKEN at event {report.first_bad}"
            click.echo(
                f"{r.repository}: {verdict}: {report.events} events, {head}, "
                f"{len(report.anchors_checked)} anchors checked"
            )
            for problem in sorted(report.problems):
                click.echo(f"  event {problem.sequence}: {problem.what}")
    broken = [r for r in results if not r.report.whole]
    if broken:
        first = broken[0]
        raise IntegrityError(
            f"the audit chain of {first.repository} is broken at event {first.report.first_bad}: "
            f"{sorted(first.report.problems)[0].what}"
        )


@command.command()
@click.option("--repo", "repo_name", help="Only this repository (default: every one).")
@click.option("--since", "since_text", help="Only events from this date (YYYY-MM-DD) on.")
@json_option
def show(repo_name: str | None, since_text: str | None, as_json: bool) -> None:
    """The events, oldest first, a line each."""
    from lifeboat.ops.audit import show

    events = show(state().context(), repo_name, moment_option_value(since_text))
    if wants_json(as_json):
        output.print_json(events)
        return
    for e in events:
        subject = "/".join(s for s in (e["subject"]["source"], e["subject"]["backup"]) if s)
        details = " ".join(f"{k}={v}" for k, v in sorted(e["details"].items()))
        click.echo(
            f"{e['repository']} {e['sequence']:>6} {e['at']} {e['actor']['user']}@"
            f"{e['actor']['host']} {e['event']} {subject or '-'} {details}".rstrip()
        )


@command.command()
@click.option("--repo", "repo_name", help="Only this repository's chain (default: every other).")
@click.option("--to", "target", help="Repository to keep the anchor in (e.g. a WORM bucket).")
@json_option
def anchor(repo_name: str | None, target: str | None, as_json: bool) -> None:
    """Write the head of each chain into another repository (--to), or print it for an
    auditor to keep; the chain must verify first."""
    from lifeboat.ops.audit import anchor

    anchors = anchor(state().context(), repo_name, target)
    if wants_json(as_json):
        output.print_json(anchors)
        return
    for a in anchors:
        kept = f" kept in {a['kept_in']} as {a['key']}" if target else ""
        click.echo(
            f"{a['repository']} ({a['repository_id']}) head {a['sequence']}:{a['hash']} "
            f"of {a['head_at']}{kept}"
        )
