"""Lifeboat end to end through every cloud backend at once: a backup fanned out to S3
(moto), Azure Blob (Azurite) and GCS (gcp-storage-emulator), restored from each, WAL
archived into and fetched from each, and `copy` from one service to another."""

from __future__ import annotations

from pathlib import Path

from lifeboat.postgres.instance import ScratchCluster
from tests.servers import azure as azure_servers
from tests.servers import gcs as gcs_servers
from tests.servers import s3 as s3_servers

from .helpers import Workspace, fill_rich, make_workspace, table_digests

s3_endpoint = s3_servers.s3_endpoint
s3_storage_factory = s3_servers.s3_storage_factory
azurite_endpoint = azure_servers.azurite_endpoint
azure_storage_factory = azure_servers.azure_storage_factory
gcs_endpoint = gcs_servers.gcs_endpoint
gcs_storage_factory = gcs_servers.gcs_storage_factory


def cloud_config(ws: Workspace, dsn: str, urls: dict[str, str], source_repos: str) -> None:
    tables = "".join(f'[repositories.{name}]\nurl = "{url}"\n\n' for name, url in urls.items())
    ws.config.write_text(
        tables + f'[encryption]\nage_recipients = ["{ws.public_key}"]\n'
        f'age_identity_file = "{ws.identity}"\n\n'
        f'[sources.wms]\ntype = "postgres"\ndsn = "{dsn}"\n{source_repos}\n'
    )


def test_backup_restore_wal_and_copy_through_s3_azure_and_gcs(
    pg_cluster: ScratchCluster,
    fresh_db: str,
    tmp_path: Path,
    s3_storage_factory: s3_servers.StorageFactory,
    azure_storage_factory: azure_servers.StorageFactory,
    gcs_storage_factory: gcs_servers.GcsStorageFactory,
) -> None:
    fill_rich(pg_cluster, fresh_db)
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db))
    urls = {
        "s3": s3_storage_factory("roundtrip").url,
        "azure": azure_storage_factory("roundtrip").url,
        "gcs": gcs_storage_factory("roundtrip").url,
        "spare": gcs_storage_factory("spare").url,
    }
    cloud_config(ws, pg_cluster.dsn(fresh_db), urls, 'repositories = ["s3", "azure", "gcs"]')
    ws.run("init", check=True)

    made = ws.run_json("backup", "wms")
    assert made["repositories"] == ["s3", "azure", "gcs"] and made["failed_repositories"] == {}
    for repo in ("s3", "azure", "gcs"):
        target = f"{fresh_db}_{repo}"
        try:
            restored = ws.run_json("restore", "wms", "--target-db", target, "--repo", repo)
            assert restored["verified"] is True
            assert table_digests(pg_cluster, target) == table_digests(pg_cluster, fresh_db)
        finally:
            pg_cluster.psql(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
    assert ws.run("verify", "wms", "--deep").returncode == 0

    segment = tmp_path / "pg_wal" / "000000010000000000000003"
    segment.parent.mkdir()
    segment.write_bytes(bytes(range(256)) * 65536)
    pushed = ws.run("wal-push", "wms", str(segment))
    assert pushed.returncode == 0, pushed.stderr
    fetched = tmp_path / "fetched"
    result = ws.run("wal-fetch", "wms", segment.name, str(fetched))
    assert result.returncode == 0, result.stderr
    assert fetched.read_bytes() == segment.read_bytes()

    # from one service to another, checked; then again, with nothing left to copy
    copied = ws.run_json("copy", "--from", "azure", "--to", "spare")
    assert copied[0]["backups_copied"] == [made["id"]] and copied[0]["wal_files_copied"] == 1
    again = ws.run_json("copy", "--from", "azure", "--to", "spare")
    assert again[0]["backups_copied"] == [] and again[0]["wal_files_already_there"] == 1
    listed = ws.run_json("list", "--repo", "spare")
    assert [b["id"] for b in listed] == [made["id"]]
