"""The safety backups restore takes of the database it replaces: marked in `list` and
`show`, counted by no retention rule, and deleted by prune once they expire unless held."""

from __future__ import annotations

from pathlib import Path

from lifeboat.postgres.instance import ScratchCluster

from .helpers import Workspace, make_workspace
from .versions import on_oldest_major


def with_retention(ws: Workspace, base: str, table: str) -> None:
    ws.config.write_text(base + f"\n[retention]\n{table}\n")


@on_oldest_major  # retention works on the repository, whatever the server's version
def test_safety_backups_count_for_no_rule_and_expire_unless_held(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path
) -> None:
    pg_cluster.psql("CREATE TABLE lots (id int PRIMARY KEY); INSERT INTO lots VALUES (1)", fresh_db)
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db), in_process=True)
    base = ws.config.read_text()
    older = ws.run_json("backup", "wms")["id"]
    newest = ws.run_json("backup", "wms")["id"]
    # two restores over the database: two safety backups, newer than every real one
    held = ws.run_json("restore", "wms", "--backup", older, "--yes")["safety_backup"]
    unheld = ws.run_json("restore", "wms", "--backup", newest, "--yes")["safety_backup"]
    ws.run("hold", held, "--reason", "incident 12", check=True)

    listed = {b["id"]: b for b in ws.run_json("list", "wms")}
    assert [listed[i]["safety"] for i in (older, newest, held, unheld)] == [
        False,
        False,
        True,
        True,
    ]
    table = ws.run("list", "wms", check=True).stdout
    assert table.count("logical (safety)") == 2
    shown = ws.run("show", unheld, check=True).stdout
    assert "logical (safety)" in shown
    assert f"before_restore_of={newest}" in shown

    # keep_last = 1 keeps the newest real backup, not the newer safety backups
    with_retention(ws, base, "keep_last = 1")
    planned = {b["id"]: b for b in ws.run_json("prune", "wms", "--dry-run")[0]["backups"]}
    assert planned[newest]["rules"] == ["newest", "last"]
    assert planned[older]["decision"] == "delete"
    assert planned[held]["rules"] == ["safety", "hold"]
    assert planned[unheld]["rules"] == ["safety"]
    assert planned[unheld]["reasons"][0].startswith(
        f"safety backup taken before restore of {newest} into {fresh_db}: expires "
    )

    # expired: the next prune deletes it, unless it is held
    with_retention(ws, base, 'keep_last = 1\nsafety_backups_expire_after = "0s"')
    pruned = ws.run_json("prune", "wms")[0]
    assert pruned["deleted"] == [older, unheld]
    decided = {b["id"]: b for b in pruned["backups"]}
    assert decided[held]["rules"] == ["hold"]
    assert decided[unheld]["reasons"][0].startswith(
        f"safety backup taken before restore of {newest} into {fresh_db}: expired "
    )
    assert [b["id"] for b in ws.run_json("list", "wms")] == [newest, held]
    # `latest` is still the real backup
    assert ws.run_json("restore", "wms", "--yes")["backup"] == newest
