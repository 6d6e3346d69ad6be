"""The compliance report as one self-contained HTML5 file: inline CSS and SVG, no script, no
font, image or anything else fetched (a Content-Security-Policy says so to the browser), so
it opens offline years later, can be mailed to an auditor, and prints on A4 (one source per
page run, charts and table rows kept whole).

Everything that comes from a repository or the configuration (source names, reasons,
paths, operators) is escaped. Stable hooks for tests and users' scripts: the <body>'s
data-verdict and data-passed, each source's <section data-source>, each control's
<tr data-control data-status>, each chart's <figure data-chart data-points> (see
report_charts.py), each table's data-table and each row's data-id.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

from lifeboat.ops.report_charts import (
    calendar_chart,
    coverage_chart,
    drill_chart,
    duration_chart,
    size_chart,
)
from lifeboat.ops.report_model import (
    CONTROL_IDS,
    BackupRow,
    ChainStatus,
    ComplianceReport,
    Control,
    DrillRow,
    RepositoryRow,
    SourceReport,
)
from lifeboat.policy.drill import seconds_text
from lifeboat.util.progress import human_bytes

# nothing may be loaded: styles only from the file itself, images only as data: URLs
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

STYLE = """
:root { --ok: #2e7d32; --fail: #c62828; --nodata: #8d6e00; --na: #607d8b; --held: #1565c0;
  --missing: #e53935; --none: #e8eaed; --ink: #1d1d1f; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  color: var(--ink); margin: 0 auto; max-width: 1100px; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 20px; margin: 32px 0 8px; }
h3 { font-size: 16px; margin: 20px 0 6px; }
.meta { color: #555; margin: 0 0 12px; }
.verdict { display: inline-block; padding: 6px 14px; border-radius: 4px; color: #fff;
  font-weight: 600; }
.verdict.pass { background: var(--ok); } .verdict.fail { background: var(--fail); }
.verdict.incomplete { background: var(--nodata); }
table { border-collapse: collapse; width: 100%; margin: 6px 0 14px; }
th, td { border: 1px solid #d0d4d9; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f5f7; } td ul { margin: 0; padding-left: 18px; }
.hash, code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; }
.hash { word-break: break-all; display: inline-block; width: 32.5ch; } code { white-space: nowrap; }
.status { font-weight: 600; white-space: nowrap; }
.status.pass { color: var(--ok); } .status.fail { color: var(--fail); }
.status.no-data { color: var(--nodata); } .status.not-applicable { color: var(--na); }
.empty-note, p.no-data { color: #555; font-style: italic; }
figure { margin: 10px 0 18px; } figcaption { font-weight: 600; margin-bottom: 4px; }
figure svg { max-width: 100%; height: auto; display: block; }
svg text { font: 11px system-ui, "DejaVu Sans", sans-serif; fill: #333; }
svg text.label { font-weight: 600; }
.axis { stroke: #666; } .grid { stroke: #e3e6ea; }
.series { fill: none; stroke: #1565c0; stroke-width: 1.5; }
.point { fill: #1565c0; } .point.pass { fill: var(--ok); } .point.fail { fill: var(--fail); }
.objective { stroke: var(--fail); stroke-width: 1.5; stroke-dasharray: 6 4; }
.objective-label { fill: var(--fail); }
svg rect.day, svg rect.cell, svg rect.swatch { width: 11px; height: 11px; rx: 2px; }
.ok, .covered { fill: var(--ok); } .failed, .missing { fill: var(--missing); }
.day.missing { fill: #ffb300; } .swatch.missing { fill: var(--missing); }
.calendar .swatch.missing { fill: #ffb300; }
.not-expected, .not-promised { fill: var(--none); } .held { fill: var(--held); }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 11px; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  section.source { break-before: page; }
  figure, tr, .controls { break-inside: avoid; }
  h2, h3 { break-after: avoid; }
  thead { display: table-header-group; }
  /* an A4 page is narrower than a screen: ids may wrap, hashes take four lines */
  th, td { padding: 3px 4px; }
  code { white-space: normal; overflow-wrap: anywhere; }
  .hash { width: 16.5ch; }
  /* the list of every backup is an appendix: one line a backup */
  table.backups { font-size: 8.5px; }
  table.backups td { padding: 1px 3px; white-space: nowrap; }
  table.backups code { white-space: nowrap; font-size: 8.5px; }
}
"""

VERDICT_TEXT = {
    "pass": "Every control passed or does not apply",
    "fail": "At least one control failed",
    "incomplete": "No control failed, but some have no data in this period",
}


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _when(moment: datetime | None) -> str:
    return "" if moment is None else f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _seconds(value: float | None) -> str:
    return "-" if value is None else seconds_text(value)


def _items(lines: Sequence[str]) -> str:
    return "<ul>" + "".join(f"<li>{_e(line)}</li>" for line in lines) + "</ul>" if lines else ""


def verdict(report: ComplianceReport) -> str:
    statuses = {c.status for source in report.sources for c in source.controls}
    if "fail" in statuses:
        return "fail"
    return "incomplete" if "no-data" in statuses else "pass"


def _table(
    name: str, headers: Sequence[str], rows: Sequence[tuple[str, Sequence[str]]], empty: str
) -> str:
    """rows: (data-id, cells already escaped)."""
    if not rows:
        return f'<p class="empty-note" data-table="{name}" data-rows="0">{_e(empty)}</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        f'<tr data-id="{_e(row_id)}">' + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"
        for row_id, cells in rows
    )
    return (
        f'<table class="{name}" data-table="{name}" data-rows="{len(rows)}">'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def _controls(controls: Sequence[Control]) -> str:
    order = {control_id: index for index, control_id in enumerate(CONTROL_IDS)}
    rows = []
    for control in sorted(controls, key=lambda c: order.get(c.id, len(order))):
        rows.append(
            f'<tr data-control="{_e(control.id)}" data-status="{_e(control.status)}">'
            f"<td>{_e(control.title)}</td>"
            f'<td class="status {_e(control.status)}">{_e(control.status)}</td>'
            f"<td>{_items(control.evidence)}</td><td>{_items(control.exceptions)}</td></tr>"
        )
    return (
        '<table class="controls" data-table="controls">'
        "<thead><tr><th>Control</th><th>Status</th><th>Evidence</th><th>Exceptions</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _against(value: float | None, objective: float | None) -> str:
    if objective is None:
        return _e(_seconds(value))
    return f"{_e(_seconds(value))} / {_e(seconds_text(objective))}"


def _drill_cells(drill: DrillRow) -> list[str]:
    verdict_text = "passed" if drill.passed else "failed"
    return [
        f"<code>{_e(drill.drill_id)}</code>",
        _e(drill.kind),
        f"<code>{_e(drill.backup)}</code>",
        _e(_when(drill.started_at)),
        _e(drill.operator),
        f'<span class="status {"pass" if drill.passed else "fail"}">{verdict_text}</span>',
        _against(drill.rto_seconds, drill.rto_objective_seconds),
        _against(drill.rpo_seconds, drill.rpo_objective_seconds),
        _items(drill.reasons),
    ]


def _backups_summary(source: SourceReport) -> str:
    backups = source.backups
    if not backups:
        return '<p class="empty-note" data-summary="backups">No backup finished in this period.</p>'
    stored = sum(b.stored_bytes for b in backups)
    plain = sum(b.plain_bytes for b in backups)
    kinds = sorted({b.kind for b in backups})
    failed = sum(1 for b in backups if b.verification == "failed")
    verified = sum(1 for b in backups if b.verification is not None)
    return (
        f'<p data-summary="backups" data-count="{len(backups)}">{len(backups)} backups '
        f"({_e(', '.join(kinds))}) finished in the period, "
        f"from {_e(_when(backups[0].finished_at))} "
        f"to {_e(_when(backups[-1].finished_at))}: {_e(human_bytes(stored))} stored for "
        f"{_e(human_bytes(plain))} of data; {verified} verified, {failed} of them failed.</p>"
    )


def _backups_table(backups: Sequence[BackupRow]) -> str:
    """Every backup of the period, for the auditor to look up: its recipients are counted
    here, named once in the encryption control's evidence (seven years of the same keys
    would double the file)."""
    return _table(
        "backups",
        [
            "Backup",
            "Kind",
            "Finished",
            "Duration",
            "Stored",
            "Encryption",
            "Repositories",
            "Verified",
            "Held",
        ],
        [
            (
                b.id,
                [
                    f"<code>{_e(b.id)}</code>",
                    _e(b.kind),
                    _e(_when(b.finished_at)),
                    _e(seconds_text(b.duration_seconds)),
                    _e(human_bytes(b.stored_bytes)),
                    _e(f"{b.encryption}, {len(b.recipients)} recipient(s)"),
                    _e(", ".join(b.repositories)),
                    _e(b.verification or "never"),
                    "held" if b.held else "",
                ],
            )
            for b in backups
        ],
        "No backup finished in this period.",
    )


def _source(index: int, source: SourceReport) -> str:
    objectives = ", ".join(
        f"{name} objective: {_e('none configured' if value is None else seconds_text(value))}"
        for name, value in (
            ("RTO", source.rto_objective_seconds),
            ("RPO", source.rpo_objective_seconds),
        )
    )
    drills = _table(
        "drills",
        [
            "Drill",
            "Kind",
            "Backup",
            "Started",
            "Operator",
            "Verdict",
            "RTO / objective",
            "RPO / objective",
            "Reasons",
        ],
        [(d.drill_id, _drill_cells(d)) for d in source.drills],
        "No restore drill ran in this period.",
    )
    deletions = _table(
        "deletions",
        ["Deleted", "Repository", "Backup", "Kind", "Backup started", "Reasons", "Policy", "By"],
        [
            (
                f"{d.repository}/{d.backup}",
                [
                    _e(_when(d.at)),
                    _e(d.repository),
                    f"<code>{_e(d.backup)}</code>",
                    _e(d.kind),
                    _e(_when(d.backup_started_at)),
                    _items(d.reasons),
                    _e(d.policy),
                    _e(d.by),
                ],
            )
            for d in source.deletions
        ],
        "No backup was deleted by prune in this period.",
    )
    holds = _table(
        "holds",
        ["When", "Repository", "Backup", "Action", "Reason", "Until", "By"],
        [
            (
                f"{h.repository}/{h.backup}/{h.at.isoformat()}",
                [
                    _e(_when(h.at)),
                    _e(h.repository),
                    f"<code>{_e(h.backup)}</code>",
                    _e(h.action),
                    _e(h.reason),
                    _e(_when(h.until) or "-"),
                    _e(h.by),
                ],
            )
            for h in source.holds
        ],
        "No hold was placed or released in this period.",
    )
    no_data = (
        ""
        if source.has_data
        else '<p class="empty-note" data-no-data="true">No backup, drill, deletion or hold of '
        "this source in this period.</p>"
    )
    return (
        f'<section class="source" id="source-{index}" data-source="{_e(source.source)}">'
        f'<h2>Source {_e(source.source)}</h2><p class="meta">{objectives}</p>{no_data}'
        f"<h3>Controls</h3>{_controls(source.controls)}"
        f"<h3>Backups</h3>{_backups_summary(source)}"
        f"{size_chart(source.backups)}{duration_chart(source.backups)}"
        f"{calendar_chart(source.calendar)}"
        f"<h3>Restore drills</h3>"
        f"{drill_chart('rto', source.drills, source.rto_objective_seconds)}"
        f"{drill_chart('rpo', source.drills, source.rpo_objective_seconds)}{drills}"
        f"<h3>Retention</h3>{coverage_chart(source.coverage)}"
        f"<h3>Deletions</h3>{deletions}<h3>Holds</h3>{holds}"
        f"<h3>Every backup of the period</h3>{_backups_table(source.backups)}</section>"
    )


def _repositories(repositories: Sequence[RepositoryRow]) -> str:
    return _table(
        "repositories",
        ["Repository", "URL", "Immutability", "Read"],
        [
            (
                r.name,
                [
                    _e(r.name),
                    f"<code>{_e(r.url)}</code>",
                    _e(r.immutable or "none"),
                    _e(f"could not be read: {r.error}" if r.error else "ok"),
                ],
            )
            for r in repositories
        ],
        "No repository.",
    )


def _chain_cells(chain: ChainStatus) -> list[str]:
    anchors = [
        f'<li data-anchor-ok="{str(a.ok).lower()}">'
        f'<span class="status {"pass" if a.ok else "fail"}">'
        f"{'matches' if a.ok else 'MISMATCH'}</span>: sequence "
        f'{_e(a.sequence)}, <span class="hash">{_e(a.hash)}</span>, kept in {_e(a.kept_in)}</li>'
        for a in chain.anchors
    ]
    state = (
        '<span class="status pass">whole</span>'
        if chain.whole
        else f'<span class="status fail">broken at event {_e(chain.first_bad)}</span>: '
        f"{_e(chain.problem or '')}"
    )
    return [
        _e(chain.repository),
        state,
        _e(chain.events),
        _e("-" if chain.head_sequence is None else chain.head_sequence),
        f'<span class="hash">{_e(chain.head_hash or "-")}</span>',
        f"<ul>{''.join(anchors)}</ul>" if anchors else "none",
    ]


def render(report: ComplianceReport) -> str:
    """The report as one HTML5 document."""
    result = verdict(report)
    period = f"{_when(report.period_start)} to {_when(report.period_end)} (end excluded)"
    sources = "".join(_source(index, s) for index, s in enumerate(report.sources, 1))
    if not report.sources:
        sources = '<p class="empty-note">No source in this report.</p>'
    index = "".join(
        f'<li><a href="#source-{i}">{_e(s.source)}</a></li>'
        for i, s in enumerate(report.sources, 1)
    )
    chains = _table(
        "chains",
        ["Repository", "Chain", "Events", "Head sequence", "Head hash", "Anchors"],
        [(c.repository, _chain_cells(c)) for c in report.chains],
        "No audit chain was read.",
    )
    title = (
        f"Lifeboat compliance report, {report.period_start:%Y-%m-%d} "
        f"to {report.period_end:%Y-%m-%d}"
    )
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{STYLE}</style></head>"
        f'<body data-verdict="{result}" data-passed="{str(report.passed).lower()}">'
        f'<header><h1>Compliance report</h1><p class="meta">'
        f'Period: <span id="period" data-start="{_e(report.period_start.isoformat())}" '
        f'data-end="{_e(report.period_end.isoformat())}">{_e(period)}</span><br>'
        f'Generated <span id="generated" data-at="{_e(report.generated_at.isoformat())}">'
        f"{_e(_when(report.generated_at))}</span> by Lifeboat "
        f'<span id="version">{_e(report.lifeboat_version)}</span></p>'
        f'<p id="verdict" class="verdict {result}">{_e(VERDICT_TEXT[result])}</p>'
        f"<nav><ul>{index}</ul></nav></header>"
        f"<main>{sources}"
        f'<section class="evidence" id="repositories"><h2>Repositories</h2>'
        f"{_repositories(report.repositories)}</section>"
        f'<section class="evidence chains" id="audit-chains"><h2>Audit chains</h2>{chains}'
        "</section></main></body></html>\n"
    )
