"""lifeboat report --from DATE --to DATE [--source S] [--format F] [--output FILE]."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from lifeboat.cli.main import moment_option_value, state
from lifeboat.errors import LifeboatError, UsageError

if TYPE_CHECKING:
    from lifeboat.ops.report_model import ComplianceReport


def _json(report: ComplianceReport) -> bytes:
    return json.dumps(report.to_json(), indent=2, ensure_ascii=False).encode() + b"\n"


def _markdown(report: ComplianceReport) -> bytes:
    from lifeboat.ops.report_markdown import render

    return render(report).encode()


def _html(report: ComplianceReport) -> bytes:
    from lifeboat.ops.report_html import render

    return render(report).encode()


def _pdf(report: ComplianceReport) -> bytes:
    from lifeboat.ops.report_html import render
    from lifeboat.ops.report_pdf import pdf_of

    return pdf_of(render(report))


# --format NAME -> the renderer of the whole report; an --output file's suffix names one too
FORMATS: dict[str, Callable[[ComplianceReport], bytes]] = {
    "html": _html,
    "md": _markdown,
    "json": _json,
    "pdf": _pdf,
}
SUFFIXES = {".html": "html", ".htm": "html", ".md": "md", ".json": "json", ".pdf": "pdf"}


def chosen_format(form: str | None, output: Path | None) -> str:
    """--format, else the output file's suffix, else HTML into a file and Markdown printed
    (a terminal shows Markdown; HTML is for a browser)."""
    if form is None:
        if output is None:
            return "md"
        return SUFFIXES.get(output.suffix.lower(), "html")
    if form == "pdf" and output is None:
        raise UsageError("--format pdf needs --output FILE: a PDF is not printed")
    return form


def period_bound(value: str, option: str, inclusive_day: bool) -> datetime:
    """A date (its midnight UTC; with inclusive_day, the next one: --to takes its whole
    day) or an ISO time (UTC without an offset)."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        try:
            moment = moment_option_value(value)
        except click.BadParameter as exc:
            raise UsageError(f"{option}: {exc.message}") from None
        assert moment is not None
        return moment
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return midnight + timedelta(days=1) if inclusive_day else midnight


class ControlsFailed(LifeboatError):
    """The report was written and a control did not pass: exit 1, as `audit verify` does
    for a broken chain, so a cron job or CI gate sees it."""


@click.command()
@click.option("--from", "period_from", required=True, help="First day (or ISO time) of the period.")
@click.option(
    "--to",
    "period_to",
    required=True,
    help="Last day of the period, included (or an ISO time, excluded).",
)
@click.option("--source", help="Only this source (default: every configured one).")
@click.option(
    "--format",
    "form",
    type=click.Choice(list(FORMATS)),
    help="What to write (default: from the --output file's suffix, HTML for another; "
    "Markdown when printed).",
)
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the report into this file (default: print it).",
)
def command(
    period_from: str, period_to: str, source: str | None, form: str | None, output: Path | None
) -> None:
    """The compliance report of a period, from the repositories alone: a control matrix
    (frequency, encryption, off-site copy, retention, drills, verification, WAL, Object
    Lock, audit chain) with evidence, and the backups, drills, deletions and holds
    (docs/compliance.md). Exits 0 when every control passed or does not apply, 1 once the
    report is written when one failed or had no data to judge by."""
    from lifeboat.ops.report import build
    from lifeboat.util.fs import write_atomically

    start = period_bound(period_from, "--from", inclusive_day=False)
    end = period_bound(period_to, "--to", inclusive_day=True)
    if start >= end:
        raise UsageError(f"--from {period_from} is after --to {period_to}")
    form = chosen_format(form, output)
    report = build(state().context(), start, end, source)
    data = FORMATS[form](report)
    if output is None:
        click.echo(data.decode(), nl=False)
    else:
        try:
            write_atomically(output, data)
        except OSError as exc:
            raise LifeboatError(
                f"cannot write the report to {output}: {exc.strerror or exc}"
            ) from None
        click.echo(f"report written to {output}")
    failing = report.not_passed()
    if failing:
        raise ControlsFailed(f"controls not passed: {', '.join(failing)}")
