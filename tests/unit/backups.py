"""Committed backups made without a server, for the unit tests of what reads repositories."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from lifeboat.repo import layout
from lifeboat.repo.catalog import Repository
from lifeboat.repo.manifest import Manifest, StoredObject

T0 = datetime(2026, 3, 3, 14, 30, tzinfo=UTC)
CLUSTER = "7351234567890123456"


def physical_manifest(
    hours: int,
    parent: Manifest | None = None,
    *,
    source: str = "wms",
    system_identifier: str | None = CLUSTER,
    objects: list[StoredObject] | None = None,
    labels: dict[str, str] | None = None,
) -> Manifest:
    """The manifest of a physical backup taken hours after T0 (incremental on parent)."""
    when = T0 + timedelta(hours=hours)
    # written as a format-1 document, which every manifest version reads
    return Manifest.model_validate(
        {
            "format": 1,
            "id": layout.backup_id(when, f"{hours:04x}"),
            "source": source,
            "type": "physical",
            "started_at": when,
            "finished_at": when + timedelta(minutes=5),
            "database": "",
            "server": {
                "version": "17.2",
                "version_num": 170002,
                "system_identifier": system_identifier,
            },
            "tool": {"lifeboat": "test"},
            "compression": {"level": 1},
            "encryption": {"method": "age", "recipients": []},
            "objects": objects or [],
            "physical": {
                "timeline": 1,
                "start_lsn": "0/2000028",
                "stop_lsn": "0/2000100",
                "start_wal": "000000010000000000000002",
                "stop_wal": "000000010000000000000002",
                "segment_size": 16 << 20,
                "parent": parent.id if parent is not None else None,
            },
            "labels": labels or {},
        }
    )


def stored_entry(name: str, data: bytes) -> StoredObject:
    """What a manifest records of an object holding data (its plaintext alike, unchecked)."""
    digest = hashlib.sha256(data).hexdigest()
    return StoredObject(
        name=name,
        size=len(data),
        sha256=digest,
        plain_size=len(data),
        plain_sha256=digest,
        format="tar",
    )


def commit_physical(
    repo: Repository, hours: int, parent: Manifest | None = None, *, source: str = "wms"
) -> Manifest:
    """A committed physical backup whose one object holds what its manifest says."""
    data = f"{source} base backup {hours}".encode()
    manifest = physical_manifest(
        hours, parent, source=source, objects=[stored_entry("base.tar.zst.age", data)]
    )
    repo.storage.write(layout.object_key(source, manifest.id, "base.tar.zst.age"), [data])
    repo.save_manifest(manifest)
    return manifest
