"""Committed backups of the kinds other than PostgreSQL's (Redis, files, SQLite), made
without their servers, for the unit tests of what reads repositories: the manifest each
kind writes, with objects that hold what the manifest says (stored as is)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from lifeboat.repo import layout
from lifeboat.repo.catalog import Repository
from lifeboat.repo.manifest import (
    Details,
    FilesDetails,
    Manifest,
    RedisDetails,
    SqliteDetails,
    StoredObject,
)
from tests.unit.backups import T0, stored_entry
from tests.unit.config.test_source_types import EVERY_KIND
from tests.unit.helpers import AgeKey

RECIPIENT = "age1testrecipient"  # what a manifest names; the objects are stored as is
KIND_SOURCES = {"redis": "cache", "files": "media", "sqlite": "inventory"}
# the sources of each kind in a configuration, as the configuration tests write them
KIND_CONFIG = EVERY_KIND[EVERY_KIND.index("[sources.cache]") :]

# jobs of those sources: the Redis one's own, and a group's with PostgreSQL and files
KIND_JOBS = """
[groups]
nightly = ["wms", "media"]

[schedule.cache]
source = "cache"
job = "backup"
every = "1h"

[schedule.nightly]
group = "nightly"
job = "backup"
parallel = 2
every = "1d"
"""


def details_of(kind: str) -> Details:
    if kind == "redis":
        return RedisDetails(
            redis_version="7.0.15",
            method="replication",
            keys={"db0": 120, "db3": 4},
            expires={"db0": 7},
        )
    if kind == "files":
        return FilesDetails(
            paths=["srv/app/uploads", "etc/app"],
            files=42,
            directories=5,
            symlinks=1,
            total_bytes=123456,
            index="index.jsonl.zst.age",
        )
    if kind == "sqlite":
        return SqliteDetails(
            path="/srv/inventory/inventory.db",
            sqlite_version="3.40.1",
            method="backup-api",
            journal_mode="wal",
            row_counts={"items": 1000, "moves": 250},
            schema_sha256="ab" * 32,
        )
    raise ValueError(f"no details for kind {kind!r}")


def kind_manifest(
    kind: str,
    hours: int,
    *,
    source: str | None = None,
    objects: list[StoredObject] | None = None,
    labels: dict[str, str] | None = None,
) -> Manifest:
    """The manifest of a backup of kind taken hours after T0."""
    when = T0 + timedelta(hours=hours)
    body: dict[str, Any] = {
        "id": layout.backup_id(when, f"{hours:04x}"),
        "source": source or KIND_SOURCES[kind],
        "kind": kind,
        "started_at": when,
        "finished_at": when + timedelta(minutes=2),
        "tool": {"lifeboat": "test"},
        "compression": {"level": 3},
        "encryption": {"method": "age", "recipients": [{"type": "age", "id": RECIPIENT}]},
        "objects": objects or [],
        "labels": labels or {},
        "details": details_of(kind),
    }
    return Manifest.model_validate(body)


def commit_kind(repo: Repository, kind: str, hours: int, *, source: str | None = None) -> Manifest:
    """A committed backup of kind whose objects hold what its manifest says."""
    name = source or KIND_SOURCES[kind]
    main = stored_entry(f"{kind}.zst.age", f"{name} {kind} {hours}".encode())
    objects = [main]
    if kind == "files":
        objects.append(stored_entry("index.jsonl.zst.age", f"{name} index {hours}".encode()))
    manifest = kind_manifest(kind, hours, source=name, objects=objects)
    for entry in objects:
        data = f"{name} {kind} {hours}" if entry is main else f"{name} index {hours}"
        repo.storage.write(layout.object_key(name, manifest.id, entry.name), [data.encode()])
    repo.save_manifest(manifest)
    return manifest


def mixed_config(folder: Path, age_key: AgeKey, extra: str = "") -> Path:
    """folder/lifeboat.toml: repositories local and offsite (in folder), a PostgreSQL source
    wms (unreachable) and a source of each other kind."""
    path = folder / "lifeboat.toml"
    path.write_text(
        f'[repositories.local]\nurl = "file://{folder / "local"}"\n'
        f'[repositories.offsite]\nurl = "file://{folder / "offsite"}"\n'
        f'[encryption]\nage_recipients = ["{age_key.public}"]\n'
        f'age_identity_file = "{age_key.identity_file}"\n'
        '[sources.wms]\ndsn = "postgresql://backup@127.0.0.1:1/wms"\n'
        + KIND_CONFIG
        + '[logging]\nformat = "plain"\n'
        + extra,
        encoding="utf-8",
    )
    return path
