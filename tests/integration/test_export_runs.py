"""An exported job runs a real backup: the crontab line `lifeboat export cron` writes, run
by /bin/sh with cron's bare environment and under the kernel's memory-deny-write-execute
(what the systemd units set), backs a real database up into the repository."""

from __future__ import annotations

import ctypes
import os
import subprocess
from pathlib import Path

import pytest

from lifeboat.postgres.binaries import BIN_DIRS_ENV
from lifeboat.postgres.instance import ScratchCluster

from .helpers import LIFEBOAT, fill_rich, make_workspace
from .versions import on_oldest_major

PR_SET_MDWE = 65

JOBS = """
[schedule.wms-hourly]
source = "wms"
job = "backup"
type = "logical"
cron = "0 * * * *"
"""


def _deny_write_execute() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_MDWE, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_MDWE)")


@on_oldest_major
def test_the_exported_line_backs_up_under_memory_deny_write_execute(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path
) -> None:
    try:
        subprocess.run(["true"], preexec_fn=_deny_write_execute, check=True)
    except subprocess.SubprocessError:
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
    (line,) = [line for line in printed.splitlines() if line.startswith("0 * * * * ")]
    command = line.removeprefix("0 * * * * ").replace("\\%", "%")
    cron_environment = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "XDG_CACHE_HOME": os.environ["XDG_CACHE_HOME"],
        "XDG_STATE_HOME": os.environ["XDG_STATE_HOME"],
    }
    subprocess.run(
        ["/bin/sh", "-c", command],
        env=cron_environment,
        preexec_fn=_deny_write_execute,
        check=True,
        timeout=300,
    )
    (backup,) = ws.run_json("list")
    assert (backup["source"], backup["type"]) == ("wms", "logical")
    assert ws.run("verify", "--deep").returncode == 0
    assert LIFEBOAT in command
