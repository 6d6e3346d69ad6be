"""The compliance report in Markdown, for an auditor: the control matrix first, then per
source its backups, drills, deletions and holds, then the audit chains. Every figure is
one the auditor can look up in the repository (ids, dates, hashes)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from lifeboat.ops.report_controls import chain_lines
from lifeboat.ops.report_model import (
    CONTROL_IDS,
    ComplianceReport,
    Control,
    SourceReport,
)
from lifeboat.policy.drill import seconds_text

STATUS_TEXT = {
    "pass": "PASS",
    "fail": "**FAIL**",
    "no-data": "no data",
    "not-applicable": "n/a",
}


def _when(moment: datetime | None) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if moment else "-"


def _line(text: str) -> str:
    """Text on one line: a line break of any kind in a reason or a name would end a list
    item or a table row."""
    return " ".join(text.splitlines())


def _cell(text: str) -> str:
    """Text safe inside a table cell: on one line, its pipes escaped, and its backslashes
    too (a backslash of its own before a pipe would otherwise escape the escape)."""
    return _line(text.replace("\\", "\\\\").replace("|", "\\|"))


def _bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _seconds(value: float | None) -> str:
    return seconds_text(value) if value is not None else "-"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(_cell(c) for c in header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows),
        "",
    ]


def _matrix(report: ComplianceReport) -> list[str]:
    out = ["## Control matrix", ""]
    if not report.sources:
        return [*out, "No source is configured.", ""]
    header = ["Control", *(source.source for source in report.sources)]
    rows = []
    for control_id in CONTROL_IDS:
        row = [control_id]
        for source in report.sources:
            found = next((c for c in source.controls if c.id == control_id), None)
            row.append(STATUS_TEXT[found.status] if found else "-")
        rows.append(row)
    verdict = (
        "every control passed or does not apply"
        if report.passed
        else "not every control passed (see FAIL and no data)"
    )
    return [*out, *_table(header, rows), f"Overall: **{verdict}**.", ""]


def _control(control: Control) -> list[str]:
    out = [f"#### {control.title} (`{control.id}`): {STATUS_TEXT[control.status]}", ""]
    out += [f"- {_line(line)}" for line in control.evidence]
    if control.exceptions:
        out += ["", "Exceptions:", ""]
        out += [f"- {_line(line)}" for line in control.exceptions]
    return [*out, ""]


def _backups(source: SourceReport) -> list[str]:
    out = ["### Backups", ""]
    if not source.backups:
        return [*out, "No backup finished in the period.", ""]
    kinds = Counter(row.kind for row in source.backups)
    stored = sum(row.stored_bytes for row in source.backups)
    out += [
        f"{len(source.backups)} backups finished in the period "
        f"({', '.join(f'{n} {kind}' for kind, n in sorted(kinds.items()))}), "
        f"{_bytes(stored)} stored.",
        "",
    ]
    rows = [
        [
            f"`{row.id}`",
            row.kind,
            _when(row.finished_at),
            _seconds(row.duration_seconds),
            _bytes(row.stored_bytes),
            row.encryption,
            ", ".join(row.repositories) or "pruned",
            row.verification or "never",
            "yes" if row.held else "",
        ]
        for row in source.backups
    ]
    header = [
        "Backup",
        "Kind",
        "Finished",
        "Duration",
        "Stored",
        "Encryption",
        "Repositories",
        "Verified",
        "Held",
    ]
    return [*out, *_table(header, rows)]


def _drills(source: SourceReport) -> list[str]:
    out = ["### Restore drills", ""]
    if not source.drills:
        return [*out, "No drill in the period.", ""]
    rows = [
        [
            f"`{d.drill_id}`",
            _when(d.started_at),
            d.operator,
            f"`{d.backup}` ({d.kind})",
            "pass" if d.passed else "**fail**: " + "; ".join(d.reasons),
            f"{_seconds(d.rto_seconds)} / {_seconds(d.rto_objective_seconds)}",
            f"{_seconds(d.rpo_seconds)} / {_seconds(d.rpo_objective_seconds)}",
        ]
        for d in source.drills
    ]
    header = ["Drill", "Started", "Operator", "Backup", "Verdict", "RTO / objective", "RPO / obj."]
    return [*out, *_table(header, rows)]


def _deletions(source: SourceReport) -> list[str]:
    out = ["### Deletions by retention (prune)", ""]
    if not source.deletions:
        return [*out, "No backup was deleted in the period.", ""]
    rows = [
        [
            _when(d.at),
            d.repository,
            f"`{d.backup}`",
            d.kind,
            _when(d.backup_started_at),
            "; ".join(d.reasons),
            d.policy,
            d.by,
        ]
        for d in source.deletions
    ]
    header = ["When", "Repository", "Backup", "Kind", "Backup started", "Reasons", "Policy", "By"]
    return [*out, *_table(header, rows)]


def _holds(source: SourceReport) -> list[str]:
    out = ["### Holds and releases", ""]
    if not source.holds:
        return [*out, "No hold was placed or released in the period.", ""]
    rows = [
        [
            _when(h.at),
            h.repository,
            f"`{h.backup}`",
            h.action,
            h.reason,
            _when(h.until) if h.until else "until released",
            h.by,
        ]
        for h in source.holds
    ]
    return [
        *out,
        *_table(["When", "Repository", "Backup", "Action", "Reason", "Until", "By"], rows),
    ]


def _calendar(source: SourceReport) -> list[str]:
    counts = Counter(day.outcome for day in source.calendar)
    missing = [day.day.isoformat() for day in source.calendar if day.outcome == "missing"]
    failed = [day.day.isoformat() for day in source.calendar if day.outcome == "failed"]
    out = [
        "### Calendar",
        "",
        f"{len(source.calendar)} days: {counts['ok']} with a backup, {counts['failed']} with "
        f"failed backups only, {counts['missing']} missing one, {counts['not-expected']} "
        "with none expected.",
    ]
    if missing:
        out.append(f"Missing: {', '.join(missing)}.")
    if failed:
        out.append(f"Failed: {', '.join(failed)}.")
    return [*out, ""]


def _source(source: SourceReport) -> list[str]:
    out = [f"## Source `{_line(source.source)}`", ""]
    objectives = (
        f"Objectives: RTO {_seconds(source.rto_objective_seconds)}, "
        f"RPO {_seconds(source.rpo_objective_seconds)}."
    )
    out += [objectives, ""]
    if not source.has_data:
        out += ["**No backup, drill, deletion or hold of this source in the period.**", ""]
    out += ["### Controls", ""]
    for control in source.controls:
        out += _control(control)
    out += _backups(source) + _drills(source) + _deletions(source) + _holds(source)
    return out + _calendar(source)


def _repositories(report: ComplianceReport) -> list[str]:
    rows = [
        [
            repo.name,
            repo.url,
            repo.immutable or "none",
            f"**cannot be read**: {repo.error}" if repo.error else "read",
        ]
        for repo in report.repositories
    ]
    return ["## Repositories", "", *_table(["Name", "URL", "Object Lock", "State"], rows)]


def _chains(report: ComplianceReport) -> list[str]:
    out = ["## Audit chains", ""]
    if not report.chains:
        return [*out, "No audit chain could be read.", ""]
    for chain in report.chains:
        if chain.events == 0:
            out.append(f"- {_line(chain.repository)}: no audit events yet")
            continue
        lines, broken = chain_lines(chain)
        out += [f"- {_line(line)}" for line in lines]
        if broken is not None:
            out.append(f"- **{_line(broken)}**")
    out += [
        "",
        "To check a chain yourself: `lifeboat audit verify --anchor SEQUENCE:SHA256` with the "
        "head above, now or later; any event deleted, changed or reordered since is named.",
        "",
    ]
    return out


def render(report: ComplianceReport) -> str:
    out = [
        "# Compliance report",
        "",
        f"- Period: {_when(report.period_start)} to {_when(report.period_end)} (end excluded)",
        f"- Generated: {_when(report.generated_at)} by Lifeboat {report.lifeboat_version}, "
        "from the repositories alone",
        "",
    ]
    if not any(source.has_data for source in report.sources):
        out += ["**No backup, drill, deletion or hold in this period.**", ""]
    out += _matrix(report)
    for source in report.sources:
        out += _source(source)
    out += _repositories(report) + _chains(report)
    return "\n".join(out).rstrip("\n") + "\n"
