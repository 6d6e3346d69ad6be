"""The events of each job's outcome, built from what the commands (and the daemon's jobs,
which make the same library calls) have at hand."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lifeboat.notify.event import Event, error_line


def _size(value: object) -> str | None:
    if not isinstance(value, int):
        return None
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def backup_succeeded(source: str, summary: Mapping[str, Any], job: str = "backup") -> Event:
    """summary: the backup's manifest summary (Manifest.summary()), with `repositories`."""
    backup_id = str(summary.get("id"))
    stored = _size(summary.get("stored_size"))
    return Event(
        "backup_succeeded",
        source,
        job,
        f"{summary.get('type', 'backup')} backup {backup_id} of {source} done"
        + (f" ({stored} stored)" if stored else ""),
        {
            "backup_id": backup_id,
            "type": summary.get("type"),
            "plain_bytes": summary.get("plain_size"),
            "stored_bytes": summary.get("stored_size"),
            "duration_seconds": summary.get("duration_s"),
            "repositories": ", ".join(summary.get("repositories") or []) or None,
        },
    )


def backup_failed(
    source: str, error: str, job: str = "backup", backup_type: str | None = None
) -> Event:
    """backup_type (logical, physical): the incident is that type's (event.py)."""
    line = error_line(error)
    what = f"{backup_type} backup" if backup_type else "backup"
    return Event(
        "backup_failed",
        source,
        job,
        f"{what} of {source} failed: {line}",
        {"error": line} | ({"type": backup_type} if backup_type else {}),
    )


def drill_finished(
    source: str,
    backup: str,
    passed: bool,
    rto_seconds: float | None,
    rpo_seconds: float | None,
    reasons: Sequence[str],
    job: str = "drill",
) -> Event:
    """One drill's record (repo/drills.DrillRecord's fields)."""
    verdict = "passed" if passed else "failed"
    why = "" if passed or not reasons else f": {error_line(reasons[0])}"
    return Event(
        "drill_passed" if passed else "drill_failed",
        source,
        job,
        f"drill of {source}/{backup} {verdict}{why}",
        {
            "backup_id": backup,
            "verdict": "PASS" if passed else "FAIL",
            "rto_seconds": None if rto_seconds is None else round(rto_seconds, 1),
            "rpo_seconds": None if rpo_seconds is None else round(rpo_seconds, 1),
            "error": error_line(reasons[0]) if reasons and not passed else None,
        },
    )


def drill_failed(source: str | None, error: str, job: str = "drill") -> Event:
    """A drill that ended before it could record a verdict (source None: every source's)."""
    line = error_line(error)
    what = source or "every source"
    return Event("drill_failed", source, job, f"drill of {what} failed: {line}", {"error": line})


def verification(source: str | None, problems: Sequence[str], job: str = "verify") -> Event:
    """verification_failed with the first problems, or the quiet verification_passed that
    ends an open verification incident of source."""
    what = source or "every source"
    if not problems:
        return Event("verification_passed", source, job, f"verification of {what} passed")
    first = "; ".join(error_line(p) for p in problems[:3])
    return Event(
        "verification_failed",
        source,
        job,
        f"verification of {what} failed: {first}",
        {"failed_backups": len(problems), "error": first},
    )


def prune_applied(
    source: str,
    repository: str,
    deleted: Sequence[str],
    kept: int,
    wal_expired: int,
    job: str = "prune",
) -> Event:
    return Event(
        "prune_applied",
        source,
        job,
        f"prune of {source} in {repository}: {len(deleted)} backup(s) deleted, {kept} kept",
        {
            "repository": repository,
            "deleted": ", ".join(deleted) or None,
            "kept": kept,
            "wal_files_expired": wal_expired,
        },
    )


def prune_reported(summary: Mapping[str, Any], job: str = "prune") -> Event | None:
    """prune_applied from a prune's summary (ops/prune.py), None when it deleted nothing."""
    deleted = [str(b) for b in summary["deleted"]]
    wal_deleted = int(summary["wal"]["deleted"])
    if not deleted and not wal_deleted:
        return None
    kept = len(summary["backups"]) - len(deleted)
    return prune_applied(summary["source"], summary["repository"], deleted, kept, wal_deleted, job)


def job_failed(job: str, source: str | None, error: str) -> Event:
    """A job with no failure event of its own (prune, copy, report) failed."""
    line = error_line(error)
    return Event(
        "job_failed",
        source,
        job,
        f"{job} of {source or 'every source'} failed: {line}",
        {"error": line},
    )


def job_succeeded(job: str, source: str | None) -> Event:
    """Quiet unless it ends the job's open job_failed incident."""
    return Event("job_succeeded", source, job, f"{job} of {source or 'every source'} done")
