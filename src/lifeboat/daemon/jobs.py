"""A scheduled job runs the library call of the command of the same name (the functions
cli/commands/*.py call), and ends as an Outcome: ok, or failed with its one line."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lifeboat.config.model import ScheduleConfig
from lifeboat.context import Context
from lifeboat.errors import LifeboatError, describe_failure
from lifeboat.notify.event import Event


@dataclass(frozen=True)
class Outcome:
    ok: bool
    # what was done, or the one-line reason it failed
    message: str
    # the run was cut short: the daemon stopped, or its timeout passed
    cancelled: bool = False
    # what the run tells beside its outcome, as its command does (a prune's prune_applied)
    events: tuple[Event, ...] = ()
    # a group's backup: each source's run (source, ok, seconds, backup type), recorded in
    # the metrics as `backup SOURCE`'s would be
    source_runs: tuple[tuple[str, bool, float, str], ...] = ()
    # the notification the run's command sends for its outcome, when the run has it
    # (a backup's backup_succeeded with what was stored); else attach.py words one
    told: Event | None = None


def execute(ctx: Context, job: ScheduleConfig, now: datetime, reports: Path) -> Outcome:
    """Run the job; every failure but a cancellation (a BaseException) becomes an Outcome.
    `reports`: the default folder of report jobs."""
    try:
        done = _RUNS[job.job](ctx, job, now, reports)
        return done if isinstance(done, Outcome) else Outcome(True, done)
    except Exception as exc:  # an unexpected error fails the job, not the daemon
        return Outcome(False, describe_failure(exc)[0])


def _backup(ctx: Context, job: ScheduleConfig, now: datetime, reports: Path) -> str | Outcome:
    from lifeboat.ops.backup_one import back_up
    from lifeboat.sources.registry import BackupOptions

    if job.group is not None:
        return _backup_group(ctx, job)
    assert job.source is not None
    # the defaults of `lifeboat backup`: 120 s for the backup's WAL, full backups
    done = back_up(ctx, job.source, BackupOptions(job.type))
    backup_id = done.summary["id"]
    if done.failed:
        missing = "; ".join(f"{name}: {why}" for name, why in done.failed.items())
        raise LifeboatError(f"backup {backup_id} is missing from {missing}")
    line = f"backup {backup_id} in {', '.join(done.summary['repositories'])}"
    return Outcome(True, line, told=done.event())


def _backup_group(ctx: Context, job: ScheduleConfig) -> Outcome:
    """A group's sources, as `backup --group NAME --parallel N` backs them up: each one's
    notification is the run's to tell (attach.py), beside the run's own outcome."""
    from lifeboat.ops.backup_many import backup_many
    from lifeboat.sources.registry import BackupOptions

    sources = ctx.config.job_sources(job)
    report = backup_many(ctx, sources, job.parallel, BackupOptions(job.type))
    events = tuple(o.event() for o in report.outcomes)
    runs = tuple((o.source, o.ok, o.seconds, o.backup_type) for o in report.outcomes)
    failed = report.failed
    if failed:
        first = "; ".join(f"{o.source}: {o.problem}" for o in failed[:3])
        message = f"{len(failed)} of {len(sources)} source(s) failed: {first}"
        return Outcome(False, message, events=events, source_runs=runs)
    return Outcome(True, f"{len(sources)} source(s) backed up", events=events, source_runs=runs)


def _verify(ctx: Context, job: ScheduleConfig, now: datetime, reports: Path) -> str:
    from lifeboat.ops.verify import verify

    report = verify(ctx, job.source, job.deep, job.repository)
    failed = [c for c in report.checks if not c.ok]
    if failed:
        raise LifeboatError(
            f"{len(failed)} backup(s) failed verification: "
            + "; ".join(f"{c.source}/{c.backup}: {c.problems[0]}" for c in failed[:3])
        )
    return f"{len(report.checks)} backup(s) verified"


def _drill(ctx: Context, job: ScheduleConfig, now: datetime, reports: Path) -> str:
    from lifeboat.ops.drill import DrillOptions, drill

    assert job.source is not None
    options = DrillOptions(repository=job.repository, began=time.monotonic())
    report = drill(ctx, [job.source], options)
    if not report.ok:
        failed = [f"{r.source}/{r.backup}: {r.reasons[0]}" for r in report.records if not r.passed]
        failed += [f"{name}: {why}" for name, why in report.errors.items()]
        raise LifeboatError("drill failed: " + "; ".join(failed[:3]))
    return f"{len(report.records)} drill(s) passed"


def _prune(ctx: Context, job: ScheduleConfig, now: datetime, reports: Path) -> Outcome:
    from lifeboat.notify.outcomes import prune_reported
    from lifeboat.ops.prune import policy_for, prune

    sources = [job.source] if job.source else list(ctx.config.sources)
    deleted = 0
    events = []
    for name in sources:
        for repo in ctx.repositories_for(name, job.repository):
            policy, zone = policy_for(ctx.config, name, repo.name)
            summary = prune(repo, name, policy, zone, False).summary()
            deleted += len(summary["delete"])
            applied = prune_reported(summary, job.job)
            if applied is not None:
                events.append(applied)
    return Outcome(True, f"{deleted} backup(s) deleted", events=tuple(events))


def _copy(ctx: Context, job: ScheduleConfig, now: datetime, reports: Path) -> str:
    from lifeboat.repo.copy import copy_repository, raise_conflicts, sources_to_copy

    assert job.repository and job.to
    origin, target = ctx.repository(job.repository), ctx.repository(job.to)
    copied = copy_repository(
        origin, target, sources_to_copy(origin, list(ctx.config.sources), job.source)
    )
    raise_conflicts(copied)
    return f"{sum(len(r.backups_copied) for r in copied)} backup(s) copied"


def _report(ctx: Context, job: ScheduleConfig, now: datetime, reports: Path) -> str:
    from lifeboat.ops.report import build
    from lifeboat.ops.report_html import render
    from lifeboat.util.fs import write_atomically

    start, end = previous_quarter(now)
    report = build(ctx, start, end, job.source)
    folder = job.output or reports
    quarter = f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    target = folder / f"report-{job.source or 'all'}-{quarter}.html"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_atomically(target, render(report).encode())
    except OSError as exc:
        raise LifeboatError(f"cannot write the report to {target}: {exc.strerror or exc}") from None
    failing = report.not_passed()
    if failing:
        raise LifeboatError(
            f"report written to {target}; controls not passed: {', '.join(failing)}"
        )
    return f"report written to {target}"


def previous_quarter(now: datetime) -> tuple[datetime, datetime]:
    """The last full calendar quarter before now, in UTC: [start, end)."""
    current = datetime(now.year, (now.month - 1) // 3 * 3 + 1, 1, tzinfo=UTC)
    month = current.month - 3
    start = (
        datetime(current.year - 1, month + 12, 1, tzinfo=UTC)
        if month < 1
        else datetime(current.year, month, 1, tzinfo=UTC)
    )
    return start, current


_RUNS: dict[str, Callable[[Context, ScheduleConfig, datetime, Path], str | Outcome]] = {
    "backup": _backup,
    "verify": _verify,
    "drill": _drill,
    "prune": _prune,
    "copy": _copy,
    "report": _report,
}
