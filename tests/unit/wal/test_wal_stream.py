"""Streamed partial segments: their keys, their upload, wal-fetch's fallback to them, and the
staging folder uploader (local repository, real age, real zstd)."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import pytest

from lifeboat.errors import IntegrityError, UsageError
from lifeboat.pipeline.crypto import AgeDecryptor, AgeEncryptor
from lifeboat.repo import cluster, layout
from lifeboat.storage.local import LocalStorage
from lifeboat.wal.archive import (
    WalNotFoundError,
    is_archived,
    prune_stream_partials,
    push,
    push_stream_partial,
    stream_partials,
)
from lifeboat.wal.stage import fetch, pad_to_segment_size
from lifeboat.wal.stream import (
    StagingUploader,
    StreamOptions,
    check_slot_name,
    default_name,
    standby_names,
    synchronous_hints,
)
from tests.walfiles import OTHER_SYSTEM_ID, long_header

SEGMENT = "000000010000000A000000FE"
NEXT = "000000010000000A000000FF"
SEGMENT_SIZE = 1 << 20  # the smallest size initdb allows keeps these tests fast


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "repo")


def wal_bytes(received: int, size: int = SEGMENT_SIZE, seed: int = 1) -> bytes:
    """A segment as pg_receivewal leaves it: `received` bytes of WAL, then the zeros it
    filled the file with. The long page header at the start records the segment size."""
    header = long_header(segment_size=size)
    body = header + random.Random(seed).randbytes(received - len(header))
    return body + bytes(size - len(body))


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_stream_partial_keys_round_trip_and_stay_out_of_the_wal_archive() -> None:
    key = layout.stream_partial_key("wms", SEGMENT, 0x4E79, "ab" * 32, ".age")
    assert key == f"wms/wal-stream/{SEGMENT}.partial-00004e79-{'ab' * 32}.zst.age"
    assert layout.parse_stream_partial_key(key) == (SEGMENT, 0x4E79, "ab" * 32)
    assert key.startswith(layout.stream_partial_prefix("wms", SEGMENT))
    assert not key.startswith("wms/wal/")
    wal_key = layout.wal_key("wms", SEGMENT, "ab" * 32, ".age")
    assert layout.parse_stream_partial_key(wal_key) is None
    assert layout.parse_stream_partial_key(f"wms/wal-stream/{SEGMENT}.partial-zz") is None


def test_a_growing_partial_replaces_its_older_copy(
    storage: LocalStorage, keys: tuple[AgeEncryptor, AgeDecryptor], tmp_path: Path
) -> None:
    encryptor, decryptor = keys
    partial = write(tmp_path / "staging" / f"{SEGMENT}.partial", wal_bytes(5000))
    first = push_stream_partial(storage, "wms", partial, encryptor, level=1)
    assert first is not None and first.streamed_length == 5000
    # unchanged: nothing new is written
    assert push_stream_partial(storage, "wms", partial, encryptor, level=1) == first

    write(partial, wal_bytes(9000))
    second = push_stream_partial(storage, "wms", partial, encryptor, level=1)
    assert second is not None and second.streamed_length == 9000
    assert [p.key for p in stream_partials(storage, "wms")] == [second.key]
    assert not is_archived(storage, "wms", SEGMENT)

    restored = tmp_path / "RECOVERYXLOG"
    assert fetch(storage, "wms", SEGMENT, restored, lambda method: decryptor) == SEGMENT_SIZE
    assert restored.read_bytes() == wal_bytes(9000)


def test_a_longer_copy_from_another_streamer_is_kept(
    storage: LocalStorage, keys: tuple[AgeEncryptor, AgeDecryptor], tmp_path: Path
) -> None:
    encryptor, decryptor = keys
    ahead = push_stream_partial(
        storage, "wms", write(tmp_path / "a" / f"{SEGMENT}.partial", wal_bytes(8000)), encryptor, 1
    )
    behind = push_stream_partial(
        storage, "wms", write(tmp_path / "b" / f"{SEGMENT}.partial", wal_bytes(3000)), encryptor, 1
    )
    assert ahead is not None and behind is not None
    assert {p.key for p in stream_partials(storage, "wms")} == {ahead.key, behind.key}
    restored = tmp_path / "RECOVERYXLOG"
    fetch(storage, "wms", SEGMENT, restored, lambda method: decryptor)
    assert restored.read_bytes() == wal_bytes(8000)


def test_no_partial_is_stored_without_wal_or_once_the_segment_is_archived(
    storage: LocalStorage, keys: tuple[AgeEncryptor, AgeDecryptor], tmp_path: Path
) -> None:
    encryptor, _ = keys
    empty = write(tmp_path / "staging" / f"{SEGMENT}.partial", bytes(SEGMENT_SIZE))
    assert push_stream_partial(storage, "wms", empty, encryptor, level=1) is None
    push(
        storage, "wms", write(tmp_path / "pg_wal" / SEGMENT, wal_bytes(SEGMENT_SIZE)), encryptor, 1
    )
    grown = write(empty, wal_bytes(4000))
    assert push_stream_partial(storage, "wms", grown, encryptor, level=1) is None
    assert stream_partials(storage, "wms") == []
    with pytest.raises(UsageError):
        push_stream_partial(storage, "wms", write(tmp_path / SEGMENT, b"x"), encryptor, 1)


def test_fetch_prefers_the_archived_segment_and_fails_without_either(
    storage: LocalStorage, keys: tuple[AgeEncryptor, AgeDecryptor], tmp_path: Path
) -> None:
    encryptor, decryptor = keys
    restored = tmp_path / "RECOVERYXLOG"
    with pytest.raises(WalNotFoundError):
        fetch(storage, "wms", SEGMENT, restored, lambda method: decryptor)

    partial = write(tmp_path / "staging" / f"{SEGMENT}.partial", wal_bytes(4000))
    push_stream_partial(storage, "wms", partial, encryptor, level=1)
    with pytest.raises(WalNotFoundError):
        fetch(
            storage,
            "wms",
            SEGMENT,
            restored,
            lambda method: decryptor,
            allow_stream_partial=False,
        )
    # a history file is never answered with a segment's partial
    with pytest.raises(WalNotFoundError):
        fetch(storage, "wms", "00000002.history", restored, lambda method: decryptor)

    full = wal_bytes(SEGMENT_SIZE, seed=2)
    push(storage, "wms", write(tmp_path / "pg_wal" / SEGMENT, full), encryptor, level=1)
    fetch(storage, "wms", SEGMENT, restored, lambda method: decryptor)
    assert restored.read_bytes() == full


def test_prune_removes_partials_of_archived_segments_only(
    storage: LocalStorage, keys: tuple[AgeEncryptor, AgeDecryptor], tmp_path: Path
) -> None:
    encryptor, _ = keys
    following = "000000010000000A000000FF"
    for name in (SEGMENT, following):
        push_stream_partial(
            storage, "wms", write(tmp_path / "s" / f"{name}.partial", wal_bytes(2000)), encryptor, 1
        )
    push(
        storage, "wms", write(tmp_path / "pg_wal" / SEGMENT, wal_bytes(SEGMENT_SIZE)), encryptor, 1
    )
    removed = prune_stream_partials(storage, "wms")
    assert [k.rsplit("/", 1)[1].split(".")[0] for k in removed] == [SEGMENT]
    assert [p.segment for p in stream_partials(storage, "wms")] == [following]


def test_a_short_partial_is_padded_from_its_page_header() -> None:
    short = wal_bytes(3000)[:3000]
    padded = pad_to_segment_size(short)
    assert len(padded) == SEGMENT_SIZE and padded[:3000] == short and not any(padded[3000:])
    assert pad_to_segment_size(wal_bytes(3000)) == wal_bytes(3000)
    with pytest.raises(IntegrityError):
        pad_to_segment_size(bytes(100))


def test_the_uploader_moves_completed_files_and_uploads_partials_when_they_change(
    storage: LocalStorage, keys: tuple[AgeEncryptor, AgeDecryptor], tmp_path: Path
) -> None:
    encryptor, _ = keys
    staging = tmp_path / "staging"
    uploader = StagingUploader(storage, "wms", staging, encryptor, 1, partial_interval=3600)
    partial = write(staging / f"{SEGMENT}.partial", wal_bytes(4000))
    assert uploader.sweep()
    assert stream_partials(storage, "wms") == []  # the interval has not passed
    assert uploader.sweep(force_partials=True)
    assert uploader.partial_uploads == 1 and uploader.partial_is_uploaded(partial)
    assert uploader.sweep(force_partials=True) and uploader.partial_uploads == 1
    write(partial, wal_bytes(6000))
    assert not uploader.partial_is_uploaded(partial)
    assert uploader.sweep(force_partials=True) and uploader.partial_uploads == 2

    # pg_receivewal completes the segment by renaming it, and writes a history file
    partial.rename(staging / SEGMENT)
    write(staging / SEGMENT, wal_bytes(SEGMENT_SIZE))
    write(staging / "00000002.history", b"1\t0/A0000000\tno recovery target specified\n")
    write(staging / "000000010000000B00000000.partial.tmp", b"ignored")
    assert uploader.sweep()
    assert is_archived(storage, "wms", SEGMENT)
    assert is_archived(storage, "wms", "00000002.history")
    assert stream_partials(storage, "wms") == []
    assert sorted(p.name for p in staging.iterdir()) == ["000000010000000B00000000.partial.tmp"]
    assert sorted(uploader.uploaded) == [SEGMENT, "00000002.history"]


def test_the_uploader_writes_to_every_repository(
    storage: LocalStorage, keys: tuple[AgeEncryptor, AgeDecryptor], tmp_path: Path
) -> None:
    encryptor, _ = keys
    other = LocalStorage(tmp_path / "dr")
    staging = tmp_path / "staging"
    uploader = StagingUploader(
        [storage, other], "wms", staging, encryptor, 1, partial_interval=3600
    )
    partial = write(staging / f"{SEGMENT}.partial", wal_bytes(4000))
    assert uploader.sweep(force_partials=True) and uploader.partial_is_uploaded(partial)
    for repository in (storage, other):
        assert [p.segment for p in stream_partials(repository, "wms")] == [SEGMENT]

    partial.rename(staging / SEGMENT)
    write(staging / SEGMENT, wal_bytes(SEGMENT_SIZE))
    assert uploader.sweep()
    for repository in (storage, other):
        assert is_archived(repository, "wms", SEGMENT)
        assert stream_partials(repository, "wms") == []


def test_the_uploader_keeps_a_conflicting_segment(
    storage: LocalStorage, keys: tuple[AgeEncryptor, AgeDecryptor], tmp_path: Path
) -> None:
    encryptor, _ = keys
    push(
        storage, "wms", write(tmp_path / "pg_wal" / SEGMENT, wal_bytes(SEGMENT_SIZE)), encryptor, 1
    )
    staging = tmp_path / "staging"
    write(staging / SEGMENT, wal_bytes(SEGMENT_SIZE, seed=2))
    uploader = StagingUploader(storage, "wms", staging, encryptor, 1, partial_interval=1)
    assert not uploader.sweep()
    assert not uploader.sweep()  # not retried, and still reported
    assert (staging / SEGMENT).exists() and uploader.uploaded == []


def test_a_partial_one_repository_refuses_goes_to_none_and_is_reported_once(
    storage: LocalStorage,
    keys: tuple[AgeEncryptor, AgeDecryptor],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    encryptor, _ = keys
    # the first repository holds this cluster; the second has no record yet
    push(
        storage, "wms", write(tmp_path / "pg_wal" / SEGMENT, wal_bytes(SEGMENT_SIZE)), encryptor, 1
    )
    other = LocalStorage(tmp_path / "dr")
    staging = tmp_path / "staging"
    uploader = StagingUploader(
        [storage, other], "wms", staging, encryptor, 1, partial_interval=3600
    )
    foreign = long_header(segment_size=SEGMENT_SIZE, system_identifier=OTHER_SYSTEM_ID)
    write(staging / f"{NEXT}.partial", foreign + wal_bytes(4000)[len(foreign) :])
    with caplog.at_level(logging.INFO, logger="lifeboat.wal.stream"):
        assert not uploader.sweep(force_partials=True)
        assert not uploader.sweep(force_partials=True)
    for repository in (storage, other):
        assert stream_partials(repository, "wms") == []
    assert cluster.current(other, "wms") is None  # the stray recorded itself nowhere
    refusals = [r for r in caplog.records if "belongs to the cluster" in r.getMessage()]
    assert len(refusals) == 1 and refusals[0].levelno == logging.ERROR
    assert not any("will retry" in r.getMessage() for r in caplog.records)


def test_names_and_synchronous_hints() -> None:
    assert default_name("wms") == "lifeboat_wms"
    assert default_name("Billing-EU.2") == "lifeboat_billing_eu_2"
    assert len(default_name("x" * 63)) == 63
    assert check_slot_name("lifeboat_wms") == "lifeboat_wms"
    with pytest.raises(UsageError):
        check_slot_name("Lifeboat-WMS")
    assert standby_names('FIRST 1 (lifeboat_wms, "Other One")') == {"lifeboat_wms", "other one"}
    assert standby_names("ANY 2 (a, b, c)") == {"a", "b", "c"}
    assert standby_names("") == set()

    def options(synchronous: bool) -> StreamOptions:
        return StreamOptions("lifeboat_wms", "lifeboat_wms", Path("x"), synchronous=synchronous)

    assert "synchronous_standby_names = 'lifeboat_wms'" in synchronous_hints(options(True), "")[0]
    assert synchronous_hints(options(True), "ANY 1 (lifeboat_wms, replica1)") == []
    assert synchronous_hints(options(True), "*") == []
    assert "not --synchronous" in synchronous_hints(options(False), "lifeboat_wms")[0]
    assert synchronous_hints(options(False), "") == []


def test_archiving_a_segment_prunes_partials_archive_command_made_useless(
    storage: LocalStorage, keys: tuple[AgeEncryptor, AgeDecryptor], tmp_path: Path
) -> None:
    encryptor, _ = keys
    staging = tmp_path / "staging"
    uploader = StagingUploader(storage, "wms", staging, encryptor, 1, partial_interval=1)
    write(staging / f"{SEGMENT}.partial", wal_bytes(3000))
    assert uploader.sweep(force_partials=True)
    assert [p.segment for p in stream_partials(storage, "wms")] == [SEGMENT]
    # archive_command stores the full segment; the stream, restarted, goes on with the next
    push(
        storage, "wms", write(tmp_path / "pg_wal" / SEGMENT, wal_bytes(SEGMENT_SIZE)), encryptor, 1
    )
    (staging / f"{SEGMENT}.partial").unlink()
    write(staging / "000000010000000A000000FF", wal_bytes(SEGMENT_SIZE, seed=3))
    assert uploader.sweep()
    assert stream_partials(storage, "wms") == []
