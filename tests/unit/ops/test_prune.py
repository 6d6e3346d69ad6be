"""prune's application on an in-memory repository: the order of deletions, and a hold
placed while prune runs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from lifeboat.ops.prune import prune
from lifeboat.policy.retention import Policy
from lifeboat.repo import layout
from lifeboat.repo.catalog import Repository
from lifeboat.repo.records import hold_key, write_record
from lifeboat.storage.memory import MemoryStorage
from tests.unit.helpers import initialised
from tests.unit.repo.test_repository import T0, make_manifest

pytestmark = pytest.mark.unit


class RecordingStorage(MemoryStorage):
    """Memory storage that remembers its deletions and can run something at the first
    deletion of a backup's file (the lock's own files come and go before)."""

    def __init__(self) -> None:
        super().__init__("prune")
        self.deleted: list[str] = []
        self.on_first_delete: Callable[[], object] = lambda: None

    def delete(self, key: str) -> None:
        backups = layout.backups_prefix("wms")
        if key.startswith(backups) and not any(k.startswith(backups) for k in self.deleted):
            self.on_first_delete()
        self.deleted.append(key)
        super().delete(key)


def repository_with_backups(count: int) -> tuple[Repository, RecordingStorage, list[str]]:
    storage = RecordingStorage()
    repo = initialised("main", storage)
    ids = []
    for day in range(count):
        manifest = make_manifest(when=T0 + timedelta(days=day))
        for obj in manifest.objects:
            storage.write(layout.object_key("wms", manifest.id, obj.name), [b"data"])
        repo.save_manifest(manifest)
        ids.append(manifest.id)
    return repo, storage, ids


def test_each_backup_loses_its_manifest_before_its_objects() -> None:
    repo, storage, ids = repository_with_backups(3)
    report = prune(repo, "wms", Policy(keep_last=1), "UTC", dry_run=False)
    assert report.deleted == ids[:2]
    for backup in ids[:2]:
        keys = [k for k in storage.deleted if f"/{backup}/" in k]
        assert keys[0] == layout.manifest_key("wms", backup)
        assert not [k for k in storage.objects if f"/{backup}/" in k]
    assert repo.committed_ids("wms") == ids[2:]
    assert [k for k in storage.objects if k.startswith("audit/")]


def test_a_dry_run_deletes_nothing() -> None:
    repo, storage, ids = repository_with_backups(3)
    report = prune(repo, "wms", Policy(keep_last=1), "UTC", dry_run=True)
    assert sorted(d.backup.id for d in report.to_delete) == ids[:2]
    assert storage.deleted == []


def test_a_hold_placed_while_prune_runs_is_honoured() -> None:
    """A race between `hold` and `prune`, made certain: the hold is written when prune
    deletes its first object."""
    repo, storage, ids = repository_with_backups(3)
    now = datetime.now(UTC)
    storage.on_first_delete = lambda: write_record(
        storage,
        hold_key("wms", ids[1], now, "hold"),
        {"action": "hold", "reason": "recall", "until": None, "at": now.isoformat()},
    )
    report = prune(repo, "wms", Policy(keep_last=1), "UTC", dry_run=False)
    assert report.deleted == [ids[0]]
    assert report.held_meanwhile == [ids[1]]
    assert repo.committed_ids("wms") == ids[1:]
