"""Lifeboat end to end through every cloud backend at once: a backup fanned out to S3
(moto), Azure Blob (Azurite) and GCS (gcp-storage-emulator), restored from each, WAL
archived into and fetched from each, and `copy` from one service to another."""

from __future__ import annotations

from pathlib import Path

from lifeboat.postgres.instance import ScratchCluster
from tests.servers import azure as azure_servers
from tests.servers import gcs as gcs_servers
from tests.servers import s3 as s3_servers

from .helpers import (
    Workspace,
    assert_restores_identically,
    assert_wal_round_trip,
    fill_rich,
    make_workspace,
    wal_segment,
)
from .versions import on_oldest_major

# the clouds are the subject here; each server version's backups are tested on local repositories:
# run once, on the oldest installed major
pytestmark = on_oldest_major

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
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db), in_process=True)
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
        assert_restores_identically(ws, pg_cluster, fresh_db, f"{fresh_db}_{repo}", "--repo", repo)
    assert ws.run("verify", "wms", "--deep").returncode == 0

    segment = wal_segment(tmp_path, "000000010000000000000003", of=pg_cluster)
    assert_wal_round_trip(ws, segment, tmp_path / "fetched")

    # from one service to another, checked; then again, with nothing left to copy
    copied = ws.run_json("copy", "--from", "azure", "--to", "spare")
    assert copied[0]["backups_copied"] == [made["id"]] and copied[0]["wal_files_copied"] == 1
    again = ws.run_json("copy", "--from", "azure", "--to", "spare")
    assert again[0]["backups_copied"] == [] and again[0]["wal_files_already_there"] == 1
    listed = ws.run_json("list", "--repo", "spare")
    assert [b["id"] for b in listed] == [made["id"]]
