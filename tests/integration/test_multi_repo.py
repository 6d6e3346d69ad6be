"""Several repositories per source: one backup fanned out to each, a repository that fails
reported while the others complete, restore and wal-fetch trying them in order, and
`lifeboat copy` between two repositories."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from lifeboat.postgres.instance import ScratchCluster
from lifeboat.repo.manifest import decode, encode

from .helpers import (
    Workspace,
    assert_restores_identically,
    error_line,
    fill_rich,
    make_workspace,
    wal_segment,
)
from .versions import on_oldest_major

# writing to and copying between repositories does not depend on the server's version:
# run once, on the oldest installed major
pytestmark = on_oldest_major


def two_repositories(ws: Workspace, dsn: str, source_repos: str = "") -> tuple[Path, Path]:
    """Rewrite the workspace's config with repositories `primary` and `dr`."""
    primary, dr = ws.root / "primary", ws.root / "dr"
    ws.config.write_text(
        f'[repositories.primary]\nurl = "file://{primary}"\n\n'
        f'[repositories.dr]\nurl = "file://{dr}"\n\n'
        f'[encryption]\nage_recipients = ["{ws.public_key}"]\n'
        f'age_identity_file = "{ws.identity}"\n\n'
        f'[sources.wms]\ntype = "postgres"\ndsn = "{dsn}"\n{source_repos}\n'
    )
    ws.run("init", check=True)
    return primary, dr


def test_one_backup_reaches_every_repository_and_restores_from_either(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path
) -> None:
    fill_rich(pg_cluster, fresh_db)
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db), in_process=True)
    primary, dr = two_repositories(ws, pg_cluster.dsn(fresh_db))

    made = ws.run_json("backup", "wms")
    assert made["repositories"] == ["primary", "dr"] and made["failed_repositories"] == {}
    for repo in (primary, dr):
        objects = (repo / "wms" / "backups" / made["id"]).glob("*.zst.age")  # dump and roles
        assert sum(stored.stat().st_size for stored in objects) == made["stored_size"]
    # both copies are the same bytes: one pg_dump, compressed and encrypted once
    assert (primary / "wms" / "backups" / made["id"] / "dump.zst.age").read_bytes() == (
        dr / "wms" / "backups" / made["id"] / "dump.zst.age"
    ).read_bytes()
    listed = ws.run_json("list", "wms")
    assert sorted((b["repository"], b["id"]) for b in listed) == [
        ("dr", made["id"]),
        ("primary", made["id"]),
    ]

    # the primary loses the backup: restore finds it in dr by itself
    shutil.rmtree(primary / "wms" / "backups" / made["id"])
    target = f"{fresh_db}_from_dr"
    assert_restores_identically(ws, pg_cluster, fresh_db, target)
    # --repo insists on one repository
    refused = ws.run("restore", "wms", "--target-db", target, "--repo", "primary")
    assert refused.returncode != 0
    assert "no logical backup of wms in repository primary" in error_line(refused)


def test_a_failing_repository_is_reported_and_the_others_still_get_the_backup(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path
) -> None:
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db), in_process=True)
    primary, dr = two_repositories(ws, pg_cluster.dsn(fresh_db))
    # a real failure: where dr keeps this source's backups there is a file, not a folder
    (dr / "wms").mkdir(exist_ok=True)
    (dr / "wms" / "backups").write_text("in the way\n")

    result = ws.run("backup", "wms")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    backup = result.stdout.strip()
    assert (primary / "wms" / "backups" / backup / "manifest.json").is_file()
    assert "repository dr did not get the backup" in result.stderr
    listed = ws.run_json("list", "wms", "--repo", "primary")
    assert [b["id"] for b in listed] == [backup]


def test_copy_replicates_what_is_missing_checks_it_and_resumes(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path
) -> None:
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db), in_process=True)
    primary, dr = two_repositories(ws, pg_cluster.dsn(fresh_db), 'repositories = ["primary"]')
    first = ws.run_json("backup", "wms")["id"]
    second = ws.run_json("backup", "wms")["id"]
    assert not (dr / "wms").exists()

    copied = ws.run_json("copy", "--from", "primary", "--to", "dr")
    assert copied == [
        {
            "source": "wms",
            "backups_copied": [first, second],
            "backups_already_there": 0,
            "conflicts": [],
            "refused": None,
            "cluster_records_copied": 1,  # the cluster the first backup recorded
            "wal_files_copied": 0,
            "wal_files_already_there": 0,
            "hold_records_copied": 0,
            "drill_records_copied": 0,
            "bytes_copied": copied[0]["bytes_copied"],
            "leftovers_removed": [],
            "unfinished_uploads_removed": [],
        }
    ]
    assert copied[0]["bytes_copied"] > 0
    assert [b["id"] for b in ws.run_json("list", "--repo", "dr")] == [first, second]
    again = ws.run_json("copy", "--from", "primary", "--to", "dr")
    assert again[0]["backups_copied"] == [] and again[0]["backups_already_there"] == 2

    # a corrupted object in the origin is not propagated, and nothing half-copied is listed
    third = ws.run_json("backup", "wms")["id"]
    dump = primary / "wms" / "backups" / third / "dump.zst.age"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    refused = ws.run("copy", "--from", "primary", "--to", "dr")
    assert refused.returncode == 1
    assert "does not match its manifest" in error_line(refused)
    assert [b["id"] for b in ws.run_json("list", "--repo", "dr")] == [first, second]
    assert not (dr / "wms" / "backups" / third / "dump.zst.age").exists()


def test_wal_goes_to_every_repository_and_fetch_tries_them_in_order(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path, "postgresql://nobody@127.0.0.1:1/none", in_process=True)
    primary, dr = two_repositories(ws, "postgresql://nobody@127.0.0.1:1/none")
    segment = wal_segment(tmp_path)

    pushed = ws.run("wal-push", "wms", str(segment))
    assert pushed.returncode == 0, pushed.stderr
    stored = {
        repo.name: sorted(
            p.name for p in (repo / "wms" / "wal").rglob("000000010000000000000007-*")
        )
        for repo in (primary, dr)
    }
    assert stored["primary"] == stored["dr"] and len(stored["primary"]) == 1
    again = ws.run("wal-push", "wms", str(segment))  # idempotent in both
    assert again.returncode == 0, again.stderr

    # the primary loses it: wal-fetch serves dr's copy
    for lost in (primary / "wms" / "wal").rglob("000000010000000000000007-*"):
        lost.unlink()
    fetched = tmp_path / "fetched"
    result = ws.run("wal-fetch", "wms", segment.name, str(fetched))
    assert result.returncode == 0, result.stderr
    assert fetched.read_bytes() == segment.read_bytes()
    # in neither: "not found" (exit 1), which ends recovery normally
    missing = ws.run("wal-fetch", "wms", "000000010000000000000008", str(tmp_path / "none"))
    assert missing.returncode == 1
    assert "not in the archive" in error_line(missing)


def test_copy_reports_another_backup_under_the_same_id_and_copies_the_rest(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path
) -> None:
    """Ids are unique, but two repositories can hold different backups under one id (ids
    of earlier versions were per second): copy compares manifests, never skips such a
    backup silently, and copies everything else."""
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db), in_process=True)
    dsn = pg_cluster.dsn(fresh_db)
    primary, dr = two_repositories(ws, dsn, 'repositories = ["primary"]')
    first = ws.run_json("backup", "wms")["id"]
    ws.run("hold", first, "--reason", "audit 7", check=True)
    assert list((primary / "wms" / "holds" / first).glob("*-hold.json"))
    second = ws.run_json("backup", "wms")["id"]

    # dr takes a backup of its own, which then carries the id of primary's first
    two_repositories(ws, dsn, 'repositories = ["dr"]')
    own = ws.run_json("backup", "wms")["id"]
    planted = dr / "wms" / "backups" / first
    (dr / "wms" / "backups" / own).rename(planted)
    renamed = encode(
        decode((planted / "manifest.json").read_bytes(), own).model_copy(update={"id": first})
    )
    for name in ("manifest.json", "manifest.copy.json"):
        (planted / name).write_bytes(renamed)
    two_repositories(ws, dsn, 'repositories = ["primary"]')

    result = ws.run("copy", "--from", "primary", "--to", "dr", "--json")
    assert result.returncode == 1
    line = error_line(result)
    assert (
        f"1 backup(s) not copied (everything else was): wms/{first}: dr holds a different "
        "backup under the same id (manifests differ)"
    ) in line
    report = json.loads(result.stdout)[0]
    assert report["backups_copied"] == [second]
    assert [c["backup"] for c in report["conflicts"]] == [first]
    assert report["hold_records_copied"] == 0  # primary's hold is on another backup
    assert not (dr / "wms" / "holds").exists()
    assert (planted / "manifest.json").read_bytes() == renamed  # dr's own backup is untouched
    assert [b["id"] for b in ws.run_json("list", "--repo", "dr")] == [first, second]

    again = ws.run("copy", "--from", "primary", "--to", "dr")
    assert again.returncode == 1
    assert "0 backups copied (1 already there, 1 in conflict)" in again.stdout
    assert f"wms/{first}" in error_line(again)
