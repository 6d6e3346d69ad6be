"""Backup and restore round trips against real clusters (every available major version)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifeboat.postgres.instance import ScratchCluster

from .helpers import error_line, fill_rich, make_workspace, schema_facts, table_digests
from .versions import on_oldest_major


def test_round_trip_restores_every_table_identically(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path
) -> None:
    fill_rich(pg_cluster, fresh_db)
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db), in_process=True)

    made = ws.run_json("backup", "wms")
    assert made["source"] == "wms" and made["type"] == "logical" and made["id"]
    listed = ws.run_json("list")
    assert [b["id"] for b in listed] == [made["id"]]

    manifest = ws.run_json("show", made["id"])
    assert (manifest["format"], manifest["kind"]) == (2, "postgres-logical")
    assert manifest["details"]["database"] == fresh_db
    assert manifest["details"]["evidence"]["row_counts"] == {
        "other.lots": 50,
        'public."QC decisions"': 3000,
        "public.audit": 30,
        "public.lots": 3000,
    }
    assert "public.lots.lots_attrs_gin" in manifest["details"]["evidence"]["indexes"]
    assert manifest["details"]["server"]["version_num"] // 10000 == pg_cluster.major
    assert manifest["encryption"]["recipients"] == [{"type": "age", "id": ws.public_key}]
    stored = ws.repo / "wms" / "backups" / made["id"] / "dump.zst.age"
    assert stored.read_bytes().startswith(b"age-encryption.org/v1")
    assert manifest["objects"][0]["size"] == stored.stat().st_size

    target = f"{fresh_db}_restored"
    restored = ws.run_json("restore", "wms", "--target-db", target)
    try:
        assert restored["verified"] is True and restored["created"] is True
        assert restored["safety_backup"] is None
        assert table_digests(pg_cluster, target) == table_digests(pg_cluster, fresh_db)
        assert schema_facts(pg_cluster, target) == schema_facts(pg_cluster, fresh_db)
        # the trigger still works in the restored database
        pg_cluster.psql("UPDATE lots SET product = 'x' WHERE id = 1", target)
        assert pg_cluster.psql("SELECT count(*) FROM audit", target) == "31"
    finally:
        pg_cluster.psql(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')


@on_oldest_major  # the confirmation, safety backup and swap are Lifeboat's
def test_restore_over_existing_database_needs_yes_and_takes_a_safety_backup(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path
) -> None:
    fill_rich(pg_cluster, fresh_db)
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db), in_process=True)
    backup = ws.run_json("backup", "wms")["id"]
    before = table_digests(pg_cluster, fresh_db)

    # the application keeps writing after the backup, and holds a session open
    pg_cluster.psql(
        "DELETE FROM \"QC decisions\" WHERE id > 10; INSERT INTO other.lots VALUES (999, 'new')",
        fresh_db,
    )
    changed = table_digests(pg_cluster, fresh_db)

    refused = ws.run("restore", "wms", "--backup", backup)
    assert refused.returncode == 1
    assert "would be overwritten" in error_line(refused)
    assert table_digests(pg_cluster, fresh_db) == changed

    import psycopg

    idle = psycopg.connect(pg_cluster.dsn(fresh_db), autocommit=True)
    idle.execute("SELECT 1")
    done = ws.run_json("restore", "wms", "--backup", backup, "--yes")
    with pytest.raises(psycopg.OperationalError):
        idle.execute("SELECT 1")  # the session on the old database was terminated
    idle.close()
    assert done["verified"] and not done["created"]
    assert done["terminated_sessions"] >= 1
    assert table_digests(pg_cluster, fresh_db) == before

    safety = ws.run_json("show", done["safety_backup"])
    assert safety["labels"]["kind"] == "safety"
    assert safety["details"]["evidence"]["row_counts"]["other.lots"] == 51
    # `latest` still means the newest real backup, not the safety copy
    assert ws.run_json("restore", "wms", "--yes")["backup"] == backup


@on_oldest_major  # table restores run on every major in test_table_restore
def test_single_table_restore_brings_back_rows_and_indexes(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path
) -> None:
    fill_rich(pg_cluster, fresh_db)
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db), in_process=True)
    ws.run("backup", "wms", check=True)
    original = table_digests(pg_cluster, fresh_db)
    pg_cluster.psql("DROP TABLE other.lots; DELETE FROM audit", fresh_db)

    result = ws.run_json("restore", "wms", "--table", "other.lots", "--yes")
    assert result["verified"]
    assert [t["table"] for t in result["tables"]] == ["other.lots"]
    after = table_digests(pg_cluster, fresh_db)
    assert after["other.lots"] == original["other.lots"]
    assert after["public.audit"] != original["public.audit"]  # other tables untouched
    assert (
        pg_cluster.psql(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = 'other' AND tablename = 'lots'",
            fresh_db,
        )
        == "1"
    )

    unknown = ws.run("restore", "wms", "--table", "nope", "--yes")
    assert unknown.returncode == 1 and "not in this backup" in error_line(unknown)


@pytest.fixture
def gnupg_home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    yield home
    for folder in (home, tmp_path / "empty-gnupg"):
        subprocess.run(["gpgconf", "--homedir", str(folder), "--kill", "all"], capture_output=True)


# gpg is exercised once, on the distribution's cluster
@on_oldest_major
def test_gpg_round_trip(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path, gnupg_home: Path
) -> None:
    home = gnupg_home
    subprocess.run(
        [
            "gpg",
            "--batch",
            "--homedir",
            str(home),
            "--passphrase",
            "",
            "--quick-gen-key",
            "backup@example.com",
            "default",
            "default",
            "never",
        ],
        check=True,
        capture_output=True,
    )
    fill_rich(pg_cluster, fresh_db)
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db), in_process=True)
    ws.write_config(
        pg_cluster.dsn(fresh_db),
        encryption=f'gpg_recipients = ["backup@example.com"]\ngpg_homedir = "{home}"\n',
    )
    made = ws.run_json("backup", "wms")
    manifest = ws.run_json("show", made["id"])
    assert manifest["encryption"]["method"] == "gpg"
    stored = ws.repo / "wms" / "backups" / made["id"] / "dump.zst.gpg"
    # a standard OpenPGP message that gpg alone can open
    plain = subprocess.run(
        ["gpg", "--batch", "--homedir", str(home), "--decrypt", str(stored)],
        check=True,
        capture_output=True,
    ).stdout
    assert plain.startswith(b"\x28\xb5\x2f\xfd")  # a zstd frame
    assert ws.run("verify", "--deep").returncode == 0
    target = f"{fresh_db}_gpg"
    try:
        assert ws.run_json("restore", "wms", "--target-db", target)["verified"]
        assert table_digests(pg_cluster, target) == table_digests(pg_cluster, fresh_db)
    finally:
        pg_cluster.psql(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
    # without the secret key: one clear line, before anything is touched
    empty = tmp_path / "empty-gnupg"
    empty.mkdir(mode=0o700)
    ws.write_config(
        pg_cluster.dsn(fresh_db),
        encryption=f'gpg_recipients = ["backup@example.com"]\ngpg_homedir = "{empty}"\n',
    )
    failed = ws.run("restore", "wms", "--target-db", target)
    assert failed.returncode == 1 and "no secret key" in error_line(failed)


def test_evidence_check_recounts_before_calling_a_mismatch(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path
) -> None:
    import psycopg

    from lifeboat.repo.manifest import Evidence
    from lifeboat.sources.postgres.logical_restore import check_evidence

    fill_rich(pg_cluster, fresh_db)
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db), in_process=True)
    made = ws.run_json("backup", "wms")
    evidence = Evidence.model_validate(ws.run_json("show", made["id"])["details"]["evidence"])
    target = f"{fresh_db}_check"
    ws.run_json("restore", "wms", "--target-db", target)
    try:
        with psycopg.connect(pg_cluster.dsn(target), autocommit=True) as conn:
            assert check_evidence(conn, evidence, fresh_database=True).ok
            # the server's insert counters and count(*) must both disagree before a mismatch
            wrong = evidence.model_copy(
                update={"row_counts": {**evidence.row_counts, "public.lots": 2999}}
            )
            check = check_evidence(conn, wrong, fresh_database=True)
            assert not check.ok
            assert check.problems() == ["public.lots: 3000 rows, backup has 2999"]
            # a session that changed the data reports its counts when it ends
            pg_cluster.psql("DELETE FROM other.lots WHERE id > 40", target)
            check = check_evidence(conn, evidence, fresh_database=True)
            assert check.problems() == ["other.lots: 40 rows, backup has 50"]
    finally:
        pg_cluster.psql(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
