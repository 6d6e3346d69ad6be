"""lifeboat daemon [--once] [--grace D]."""

from __future__ import annotations

import sys

import click

from lifeboat.cli.main import state
from lifeboat.errors import UsageError


@click.command()
@click.option(
    "--once",
    is_flag=True,
    help="Run the jobs due now (missed runs caught up), wait for them and exit: 1 when one "
    "failed. For cron-driven hosts and checks.",
)
@click.option(
    "--grace",
    default="5m",
    show_default=True,
    help="On SIGTERM/SIGINT, how long running jobs may finish before they are cancelled.",
)
def command(once: bool, grace: str) -> None:
    """Run the [schedule.NAME] jobs: at their times, one job per source at a time, prune
    and copy alone per repository, missed runs caught up once, failures retried. SIGTERM
    or SIGINT: no new job, running ones finish within --grace, then are cancelled (exit 1);
    a second signal cancels at once. One daemon per configuration. Each run's outcome goes
    through the notification channels and its ping_url; the sources' health (RPO, overdue
    backups) is watched and notified; [metrics] listen serves /metrics and /healthz."""
    from lifeboat.daemon.attach import daemon_hooks
    from lifeboat.daemon.service import run_daemon
    from lifeboat.policy.retention import parse_duration

    try:
        patience = parse_duration(grace)
    except ValueError as exc:
        raise UsageError(f"--grace: {exc}") from None
    ctx = state().context()
    sys.exit(run_daemon(ctx.config, ctx.config_path, once, patience, hooks=daemon_hooks(ctx)))
