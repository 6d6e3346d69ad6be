"""An exported job runs a real backup: the crontab line `lifeboat export cron` writes, run
by /bin/sh with cron's bare environment and under the kernel's memory-deny-write-execute
(what the systemd units set), backs a real database up into the repository."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lifeboat.postgres.binaries import BIN_DIRS_ENV
from lifeboat.postgres.instance import ScratchCluster
from tests.cronlines import entries, kernel_denies_write_execute, run_as_cron

from .helpers import LIFEBOAT, fill_rich, make_workspace
from .versions import on_oldest_major

JOBS = """
[schedule.nightly]
job = "backup"
source = "wms"
daily_at = "01:00"
"""


@on_oldest_major
def test_the_exported_line_backs_up_under_memory_deny_write_execute(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path
) -> None:
    if not kernel_denies_write_execute():
        pytest.skip("this kernel has no PR_SET_MDWE (Linux < 6.3)")
    fill_rich(pg_cluster, fresh_db)
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db))
    with ws.config.open("a") as config:
        config.write(JOBS)
    environment = tmp_path / "lifeboat.env"
    # what the jobs need from the environment: here, where the client tools are
    environment.write_text(f"{BIN_DIRS_ENV}='{os.environ[BIN_DIRS_ENV]}'\n")
    printed = ws.run(
        "export", "cron", "--lock-dir", str(tmp_path), "--environment-file", str(environment),
        check=True,
    ).stdout  # fmt: skip
    ((schedule, command),) = entries(printed)
    assert schedule == "0 1 * * *"
    run_as_cron(command, tmp_path, deny_wx=True)
    (backup,) = ws.run_json("list")
    assert (backup["source"], backup["type"]) == ("wms", "logical")  # backup's default
    assert ws.run("verify", "--deep").returncode == 0
    assert LIFEBOAT in command
