"""A repository written by Lifeboat before manifest format 2 (tests/data/format1, see its
README) stays readable: listed, shown, verified, pruned and restored by the current code."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from lifeboat.postgres.instance import ScratchCluster

from .helpers import Workspace
from .test_manual_restore import documented_backup_choice
from .versions import on_oldest_major

FORMAT1 = Path(__file__).parent.parent / "data" / "format1"
LOGICAL = "20261206T190035.570628Z-947c"
PHYSICAL = "20261206T190037.071563Z-b840"


def _workspace(root: Path, dsn: str) -> Workspace:
    shutil.copytree(FORMAT1, root, dirs_exist_ok=True)
    public = next(
        line.split(":", 1)[1].strip()
        for line in (root / "age.key").read_text().splitlines()
        if line.startswith("# public key:")
    )
    ws = Workspace(root, public, in_process=True)
    ws.write_config(dsn, extra_source="\n[retention]\nkeep_last = 1\n")
    return ws


@on_oldest_major  # reading the older format is Lifeboat's, whatever the server
def test_a_format1_repository_is_listed_shown_verified_and_restored(
    pg_cluster: ScratchCluster, tmp_path: Path
) -> None:
    ws = _workspace(tmp_path / "ws", pg_cluster.dsn())

    listed = ws.run_json("list")
    assert [(b["id"], b["type"], b["database"]) for b in listed] == [
        (LOGICAL, "logical", "shop"),
        (PHYSICAL, "physical", ""),
    ]
    shown = ws.run("show", LOGICAL, check=True).stdout
    assert "public.orders" in shown
    as_stored = ws.run_json("show", LOGICAL)
    assert (as_stored["format"], as_stored["type"], as_stored["database"]) == (1, "logical", "shop")
    physical = ws.run("show", PHYSICAL, check=True).stdout
    assert "000000010000000000000003" in physical

    verified = ws.run_json("verify", "--deep")
    assert {(c["id"], c["ok"], c["deep"]) for c in verified} == {
        (LOGICAL, True, True),
        (PHYSICAL, True, True),
        ("wal-archive", True, True),
    }

    # retention counts the two kinds on their own: each is its kind's newest
    plan = ws.run_json("prune", "wms", "--dry-run")[0]
    assert plan["delete"] == []
    assert {(b["id"], b["type"], tuple(b["rules"])) for b in plan["backups"]} == {
        (LOGICAL, "logical", ("newest", "last")),
        (PHYSICAL, "physical", ("newest", "last")),
    }

    target = "format1_shop"
    try:
        ws.run("restore", "wms", "--backup", LOGICAL, "--target-db", target, "--yes", check=True)
        counts = pg_cluster.psql(
            "SELECT (SELECT count(*) FROM item) || ' ' || (SELECT count(*) FROM orders)", target
        )
        assert counts == "50 120"
    finally:
        pg_cluster.psql(f'DROP DATABASE IF EXISTS "{target}"')


def test_the_documented_manual_choice_finds_format1_backups() -> None:
    """docs/manual-restore.md's step 1, run as written, picks backups of both formats."""
    for backup_type, wanted in (("logical", LOGICAL), ("physical", PHYSICAL)):
        script = f"set -euo pipefail\nREPO={FORMAT1 / 'repo'}\nSOURCE=wms\n"
        script += documented_backup_choice(backup_type) + '\necho "$ID"\n'
        done = subprocess.run(["bash", "-c", script], check=True, capture_output=True, text=True)
        assert done.stdout.strip() == wanted
