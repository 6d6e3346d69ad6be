"""The command line of a scheduled job: the same `lifeboat ...` a user would type."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lifeboat.config.model import LifeboatConfig, ScheduleConfig
from lifeboat.export.schedule import NotExportable


@dataclass(frozen=True)
class ScheduledJob:
    """One [schedule.NAME] table with its name, as the exports see it."""

    name: str
    job: ScheduleConfig

    @property
    def where(self) -> str:
        return f"schedule.{self.name}"

    @property
    def lock_key(self) -> str:
        """Runs with the same key never overlap: a source's jobs share one, and a job of
        no source (prune or copy of every source) has its own."""
        return self.job.source or self.job.group or self.name


def selected_jobs(config: LifeboatConfig, only: tuple[str, ...]) -> list[ScheduledJob]:
    """The jobs to export: every one, or those named (in the config's order)."""
    unknown = [name for name in only if name not in config.schedule]
    if unknown:
        known = ", ".join(config.schedule) or "none"
        raise NotExportable(f"no scheduled job {unknown[0]!r} (configured: {known})")
    jobs = [
        ScheduledJob(name, job) for name, job in config.schedule.items() if not only or name in only
    ]
    if not jobs:
        raise NotExportable("the config has no [schedule.NAME] job to export")
    return jobs


def job_arguments(scheduled: ScheduledJob, ping_url: str | None = None) -> list[str]:
    """The lifeboat subcommand and its arguments that run the job; with the schedule's
    dead-man's switch as --ping URL, pinged by the command as the daemon would."""
    return _arguments(scheduled) + (["--ping", ping_url] if ping_url else [])


def _arguments(scheduled: ScheduledJob) -> list[str]:
    job = scheduled.job
    if job.job == "backup":
        if job.group is not None:
            return ["backup", "--group", job.group] + (
                ["--parallel", str(job.parallel)] if job.parallel > 1 else []
            )
        assert job.source is not None
        return ["backup", job.source] + (["--type", job.type] if job.type else [])
    if job.job == "verify":
        return (
            ["verify"]
            + ([job.source] if job.source else [])
            + (["--deep"] if job.deep else [])
            + (["--repo", job.repository] if job.repository else [])
        )
    if job.job == "drill":
        assert job.source is not None
        return ["drill", job.source]
    if job.job == "prune":
        return (
            ["prune"]
            + ([job.source] if job.source else [])
            + (["--repo", job.repository] if job.repository else [])
        )
    if job.job == "copy":
        assert job.repository is not None and job.to is not None
        return ["copy", "--from", job.repository, "--to", job.to] + (
            ["--source", job.source] if job.source else []
        )
    raise NotExportable(
        f"{scheduled.where}: a report job is not exported: the period it reports on is "
        "worked out when it runs, which a fixed command line cannot do; leave it to "
        "`lifeboat daemon`, and export the other jobs with --job NAME"
    )


def command_line(lifeboat: Path, config_path: Path, scheduled: ScheduledJob) -> list[str]:
    arguments = job_arguments(scheduled, scheduled.job.ping_url)
    return [str(lifeboat), "--config", str(config_path), *arguments]
