"""What `status` judges: the reasons a source is unhealthy, as pure functions of its status
report (ops/status.py), and the anomalies of a backup against the ones before it.

A backup is overdue half an interval late, as the compliance report's frequency control and
the shipped alert rule allow (ops/report_grid.py)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from lifeboat.ops.report_grid import longest_allowed_gap
from lifeboat.policy.drill import seconds_text
from lifeboat.repo.manifest import Manifest

# a backup is compared with the median of this many before it of its type, once there are
# at least ANOMALY_BASE of them
ANOMALY_WINDOW = 10
ANOMALY_BASE = 3
SMALLER = 0.5  # stored size under half the median
SLOWER = 2.0  # duration over twice the median


def _duration(manifest: Manifest) -> float:
    return (manifest.finished_at - manifest.started_at).total_seconds()


def anomalies(of_type: Sequence[Manifest]) -> list[str]:
    """What is unusual about the newest of a type's backups (oldest first) against the
    median of the ANOMALY_WINDOW before it: much smaller (a dump of an emptied database, a
    table gone) or much slower."""
    if len(of_type) <= ANOMALY_BASE:
        return []
    newest, before = of_type[-1], of_type[-1 - ANOMALY_WINDOW : -1]
    found = []
    size = statistics.median(m.stored_size for m in before)
    if newest.stored_size < size * SMALLER:
        found.append(
            f"stored {newest.stored_size} bytes, under half the median of the "
            f"{len(before)} before it ({size:.0f})"
        )
    took = statistics.median(_duration(m) for m in before)
    if took > 0 and _duration(newest) > took * SLOWER:
        found.append(
            f"took {seconds_text(_duration(newest))}, over twice the median of the "
            f"{len(before)} before it ({seconds_text(took)})"
        )
    return found


def is_overdue(age_seconds: float, interval_seconds: float) -> bool:
    allowed = longest_allowed_gap(timedelta(seconds=interval_seconds))
    return age_seconds > allowed.total_seconds()


def backup_reasons(report: dict[str, Any]) -> list[str]:
    source = report["source"]
    reasons = []
    for repo in report["repositories"]:
        if repo["error"]:
            continue
        for kind, every in sorted(report["expected_backups"].items()):
            if kind not in repo["backups"]:
                reasons.append(
                    f"{source}: no {kind} backup in {repo['name']} (expected every "
                    f"{seconds_text(every)})"
                )
        for kind, backup in sorted(repo["backups"].items()):
            if backup["overdue"]:
                reasons.append(
                    f"{source}: newest {kind} backup in {repo['name']} finished "
                    f"{seconds_text(backup['age_s'])} ago (expected every "
                    f"{seconds_text(backup['expected_interval_s'])})"
                )
            reasons += [
                f"{source}: {kind} backup {backup['id']} in {repo['name']}: {anomaly}"
                for anomaly in backup["anomalies"]
            ]
    return reasons


def other_reasons(report: dict[str, Any]) -> list[str]:
    """The repositories, the recovery point, verification and the spool."""
    source = report["source"]
    reasons = [
        f"{source}: repository {repo['name']} cannot be read: {repo['error']}"
        for repo in report["repositories"]
        if repo["error"]
    ]
    rpo = report["rpo"]
    if rpo["breached"]:
        reasons.append(
            f"{source}: the newest restorable moment is {seconds_text(rpo['age_s'])} old, "
            f"over the RPO objective of {seconds_text(rpo['objective_s'])}"
        )
    reasons += [
        f"{source}: {repo['verification']['failing']} backup(s) in {repo['name']} failed "
        "their newest verification"
        for repo in report["repositories"]
        if repo["verification"]["failing"]
    ]
    spool = report.get("spool")  # none: a source other than PostgreSQL's archives no WAL
    if spool is not None and spool["queued"] >= spool["capacity"]:
        reasons.append(
            f"{source}: the WAL spool is full ({spool['queued']} of {spool['capacity']} "
            "segments): wal-push uploads synchronously"
        )
    return reasons


def health_reasons(report: dict[str, Any]) -> list[str]:
    """Why the source is unhealthy, beyond damaged backups and drills (which status names
    on their own): none when it is healthy."""
    return backup_reasons(report) + other_reasons(report)
