"""Unfinished uploads of killed writers: which a locked run removes, and the settings.

A killed local writer leaves exactly a `<key>.tmp-<8 hex>` file (killed for real in
tests/contract and tests/integration/test_unfinished_uploads.py); here such files are
planted with the ages each case needs."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest

from lifeboat.config.load import load_config
from lifeboat.context import Context
from lifeboat.errors import ConfigError
from lifeboat.repo.catalog import Repository, age
from lifeboat.repo.copy import copy_repository
from lifeboat.repo.lock import STALE_AFTER
from lifeboat.storage.base import temporary_target
from lifeboat.storage.capabilities import PendingUpload
from lifeboat.storage.local import LocalStorage
from lifeboat.storage.memory import MemoryStorage
from tests.unit.config.test_config import MINIMAL, write
from tests.unit.helpers import initialised, local_repository

OLD = 2 * 3600  # seconds: older than the default grace of an hour


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    return initialised("main", LocalStorage(tmp_path / "repo"))


def root(repo: Repository) -> Path:
    assert isinstance(repo.storage, LocalStorage)
    return repo.storage.root


def key_of(repo: Repository, temporary: Path) -> str:
    """The key a temporary file was being written for."""
    key = temporary_target(temporary.relative_to(root(repo)).as_posix())
    assert key is not None, f"{temporary} is not a temporary file"
    return key


def plant(repo: Repository, key: str, seconds_old: int) -> Path:
    """The temporary file a writer of key killed `seconds_old` ago would have left."""
    path = root(repo) / f"{key}.tmp-{os.urandom(4).hex()}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"half an object")
    moment = time.time() - seconds_old
    os.utime(path, (moment, moment))
    return path


def test_old_ones_of_the_source_and_of_the_repository_go(repo: Repository) -> None:
    wal = plant(repo, "wms/wal/0000000100000000/000000010000000000000001-ab.zst.age", OLD)
    data = plant(repo, "wms/backups/20260101T000000Z/dump.zst.age", OLD)
    hold = plant(repo, "wms/holds/20260101T000000Z/x-hold.json", OLD)
    lock = plant(repo, "locks/crm.lock", OLD)
    audit = plant(repo, "audit/20260101T000000.000000Z-abcdef-prune-crm.json", OLD)
    marker = plant(repo, "lifeboat-repo.json", OLD)
    young = plant(repo, "wms/wal/0000000100000000/000000010000000000000002-cd.zst.age", 60)
    other_source = plant(repo, "crm/wal/0000000100000000/000000010000000000000001-ef", OLD)

    removed = repo.remove_stale_uploads("wms")

    assert sorted(upload.key for upload in removed) == sorted(
        key_of(repo, path) for path in (wal, data, hold, lock, audit, marker)
    )
    for gone in (wal, data, hold, lock, audit, marker):
        assert not gone.exists()
    # a writer may still be at work on a young one; another source's are its own runs'
    assert young.exists() and other_source.exists()
    assert {u.key for u in repo.pending_uploads()} == {
        key_of(repo, young),
        key_of(repo, other_source),
    }
    assert (root(repo) / "lifeboat-repo.json").exists()


def test_the_grace_is_the_repositorys(repo: Repository) -> None:
    young = plant(repo, "wms/wal/x", 60)
    assert repo.remove_stale_uploads("wms") == []
    repo.upload_grace = timedelta(0)
    assert [u.key for u in repo.remove_stale_uploads("wms")] == ["wms/wal/x"]
    assert not young.exists()


def test_a_file_being_written_counts_from_its_last_write(repo: Repository) -> None:
    slow = plant(repo, "wms/backups/20260101T000000Z/dump.zst.age", OLD)
    with open(slow, "ab") as handle:  # the writer is alive and wrote again just now
        handle.write(b" and more")
    assert repo.remove_stale_uploads("wms") == []
    assert slow.exists()


def test_a_store_whose_writes_leave_nothing_has_nothing_to_remove() -> None:
    repo = Repository("mem", MemoryStorage())
    assert repo.pending_uploads() == []
    assert repo.remove_stale_uploads("wms") == []


@pytest.mark.parametrize(
    ("seconds", "shown"), [(30, "0m"), (150, "2m"), (3 * 3600 + 720, "3h12m"), (2 * 86400, "2d0h")]
)
def test_ages_are_shown_to_the_minute(seconds: int, shown: str) -> None:
    from datetime import UTC, datetime

    upload = PendingUpload("k", datetime.now(UTC) - timedelta(seconds=seconds), "k.tmp-0")
    assert age(upload) == shown


def test_copy_does_not_copy_what_is_being_written_in_the_origin(tmp_path: Path) -> None:
    origin, target = local_repository(tmp_path, "origin"), local_repository(tmp_path, "target")
    key = "wms/wal/0000000100000000/000000010000000000000001-ab.zst.age"
    origin.storage.write(key, [b"archived"])
    plant(origin, "wms/wal/0000000100000000/000000010000000000000002-cd.zst.age", 5)
    [report] = copy_repository(origin, target, ["wms"])
    assert report.wal_copied == 1
    assert [info.key for info in target.storage.list("wms/")] == [key]


# --- settings ------------------------------------------------------------------------------


def test_defaults(tmp_path: Path) -> None:
    repo = Context.load(write(tmp_path, MINIMAL)).repository()
    assert repo.lock_stale_after == STALE_AFTER == timedelta(hours=24)
    assert repo.upload_grace == timedelta(hours=1)


def test_settings_reach_the_repository(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        'url = "file:///var/backups/lifeboat"\n',
        'url = "file:///var/backups/lifeboat"\nlock_stale_after = "6h"\nupload_grace = "0s"\n',
    )
    repo = Context.load(write(tmp_path, text)).repository()
    assert repo.lock_stale_after == timedelta(hours=6)
    assert repo.upload_grace == timedelta(0)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ('upload_grace = "an hour"', "repositories.local.upload_grace"),
        ('lock_stale_after = "1 day"', "not a duration"),
        ('lock_stale_after = "30s"', "must be at least 1m"),
    ],
)
def test_bad_settings_are_one_line_config_errors(
    tmp_path: Path, setting: str, message: str
) -> None:
    text = MINIMAL.replace(
        'url = "file:///var/backups/lifeboat"\n',
        f'url = "file:///var/backups/lifeboat"\n{setting}\n',
    )
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert message in caught.value.message
    assert "\n" not in caught.value.message
    assert caught.value.exit_code == 2
