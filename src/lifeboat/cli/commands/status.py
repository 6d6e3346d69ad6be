"""lifeboat status [SOURCE]."""

from __future__ import annotations

from typing import Any

import click

from lifeboat.cli import output
from lifeboat.cli.main import json_option, state, wants_json
from lifeboat.errors import IntegrityError, LifeboatError


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(seconds, 0.0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit} ago"
    return f"{seconds:.0f}s ago"


def _rows(report: dict[str, Any]) -> list[list[str]]:
    rows: list[list[str]] = []
    for repo in report["repositories"]:
        rows += _repository_rows(repo)
    rows.append(["recovery point", _rpo(report["rpo"])])
    # a source other than PostgreSQL has no WAL nor spool: no rows for them
    rows += (_spool_rows(report) if "spool" in report else []) + _drill_rows(report["drills"])
    return [*rows, ["health", "healthy" if report["healthy"] else "UNHEALTHY"]]


def _seconds(value: float | None) -> str:
    from lifeboat.policy.drill import seconds_text

    return "-" if value is None else seconds_text(value)


def _rpo(rpo: dict[str, Any]) -> str:
    if rpo["recovery_point"] is None:
        text = "none"
    else:
        text = f"{rpo['recovery_point'][:19].replace('T', ' ')} UTC, {_ago(rpo['age_s'])}"
    if rpo["objective_s"] is not None:
        text += f" (RPO objective {_seconds(rpo['objective_s'])}" + (
            ": OVER)" if rpo["breached"] else ")"
        )
    return text


def _backup_rows(repo: dict[str, Any]) -> list[list[str]]:
    rows = []
    for kind, backup in sorted(repo["backups"].items()):
        took = _seconds(backup["duration_s"])
        text = f"{backup['id']}, finished {_ago(backup['age_s'])}, took {took}"
        if backup["expected_interval_s"] is not None:
            every = f"expected every {_seconds(backup['expected_interval_s'])}"
            text += f" ({'OVERDUE, ' if backup['overdue'] else ''}{every})"
        rows.append([f"newest {kind}", text])
        rows += [["anomaly", anomaly] for anomaly in backup["anomalies"]]
    verification = repo["verification"]
    if verification["newest_at"]:
        failing = verification["failing"]
        rows.append(
            [
                "verification",
                f"newest {verification['newest_at'][:16].replace('T', ' ')} UTC"
                + (f", {failing} backup(s) FAILED" if failing else ", none failing"),
            ]
        )
    return rows


def _repository_rows(repo: dict[str, Any]) -> list[list[str]]:
    rows = [["repository", f"{repo['name']} ({repo['url']})"]]
    if repo["error"]:
        rows.append(["repository error", repo["error"]])
    for bad in repo["damaged_backups"]:
        rows.append(["damaged backup", f"{bad['id']}: {bad['error']}"])
    backup = repo["newest_backup"]
    rows.append(
        [
            "newest backup",
            f"{backup['id']} {backup['type']}, finished {_ago(backup['age_s'])}"
            if backup
            else "none",
        ]
    )
    rows += _backup_rows(repo)
    if "newest_wal" not in repo:
        return rows
    segment = repo["newest_wal"]
    rows.append(
        [
            "newest WAL",
            f"{segment['segment']}, archived {_ago(segment['age_s'])} "
            f"({segment['segments']} segments)"
            if segment
            else "none",
        ]
    )
    return rows


def _spool_rows(report: dict[str, Any]) -> list[list[str]]:
    rows: list[list[str]] = []
    spool = report["spool"]
    rows.append(["spool", f"{spool['path']} (async {'on' if spool['async'] else 'off'})"])
    queued = f"{spool['queued']} of {spool['capacity']} segments"
    if spool["queued"]:
        queued += f", oldest spooled {_ago(spool['oldest_queued_age_s'])}"
    rows.append(["queued", queued])
    rows.append(["worker", "running" if spool["worker_running"] else "not running"])
    last = spool["last_pushed"]
    rows.append(
        [
            "last pushed",
            f"{last['segment']} at {last['at']} ({spool['pushed_count']} in all)" if last else "—",
        ]
    )
    error = spool["last_error"]
    rows.append(
        [
            "last error",
            f"{error['segment']} at {error['at']} (attempt {error['attempts']}): {error['message']}"
            if error
            else "—",
        ]
    )
    if spool["refused"]:
        rows.append(["refused", f"{spool['refused']} files kept in {spool['path']}/refused"])
    if spool["prefetched"]:
        rows.append(["prefetched", f"{spool['prefetched']} segments in {spool['path']}/in"])
    return rows


def _drill(entry: dict[str, Any] | None, verdict: bool = True) -> str:
    if entry is None:
        return "none"
    text = f"backup {entry['backup']}, started {_ago(entry['age_s'])}"
    return f"{entry['verdict']}, {text}" if verdict else text


def _drill_rows(drills: dict[str, Any]) -> list[list[str]]:
    rows = [
        ["newest drill", _drill(drills["newest"])],
        ["newest pass", _drill(drills["newest_pass"], verdict=False)],
        *([["failed drills", ", ".join(drills["failing"])]] if drills["failing"] else []),
    ]
    if drills["drill_every"]:
        due = f"every {drills['drill_every']}"
        if drills["overdue"]:
            due = f"OVERDUE ({due})"
        elif drills["due_at"]:
            due += f", next by {drills['due_at'][:16].replace('T', ' ')} UTC"
        rows.append(["drill due", due])
    return rows


@click.command()
@click.argument("source", required=False)
@json_option
def command(source: str | None, as_json: bool) -> None:
    """The health of each source (or SOURCE): newest backup of each type against how often
    one is expected, newest archived WAL, the recovery point against the RPO objective,
    verification, the async spool and the newest restore drills.

    Reads only. Run it as the user that runs wal-push when the spool is the default one,
    which lives in that user's home. Exits 1, after the report, with the reasons, when a
    source is unhealthy: a backup damaged (both copies of its manifest unreadable), overdue
    or missing, or much smaller or slower than the ten before it; the recovery point older
    than objectives.rpo; a repository unreadable; a backup whose newest verification failed;
    the spool full; a drill overdue (none passed within objectives.drill_every) or a kept
    backup's newest drill failed."""
    from lifeboat.ops.health import health_reasons
    from lifeboat.ops.status import damaged_backups, failing_drills, overdue_drills, status

    reports = status(state().context(), source)
    if wants_json(as_json):
        output.print_json(reports)
    else:
        _print(reports)
    problems = []
    damaged = damaged_backups(reports)
    if damaged:
        problems.append(
            f"{len(damaged)} damaged backup(s), their manifests unreadable: "
            + "; ".join(damaged[:3])
            + " (see `lifeboat list`, `lifeboat verify`)"
        )
    overdue = overdue_drills(reports)
    if overdue:
        problems.append(
            "restore drill overdue for " + "; ".join(overdue) + " (see `lifeboat drills`)"
        )
    failing = failing_drills(reports)
    if failing:
        problems.append(
            "newest restore drill failed for " + "; ".join(failing[:3]) + " (see `lifeboat drills`)"
        )
    problems += [reason for report in reports for reason in health_reasons(report)]
    if problems:
        error = IntegrityError if damaged else LifeboatError
        raise error("; ".join(problems))


def _print(reports: list[dict[str, Any]]) -> None:
    from rich.table import Table

    console = output.console()
    for report in reports:
        grid = Table(title=report["source"], show_header=False, show_edge=False)
        grid.add_column(style="bold")
        grid.add_column()
        for row in _rows(report):
            grid.add_row(*row)
        console.print(grid)
