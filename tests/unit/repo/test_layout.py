"""The repository layout's keys (repo/layout.py): which kind of object each one names, the
classifier the repository hands its storage backend."""

from __future__ import annotations

import pytest

from lifeboat.repo.layout import object_kind


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        ("wms/backups/20261122T094415Z/base.tar.zst.age", "data"),
        ("wms/backups/20261122T094415Z/dump.zst.age", "data"),
        ("wms/backups/20261122T094415Z/manifest.json", "metadata"),
        ("wms/backups/20261122T094415Z/manifest.copy.json", "metadata"),
        ("wms/wal/0000000100000000/000000010000000000000001-ab.zst.age", "wal"),
        ("wms/wal/history/00000002.history-ab.zst.age", "wal"),
        ("wms/wal-stream/000000010000000000000001.partial-00001000-ab.zst.age", "wal"),
        ("locks/wms.lock", "metadata"),
        ("lifeboat-repo.json", "metadata"),
    ],
)
def test_object_kinds(key: str, kind: str) -> None:
    assert object_kind(key) == kind
