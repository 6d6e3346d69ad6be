"""One backup whose manifest and its copy are both unreadable is listed as damaged, with
why, while every other backup is listed as usual; verify fails naming it; status shows the
newest readable backup, names the damaged one and exits 1."""

from __future__ import annotations

import json
from pathlib import Path

from lifeboat.postgres.instance import ScratchCluster

from .helpers import error_line, fill_rich, make_workspace
from .versions import on_oldest_major

# listing a damaged repository does not depend on the server's version:
# run once, on the oldest installed major
pytestmark = on_oldest_major


def test_a_damaged_backup_does_not_hide_the_others(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path
) -> None:
    fill_rich(pg_cluster, fresh_db)
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db), in_process=True)
    damaged = ws.run_json("backup", "wms")["id"]
    intact = ws.run_json("backup", "wms")["id"]
    folder = ws.repo / "wms" / "backups" / damaged
    for name in ("manifest.json", "manifest.copy.json"):
        (folder / name).write_text("{ not json", encoding="utf-8")

    listed = ws.run_json("list")
    assert [entry["id"] for entry in listed] == [intact, damaged]
    assert "damaged" not in listed[0]
    assert listed[1]["source"] == "wms"
    assert "manifest" in listed[1]["damaged"]

    table = ws.run("list")
    assert table.returncode == 0, table.stderr
    assert intact in table.stdout and damaged in table.stdout
    assert f"wms/{damaged} is damaged" in table.stderr

    verify = ws.run("verify")
    assert verify.returncode == 1
    assert damaged in verify.stderr


def test_status_shows_the_newest_readable_backup_and_names_the_damaged_one(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path
) -> None:
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db), in_process=True)
    intact = ws.run_json("backup", "wms")["id"]
    damaged = ws.run_json("backup", "wms")["id"]  # the newest: status used to stop at it
    folder = ws.repo / "wms" / "backups" / damaged
    for name in ("manifest.json", "manifest.copy.json"):
        (folder / name).write_text("{ not json", encoding="utf-8")

    # monitoring runs status: the report is complete, and the exit code says something is
    # wrong
    result = ws.run("status", "wms", "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)[0]
    assert report["newest_backup"]["id"] == intact
    assert report["repository_error"] is None
    [bad] = report["repositories"][0]["damaged_backups"]
    assert bad["id"] == damaged and "manifest" in bad["error"]
    assert f"local: wms/{damaged}" in error_line(result)

    table = ws.run("status", "wms")
    assert table.returncode == 1
    assert intact in table.stdout and f"{damaged}:" in table.stdout
    assert "damaged backup" in table.stdout
    assert "1 damaged backup(s)" in error_line(table)
