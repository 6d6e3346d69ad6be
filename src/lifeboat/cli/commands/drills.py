"""lifeboat drills [SOURCE]."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from lifeboat.cli import output
from lifeboat.cli.main import json_option, state, wants_json
from lifeboat.errors import RepositoryError
from lifeboat.policy.retention import duration_text

if TYPE_CHECKING:
    from lifeboat.ops.drill_records import DrillHistory, DrillSummary
    from lifeboat.repo.drills import DrillRecord

REASONS_WIDTH = 48


@click.command()
@click.argument("source", required=False)
@json_option
def command(source: str | None, as_json: bool) -> None:
    """The restore drills of each source (or SOURCE), oldest first, with a summary.

    Read from every configured repository, copy targets included; each drill is shown once.
    Exits 1, after the history, when one of the source's repositories cannot be read."""
    from lifeboat.ops.drill_records import drills_history

    history = drills_history(state().context(), source, datetime.now(UTC))
    if wants_json(as_json):
        output.print_json(history.to_json())
    else:
        _print(history, show_source=source is None)
    if history.unreadable:
        name, why = next(iter(history.unreadable.items()))
        raise RepositoryError(
            f"repository {name} cannot be read: {why}; the drills of the others are shown"
        )


def _print(history: DrillHistory, show_source: bool) -> None:
    if history.records:
        columns = ["date (UTC)", "backup", "kind", "verdict", "RTO", "RPO", "phases", "checks"]
        output.table(
            None,
            (["source"] if show_source else []) + columns + ["reasons"],
            [([record.source] if show_source else []) + _row(record) for record in history.records],
            whole=("source", "date (UTC)", "backup", "kind", "verdict", "RTO", "RPO", "checks"),
        )
    for summary in history.summaries.values():
        click.echo(summary_line(summary))


def _row(record: DrillRecord) -> list[str]:
    passed = sum(1 for check in record.checks if check.ok)
    return [
        f"{record.started_at.astimezone(UTC):%Y-%m-%d %H:%M}",
        record.backup,
        record.kind,
        record.verdict,
        output.seconds(record.rto_seconds),
        output.seconds(record.rpo_seconds),
        ", ".join(f"{p.name} {output.seconds(p.seconds)}" for p in record.phases),
        f"{passed}/{len(record.checks)}",
        _reasons(record.reasons),
    ]


def _reasons(reasons: list[str]) -> str:
    if not reasons:
        return ""
    more = f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else ""
    return output.shortened(reasons[0], REASONS_WIDTH) + more


def summary_line(summary: DrillSummary) -> str:
    """`wms: 5 drills, 4 passed (80%); RTO median 1m30s, max 4m10s (of 5 drills, any verdict);
    newest pass 2026-11-29 (backup ...); drill every 92d: overdue`."""
    if not summary.count:
        text = f"{summary.source}: no drills recorded"
    else:
        rate = summary.pass_rate or 0.0
        text = f"{summary.source}: {summary.count} drills, {summary.passed} passed ({rate:.0%})"
        if summary.rto_measured:
            text += (
                f"; RTO median {output.seconds(summary.rto_median)}, max "
                f"{output.seconds(summary.rto_max)} (of {summary.rto_measured} drills, any verdict)"
            )
        newest = summary.newest_pass
        text += (
            f"; newest pass {newest.started_at.astimezone(UTC):%Y-%m-%d} (backup {newest.backup})"
            if newest
            else "; none passed"
        )
    if summary.every is not None:
        text += f"; drill every {duration_text(summary.every)}: " + (
            "overdue" if summary.overdue else "on time"
        )
    return text
