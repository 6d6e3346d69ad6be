"""lifeboat schedule [--json]."""

from __future__ import annotations

import click

from lifeboat.cli import output
from lifeboat.cli.main import json_option, state, wants_json


@click.command()
@json_option
def command(as_json: bool) -> None:
    """Each scheduled job's next run, in its time zone and in UTC, and its last run and
    result (from the daemon's state file)."""
    from lifeboat.daemon.overview import job_overview
    from lifeboat.daemon.service import utc_now
    from lifeboat.daemon.state import StateFile, state_file
    from lifeboat.util.statedir import state_dir

    ctx = state().context()
    records = StateFile(state_file(state_dir(), ctx.config_path))
    records.load()
    now = utc_now()
    rows = [
        job_overview(name, job, records.records.get(name), now)
        for name, job in sorted(ctx.config.schedule.items())
    ]
    if wants_json(as_json):
        output.print_json(rows)
        return
    if not rows:
        click.echo(f"no [schedule.NAME] table in {ctx.config_path}")
        return
    output.table(
        "schedule",
        ["job", "runs", "schedule", "next run (local)", "next run (UTC)", "last run", "result"],
        [
            [
                row["name"],
                f"{row['job']} {row['source'] or _group(row['group'])}".strip(),
                row["schedule"] + f" {row['timezone']}",
                (
                    "now (catching up)"
                    if row["catching_up"]
                    else row["next_run"][:19].replace("T", " ")
                ),
                row["next_run_utc"][:19].replace("T", " "),
                (row["last_started"] or "never")[:19].replace("T", " "),
                row["last_result"] or "-",
            ]
            for row in rows
        ],
    )


def _group(name: str | None) -> str:
    return f"group {name}" if name else ""
