"""`lifeboat daemon`: one scheduler per configuration, its state and lock in the state
folder, stopped by SIGTERM or SIGINT. The hook points (DaemonHooks) are where
notifications and metrics attach."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lifeboat.config.model import LifeboatConfig
from lifeboat.context import Context
from lifeboat.daemon.jobs import Outcome, execute
from lifeboat.daemon.overlap import claims_of
from lifeboat.daemon.runner import JobHook, JobRun, RealSleeper, Runner, StartHook
from lifeboat.daemon.state import StateFile, lock_file, state_file
from lifeboat.errors import ConfigError, LifeboatError
from lifeboat.util.fs import make_private_dirs
from lifeboat.util.proc import stop_on_signals
from lifeboat.util.singleton import held_or_none
from lifeboat.util.statedir import state_dir

log = logging.getLogger(__name__)


@dataclass
class DaemonHooks:
    """What runs beside the scheduler: callbacks at each job's start and end (on the
    scheduler's thread: keep them quick, or hand the work off), and services (an HTTP
    server for /metrics...) entered before the first job and left after the last."""

    on_job_started: list[StartHook] = field(default_factory=list)
    on_job_finished: list[JobHook] = field(default_factory=list)
    services: list[AbstractContextManager[object]] = field(default_factory=list)
    # each time the scheduler's loop goes round (at least once a minute)
    on_tick: list[Callable[[], None]] = field(default_factory=list)


def utc_now() -> datetime:
    return datetime.now(UTC)


def run_daemon(
    config: LifeboatConfig,
    config_path: Path,
    once: bool,
    grace: timedelta,
    hooks: DaemonHooks | None = None,
    folder: Path | None = None,
) -> int:
    """Run the schedule until a signal stops it (once: the jobs due now); the exit code."""
    if not config.schedule:
        raise ConfigError(
            f"no [schedule.NAME] table in {config_path}: the daemon has nothing to run"
        )
    hooks = hooks or DaemonHooks()
    folder = folder or state_dir()
    try:
        make_private_dirs(folder)
    except OSError as exc:
        raise LifeboatError(
            f"cannot create the state folder {folder}: {exc.strerror or exc}"
        ) from None
    lock = lock_file(folder, config_path)
    with held_or_none(lock) as held:
        if not held:
            raise LifeboatError(
                f"another lifeboat daemon runs with {config_path} (it holds {lock})"
            )
        runner = Runner(
            jobs=config.schedule,
            claims={name: claims_of(job, config) for name, job in config.schedule.items()},
            execute=_executor(config, config_path, folder),
            state=StateFile(state_file(folder, config_path)),
            clock=utc_now,
            sleeper=RealSleeper(),
            grace=grace,
            on_job_started=list(hooks.on_job_started),
            on_job_finished=list(hooks.on_job_finished),
            on_cancel=[stop_child_processes],
            on_tick=list(hooks.on_tick),
        )
        # a second signal cancels the running jobs at once (Runner.request_stop)
        stopping = stop_on_signals(runner.request_stop, "stopping")
        with contextlib.ExitStack() as services, stopping:
            for service in hooks.services:
                services.enter_context(service)
            log.info(
                "daemon started: %d job(s), state in %s", len(config.schedule), runner.state.path
            )
            code = runner.run(once)
        log.info("daemon stopped")
        return code


def _executor(
    config: LifeboatConfig, config_path: Path, folder: Path
) -> Callable[[JobRun], Outcome]:
    def run(job_run: JobRun) -> Outcome:
        # a Context per run: its opened repositories are not shared between threads
        ctx = Context(config, config_path)
        return execute(ctx, job_run.job, job_run.started, folder / "reports")

    return run


def stop_child_processes() -> None:
    """SIGTERM to the daemon's own child processes (pg_dump, pg_basebackup, a drill's
    scratch server...): a job blocked reading one of them then sees its end and unwinds."""
    me = str(os.getpid())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # field 4, after the command name in parentheses (which may hold anything)
        fields = stat.rpartition(")")[2].split()
        if len(fields) > 1 and fields[1] == me:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGTERM)
