"""`lifeboat copy` between local repositories when a backup of the origin cannot be read:
it is reported like a conflict, and everything else still goes."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest

from lifeboat.errors import EXIT_FAILED
from lifeboat.repo import layout
from lifeboat.repo.catalog import Repository
from lifeboat.repo.copy import CopyConflictError, copy_repository, raise_conflicts
from lifeboat.repo.manifest import Manifest, StoredObject
from lifeboat.repo.records import hold_key
from tests.unit.helpers import local_repository

from .test_repository import T0, make_manifest


def store_backup(repo: Repository, source: str, hours: int) -> Manifest:
    """A committed backup whose one object holds what its manifest says."""
    data = f"{source} backup {hours}".encode()
    manifest = make_manifest(
        source,
        T0 + timedelta(hours=hours),
        objects=[
            StoredObject(
                name="db.dump.zst.age",
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                plain_size=len(data),
                plain_sha256="b" * 64,
                format="pg_dump-custom",
            )
        ],
    )
    repo.storage.write(layout.object_key(source, manifest.id, "db.dump.zst.age"), [data])
    repo.save_manifest(manifest)
    return manifest


def keys(repo: Repository, prefix: str) -> list[str]:
    return sorted(info.key for info in repo.storage.list(prefix))


def test_a_backup_with_both_manifests_damaged_is_reported_and_the_rest_copied(
    tmp_path: Path,
) -> None:
    origin, target = local_repository(tmp_path, "primary"), local_repository(tmp_path, "dr")
    damaged = store_backup(origin, "wms", 1)
    for key in (
        layout.manifest_key("wms", damaged.id),
        layout.manifest_copy_key("wms", damaged.id),
    ):
        origin.storage.write(key, [b"{ not a manifest"])
    intact = store_backup(origin, "wms", 2)
    hold = hold_key("wms", intact.id, T0, "hold")
    origin.storage.write(hold, [b'{"reason": "audit"}'])
    wal = layout.wal_key("wms", "000000010000000000000001", "e" * 64, ".age")
    origin.storage.write(wal, [b"wal"])
    later_source = store_backup(origin, "crm", 3)  # a source copied after the damaged one

    reports = copy_repository(origin, target, ["wms", "crm"])

    wms, crm = reports
    assert list(wms.conflicts) == [damaged.id]
    assert wms.conflicts[damaged.id].startswith("unreadable in origin: ")
    assert layout.manifest_key("wms", damaged.id) in wms.conflicts[damaged.id]
    assert wms.backups_copied == [intact.id]
    assert (wms.wal_copied, wms.hold_records_copied) == (1, 1)
    assert crm.backups_copied == [later_source.id] and not crm.conflicts
    assert target.committed_ids("wms") == [intact.id]
    assert keys(target, layout.wal_folder("wms", "000000010000000000000001")) == [wal]
    assert keys(target, hold) == [hold]
    assert target.committed_ids("crm") == [later_source.id]
    with pytest.raises(CopyConflictError) as failed:
        raise_conflicts(reports)
    assert failed.value.exit_code == EXIT_FAILED
    assert f"1 backup(s) not copied (everything else was): wms/{damaged.id}: unreadable" in str(
        failed.value
    )
