"""Exported jobs run for real: the crontab lines `lifeboat export cron` writes, run by
/bin/sh with cron's bare environment and confined as the systemd units confine them (the
kernel's memory-deny-write-execute, systemd's @system-service system call filter), back a
real database up and drill the backup."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from lifeboat.postgres.binaries import BIN_DIRS_ENV
from lifeboat.postgres.instance import ScratchCluster
from tests.cronlines import entries, kernel_denies_write_execute, run_as_cron
from tests.syscalls import system_service_filter

from .helpers import LIFEBOAT, fill_rich, make_workspace
from .versions import on_oldest_major

JOBS = """
[schedule.nightly]
job = "backup"
source = "wms"
daily_at = "01:00"

[schedule.quarterly-drill]
job = "drill"
source = "wms"
cron = "0 4 1 */3 *"
"""


@on_oldest_major
def test_the_exported_lines_back_up_and_drill_confined_as_the_units(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path
) -> None:
    if not kernel_denies_write_execute():
        pytest.skip("this kernel has no PR_SET_MDWE (Linux < 6.3)")
    fill_rich(pg_cluster, fresh_db)
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db))
    # the drill's scratch cluster runs as the server's OS user: a folder it can reach
    work_dir = Path(tempfile.mkdtemp(prefix="lifeboat-export-drill-"))
    work_dir.chmod(0o755)
    with ws.config.open("a") as config:
        config.write(f'[sources.wms.drill]\nwork_dir = "{work_dir}"\n' + JOBS)
    environment = tmp_path / "lifeboat.env"
    # what the jobs need from the environment: here, where the client tools are
    environment.write_text(f"{BIN_DIRS_ENV}='{os.environ[BIN_DIRS_ENV]}'\n")
    printed = ws.run(
        "export", "cron", "--lock-dir", str(tmp_path), "--environment-file", str(environment),
        check=True,
    ).stdout  # fmt: skip
    (backup_line, drill_line) = entries(printed)
    assert (backup_line[0], drill_line[0]) == ("0 1 * * *", "0 4 1 */3 *")
    assert LIFEBOAT in backup_line[1]
    confine = system_service_filter()
    try:
        run_as_cron(backup_line[1], tmp_path, deny_wx=True, confine=confine)
        (backup,) = ws.run_json("list")
        assert (backup["source"], backup["type"]) == ("wms", "logical")  # backup's default
        # a drill starts a scratch PostgreSQL: the filter, not memory-deny-write-execute
        run_as_cron(drill_line[1], tmp_path, confine=confine)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    (drill,) = ws.run_json("drills")["records"]
    assert (drill["backup"], drill["verdict"]) == (backup["id"], "pass")
