"""`lifeboat demo --keep`: the cluster it says it left running still runs after the command
has exited (the scratch clusters' exit hook must not stop it)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import psycopg

from lifeboat.postgres.binaries import find_bin_dirs
from lifeboat.postgres.instance import ScratchCluster

from .helpers import LIFEBOAT

KEPT = re.compile(r"cluster left running on port (\d+) \(data in (.+)\)")


def test_demo_keep_leaves_the_cluster_running(tmp_path: Path) -> None:
    proc = subprocess.run(
        [LIFEBOAT, "demo", "--keep", "--size-mb", "1", "--workdir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    kept = KEPT.search(proc.stdout)
    assert proc.returncode == 0, proc.stderr
    assert kept is not None, proc.stdout
    port, base = int(kept.group(1)), Path(kept.group(2))
    try:
        with psycopg.connect(
            host="127.0.0.1", port=port, user="postgres", dbname="wms", connect_timeout=10
        ) as conn:
            row = conn.execute("SELECT count(*) > 0 FROM lots").fetchone()
        assert row == (True,)
    finally:
        ScratchCluster(find_bin_dirs()[-1], base).stop(mode="immediate")
        shutil.rmtree(base, ignore_errors=True)
