"""WAL expiry as a pure function of the archive's file names and the kept backups."""

from __future__ import annotations

import pytest

from lifeboat.policy.wal_expiry import expire_wal

pytestmark = pytest.mark.unit

ARCHIVE = [
    "000000010000000000000001",
    "000000010000000000000002",
    "000000010000000000000002.00000028.backup",
    "000000010000000000000003",
    "000000010000000000000004.partial",
    "00000002.history",
    "000000020000000000000004",
    "000000020000000000000005",
    "0000000200000001000000FF",  # another log file: numbers, not names, are compared
    "000000030000000000000002",  # a timeline that forked before the boundary
]


def test_everything_before_the_oldest_kept_start_expires_on_every_timeline() -> None:
    expiry = expire_wal(ARCHIVE, ["000000020000000000000004", "000000010000000000000003"])
    assert expiry.boundary == "000000010000000000000003"
    assert expiry.expired == [
        "000000010000000000000001",
        "000000010000000000000002",
        "000000010000000000000002.00000028.backup",
        "000000030000000000000002",
    ]


def test_history_files_and_newer_wal_are_kept() -> None:
    expiry = expire_wal(ARCHIVE, ["000000020000000100000000"])
    assert "00000002.history" not in expiry.expired
    assert "0000000200000001000000FF" not in expiry.expired
    assert "000000020000000000000005" in expiry.expired


def test_without_a_kept_physical_backup_nothing_expires() -> None:
    assert expire_wal(ARCHIVE, []) == (None, [])


def test_other_segment_sizes() -> None:
    # 64 MiB segments: 64 segments per log file
    expiry = expire_wal(
        ["00000001000000000000003F", "000000010000000100000000"],
        ["000000010000000100000000"],
        64 * 1024 * 1024,
    )
    assert expiry.expired == ["00000001000000000000003F"]
