"""wal-push and wal-fetch against the memory and local backends (real age, real zstd)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifeboat.errors import IntegrityError, UsageError
from lifeboat.pipeline.crypto import AgeDecryptor, AgeEncryptor
from lifeboat.postgres import wal
from lifeboat.repo import layout
from lifeboat.storage.base import Storage
from lifeboat.storage.local import LocalStorage
from lifeboat.storage.memory import MemoryStorage
from lifeboat.wal.archive import WalConflictError, WalNotFoundError, push
from lifeboat.wal.stage import fetch
from tests.walfiles import AFTER_LOST_CONTRECORD, segment_file, wal_file

SEGMENT = "000000010000000A000000FE"


@pytest.fixture(params=["memory", "local"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    return MemoryStorage() if request.param == "memory" else LocalStorage(tmp_path / "repo")


def test_push_then_fetch_round_trip(
    storage: Storage, keys: tuple[AgeEncryptor, AgeDecryptor], tmp_path: Path
) -> None:
    encryptor, decryptor = keys
    source = wal_file(tmp_path / "pg_wal", SEGMENT)
    result = push(storage, "wms", source, encryptor, level=1)
    assert not result.already_archived and result.stored_size < result.plain_size
    assert result.key.startswith("wms/wal/000000010000000A/000000010000000A000000FE-")
    assert result.key.endswith(".zst.age")
    with storage.read(result.key) as stream:
        assert stream.read().startswith(b"age-encryption.org/v1")

    restored = tmp_path / "RECOVERYXLOG"
    size = fetch(storage, "wms", SEGMENT, restored, lambda method: decryptor)
    assert size == source.stat().st_size
    assert restored.read_bytes() == source.read_bytes()
    assert not list(tmp_path.glob(".*lifeboat-tmp"))


def test_identical_push_succeeds_and_different_push_is_refused(
    storage: Storage, keys: tuple[AgeEncryptor, AgeDecryptor], tmp_path: Path
) -> None:
    encryptor, _ = keys
    first = push(storage, "wms", wal_file(tmp_path / "a", SEGMENT), encryptor, level=1)
    again = push(storage, "wms", wal_file(tmp_path / "b", SEGMENT), encryptor, level=1)
    assert again.already_archived and again.key == first.key
    with pytest.raises(WalConflictError) as caught:
        push(storage, "wms", wal_file(tmp_path / "c", SEGMENT, seed=2), encryptor, level=1)
    assert "refusing to overwrite" in str(caught.value)
    assert [i.key for i in storage.list("wms/wal/")] == [first.key]


@pytest.mark.parametrize(
    ("name", "folder"),
    [
        ("00000002.history", "wms/wal/history/"),
        ("000000020000000000000003.partial", "wms/wal/0000000200000000/"),
        ("000000010000000000000002.00000028.backup", "wms/wal/0000000100000000/"),
    ],
)
def test_history_partial_and_backup_label_files(
    storage: Storage,
    keys: tuple[AgeEncryptor, AgeDecryptor],
    tmp_path: Path,
    name: str,
    folder: str,
) -> None:
    encryptor, decryptor = keys
    source = wal_file(tmp_path / "pg_wal", name)
    result = push(storage, "wms", source, encryptor, level=1)
    assert result.key.startswith(folder + name + "-")
    fetch(storage, "wms", name, tmp_path / "out", lambda method: decryptor)
    assert (tmp_path / "out").read_bytes() == source.read_bytes()


def test_not_a_wal_name_is_refused(
    storage: Storage, keys: tuple[AgeEncryptor, AgeDecryptor], tmp_path: Path
) -> None:
    with pytest.raises(UsageError):
        push(storage, "wms", wal_file(tmp_path, "postgresql.conf"), keys[0], level=1)


def test_missing_file_is_not_found(
    storage: Storage, keys: tuple[AgeEncryptor, AgeDecryptor], tmp_path: Path
) -> None:
    with pytest.raises(WalNotFoundError):
        fetch(storage, "wms", SEGMENT, tmp_path / "out", lambda method: keys[1])
    assert not (tmp_path / "out").exists()


def test_corrupted_object_is_detected_and_nothing_is_written(
    keys: tuple[AgeEncryptor, AgeDecryptor], tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path / "repo")
    result = push(storage, "wms", wal_file(tmp_path / "pg_wal", SEGMENT), keys[0], level=1)
    stored = tmp_path / "repo" / result.key
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x40
    stored.write_bytes(bytes(data))
    with pytest.raises(IntegrityError) as caught:
        fetch(storage, "wms", SEGMENT, tmp_path / "out", lambda method: keys[1])
    assert result.key in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_wal_key_parsing() -> None:
    digest = "ab" * 32
    key = layout.wal_key("wms", SEGMENT, digest, ".age")
    assert layout.parse_wal_key(key) == (SEGMENT, digest)
    assert layout.parse_wal_key("wms/wal/x/notes.txt") is None


def test_continuity_problems() -> None:
    from lifeboat.wal.archive import continuity_problems

    archived = {1: {2, 3, 4, 5, 7, 8}, 2: {9}}
    assert continuity_problems(archived, 1, 2, 4) == [
        "WAL gap: segment 000000010000000000000006 is missing, so recovery from this backup "
        "stops at 000000010000000000000005"
    ]
    assert continuity_problems({1: {2, 3, 4, 5}}, 1, 2, 4) == []
    assert continuity_problems({1: {2, 4}}, 1, 2, 4) == [
        "WAL segment 000000010000000000000003, needed to make the backup consistent, is missing"
    ]


@pytest.mark.parametrize("info", AFTER_LOST_CONTRECORD)
def test_the_segment_after_a_lost_continuation_record_is_archived(
    storage: Storage, keys: tuple[AgeEncryptor, AgeDecryptor], tmp_path: Path, info: int
) -> None:
    encryptor, decryptor = keys
    source = segment_file(tmp_path / "pg_wal", SEGMENT, info=info)
    result = push(storage, "wms", source, encryptor, level=1)
    assert not result.already_archived
    restored = tmp_path / "RECOVERYXLOG"
    fetch(storage, "wms", SEGMENT, restored, lambda method: decryptor)
    assert restored.read_bytes() == source.read_bytes()


def test_segments_of_a_larger_size_are_numbered_with_it() -> None:
    """With 64 MiB segments a log id holds 64 of them: 00000001000000000000003F is followed
    by 000000010000000100000000. Counted as 16 MiB ones, that step would be a gap of 192
    segments, and a backup across it could neither be verified nor restored."""
    from lifeboat.wal.archive import archived_segments, continuity_problems

    size = 64 << 20
    storage = MemoryStorage()
    names = ["00000001000000000000003E", "00000001000000000000003F", "000000010000000100000000"]
    for name in names:
        storage.write(layout.wal_key("wms", name, "ab" * 32, ".age"), [b"x"])
    first, last = (wal.Segment.parse(n, size).number for n in (names[0], names[-1]))

    archived = archived_segments(storage, "wms", size)
    assert archived == {1: {first, first + 1, last}} and last == first + 2
    assert continuity_problems(archived, 1, first, first, size) == []
    storage.delete(layout.wal_key("wms", names[1], "ab" * 32, ".age"))
    assert continuity_problems(archived_segments(storage, "wms", size), 1, first, first, size) == [
        f"WAL gap: segment {names[1]} is missing, so recovery from this backup stops at {names[0]}"
    ]
