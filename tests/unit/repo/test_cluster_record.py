"""The record of the cluster a source holds, and wal-push refusing WAL of another cluster or
a segment that is not whole (memory and local backends, real age, real zstd)."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

import pytest

from lifeboat.errors import LifeboatError, RepositoryError, UsageError
from lifeboat.pipeline.crypto import AgeDecryptor, AgeEncryptor, generate_age_identity
from lifeboat.repo import cluster, layout
from lifeboat.repo.cluster import ClusterIdentity
from lifeboat.repo.manifest import Server
from lifeboat.storage.base import ObjectInfo, Storage
from lifeboat.storage.local import LocalStorage
from lifeboat.storage.memory import MemoryStorage
from lifeboat.wal.archive import (
    ForeignWalError,
    NotASegmentError,
    is_archived,
    push,
    push_stream_partial,
)
from lifeboat.wal.spool import queued, spool_segment
from lifeboat.wal.spool_paths import SpoolPaths
from tests.unit.helpers import AgeKey, initialised
from tests.unit.repo.test_repository import T0, make_manifest
from tests.walfiles import OTHER_SYSTEM_ID, SYSTEM_ID, segment_bytes, segment_file

SEGMENT = "000000010000000A000000FE"
NEXT = "000000010000000A000000FF"


@pytest.fixture
def encryptor() -> AgeEncryptor:
    return AgeEncryptor([generate_age_identity()[1]])


def cluster_keys(storage: Storage) -> list[str]:
    return [info.key for info in storage.list(layout.cluster_prefix("wms"))]


def wal_keys(storage: Storage) -> list[str]:
    return [info.key for info in storage.list("wms/wal/")]


def test_the_first_push_records_the_cluster_of_its_segment(
    encryptor: AgeEncryptor, tmp_path: Path
) -> None:
    storage = MemoryStorage()
    push(storage, "wms", segment_file(tmp_path, SEGMENT), encryptor, level=1)
    assert cluster_keys(storage) == ["wms/cluster/00000001.json"]
    with storage.read("wms/cluster/00000001.json") as stream:
        body = json.loads(stream.read())
    assert body["system_identifier"] == str(SYSTEM_ID)
    assert body["pg_major"] == 17 and body["wal_segment_size"] == 1 << 20
    assert body["recorded_from"] == f"WAL file {SEGMENT}" and body["replaces"] is None
    assert "@" in body["recorded_by"] and body["recorded_at"].endswith("Z")
    # history and backup label files have no page header: they neither record nor get checked
    other = MemoryStorage("other")
    history = tmp_path / "00000002.history"
    history.write_text("1\t0/A0000000\tno recovery target specified\n")
    push(other, "wms", history, encryptor, level=1)
    assert cluster_keys(other) == [] and is_archived(other, "wms", history.name)


def test_a_segment_of_another_cluster_is_refused_everywhere_naming_both(
    encryptor: AgeEncryptor, tmp_path: Path
) -> None:
    holding, empty = MemoryStorage("holding"), MemoryStorage("empty")
    push(holding, "wms", segment_file(tmp_path / "a", SEGMENT), encryptor, level=1)
    foreign = segment_file(tmp_path / "b", NEXT, system_identifier=OTHER_SYSTEM_ID)
    with pytest.raises(ForeignWalError) as caught:
        push([empty, holding], "wms", foreign, encryptor, level=1)
    message = str(caught.value)
    assert message.startswith(
        f"{NEXT} belongs to the cluster with system identifier {OTHER_SYSTEM_ID}, but source wms "
        f"holds the cluster with system identifier {SYSTEM_ID} (recorded "
    )
    assert "refusing it" in message and "\n" not in message
    assert caught.value.exit_code == 1
    # nothing written: not the segment, not a record of the other cluster where none was
    assert not is_archived(holding, "wms", NEXT) and wal_keys(empty) == []
    assert cluster_keys(empty) == []


def test_a_segment_cut_short_or_without_a_header_is_refused(
    encryptor: AgeEncryptor, tmp_path: Path
) -> None:
    storage = MemoryStorage()
    whole = segment_bytes()
    cut = tmp_path / "cut" / SEGMENT
    cut.parent.mkdir()
    cut.write_bytes(whole[:8192])
    with pytest.raises(NotASegmentError) as caught:
        push(storage, "wms", cut, encryptor, level=1)
    assert "is 8192 bytes, but its page header gives the segment size 1048576" in str(caught.value)
    blank = tmp_path / "blank" / f"{SEGMENT}.partial"
    blank.parent.mkdir()
    blank.write_bytes(bytes(len(whole)))
    with pytest.raises(NotASegmentError) as caught:
        push(storage, "wms", blank, encryptor, level=1)
    assert "is not a WAL segment" in str(caught.value)
    assert storage.objects == {}


class CountingStorage(MemoryStorage):
    """Counts the requests for cluster records: what a process pays for the check."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: Counter[str] = Counter()

    def _count(self, what: str, key: str) -> None:
        if key.startswith(layout.cluster_prefix("wms")):
            self.requests[what] += 1

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        self._count("list", prefix)
        return super().list(prefix)

    def read(self, key: str, offset: int = 0, length: int | None = None) -> BinaryIO:
        self._count("read", key)
        return super().read(key, offset, length)

    def write(self, key: str, chunks: Iterable[bytes]) -> ObjectInfo:
        self._count("write", key)
        return super().write(key, chunks)


def test_one_process_reads_the_record_once(encryptor: AgeEncryptor, tmp_path: Path) -> None:
    recorded = MemoryStorage()
    push(recorded, "wms", segment_file(tmp_path / "first", SEGMENT), encryptor, level=1)
    storage = CountingStorage()
    storage.objects.update(recorded.objects)
    for number in range(3):
        name = f"00000001000000{number + 11:02X}00000000"
        push(storage, "wms", segment_file(tmp_path, name, seed=number), encryptor, level=1)
    assert storage.requests == {"list": 1, "read": 1}


def test_a_cluster_accepted_meanwhile_is_read_again_before_refusing(
    encryptor: AgeEncryptor, tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    archiver = LocalStorage(root)  # a long-running worker: it has the first record cached
    push(archiver, "wms", segment_file(tmp_path / "a", SEGMENT), encryptor, level=1)
    elsewhere = LocalStorage(root)  # `backup --accept-new-cluster`, in another process
    old = cluster.current(elsewhere, "wms")
    new = ClusterIdentity(str(OTHER_SYSTEM_ID), 17, 1 << 20)
    cluster.record_cluster(elsewhere, "wms", new, "backup --accept-new-cluster", replacing=old)
    assert cluster_keys(elsewhere) == ["wms/cluster/00000001.json", "wms/cluster/00000002.json"]

    newer = segment_file(tmp_path / "b", NEXT, system_identifier=OTHER_SYSTEM_ID)
    assert not push(archiver, "wms", newer, encryptor, level=1).already_archived
    with pytest.raises(ForeignWalError) as caught:
        push(archiver, "wms", segment_file(tmp_path / "c", NEXT), encryptor, level=1)
    assert f"holds the cluster with system identifier {OTHER_SYSTEM_ID}" in str(caught.value)
    replacing = cluster.current(LocalStorage(root), "wms")
    assert replacing is not None and replacing.replaces == str(SYSTEM_ID)
    assert replacing.recorded_from == "backup --accept-new-cluster"


def test_a_repository_without_a_record_holds_the_cluster_of_its_newest_backup(
    encryptor: AgeEncryptor, tmp_path: Path
) -> None:
    storage = MemoryStorage()
    repo = initialised("local", storage)
    # as a Lifeboat that kept no record left it; the older backup is of a previous cluster,
    # the newest one a restore's safety backup of another server
    server = Server(version="17.2", version_num=170002, system_identifier=str(SYSTEM_ID))
    older = Server(version="16.3", version_num=160003, system_identifier="12345")
    repo.save_manifest(make_manifest(when=T0, server=older))
    newest = make_manifest(when=T0 + timedelta(days=1), server=server)
    repo.save_manifest(newest)
    safety = Server(version="17.2", version_num=170002, system_identifier=str(OTHER_SYSTEM_ID))
    repo.save_manifest(
        make_manifest(when=T0 + timedelta(days=2), server=safety, labels={"kind": "safety"})
    )

    stray = segment_file(tmp_path / "stray", SEGMENT, system_identifier=OTHER_SYSTEM_ID)
    with pytest.raises(ForeignWalError) as caught:
        push(storage, "wms", stray, encryptor, level=1)
    assert f"holds the cluster with system identifier {SYSTEM_ID} (recorded" in str(caught.value)
    assert wal_keys(storage) == []
    record = cluster.current(storage, "wms")
    assert record is not None and record.recorded_from == f"backup {newest.id}"
    assert record.identity.major == 17
    assert not push(storage, "wms", segment_file(tmp_path, SEGMENT), encryptor, 1).already_archived


def test_a_repository_without_a_record_holds_the_cluster_of_its_archived_wal(
    tmp_path: Path, age_key: AgeKey
) -> None:
    encryptor = age_key.encryptor()

    def decryptor_for(method: str) -> AgeDecryptor:
        return age_key.decryptor()

    storage = LocalStorage(tmp_path / "repo")
    push(storage, "wms", segment_file(tmp_path / "pg_wal", SEGMENT), encryptor, level=1)
    shutil.rmtree(tmp_path / "repo" / "wms" / "cluster")  # as a Lifeboat without records
    stray = segment_file(tmp_path / "stray", NEXT, system_identifier=OTHER_SYSTEM_ID)

    with pytest.raises(ForeignWalError) as caught:
        push(LocalStorage(tmp_path / "repo"), "wms", stray, encryptor, 1, decryptor_for)
    assert f"holds the cluster with system identifier {SYSTEM_ID} (recorded" in str(caught.value)
    record = cluster.current(LocalStorage(tmp_path / "repo"), "wms")
    assert record is not None and record.recorded_from == f"archived WAL file {SEGMENT}"
    assert (record.identity.major, record.identity.segment_size) == (17, 1 << 20)
    assert not is_archived(storage, "wms", NEXT)


def test_without_the_key_the_archived_wal_cannot_say_and_the_file_decides(
    encryptor: AgeEncryptor, tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path / "repo")
    push(storage, "wms", segment_file(tmp_path / "pg_wal", SEGMENT), encryptor, level=1)
    shutil.rmtree(tmp_path / "repo" / "wms" / "cluster")

    def no_key(method: str) -> AgeDecryptor:
        raise UsageError("no age_identity_file is configured")

    for decryptor_for in (None, no_key):
        pushed = push(
            LocalStorage(tmp_path / "repo"),
            "wms",
            segment_file(tmp_path / "next", NEXT),
            encryptor,
            1,
            decryptor_for,
        )
        assert pushed.key.startswith("wms/wal/")
        record = cluster.current(LocalStorage(tmp_path / "repo"), "wms")
        assert record is not None and record.recorded_from == f"WAL file {NEXT}"
        shutil.rmtree(tmp_path / "repo" / "wms" / "cluster")


def test_a_record_of_a_signed_identifier_is_read_unsigned(
    encryptor: AgeEncryptor, tmp_path: Path
) -> None:
    unsigned = (1 << 63) + 42  # as the WAL header gives it
    storage = MemoryStorage()
    body = {
        "system_identifier": str(unsigned - (1 << 64)),  # as pg_control_system() shows it
        "recorded_at": "2026-11-22T05:16:13Z",
        "recorded_by": "postgres@db-1",
    }
    storage.write("wms/cluster/00000001.json", [json.dumps(body).encode()])
    record = cluster.current(storage, "wms")
    assert record is not None and record.system_identifier == str(unsigned)
    own = segment_file(tmp_path, SEGMENT, system_identifier=unsigned)
    assert not push(storage, "wms", own, encryptor, level=1).already_archived


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_long_running_process_reads_the_record_again_after_a_while(
    encryptor: AgeEncryptor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(cluster, "clock", clock)
    root = tmp_path / "repo"
    worker = LocalStorage(root)  # the async worker or wal-stream: it has the record cached
    push(worker, "wms", segment_file(tmp_path / "a", SEGMENT), encryptor, level=1)
    elsewhere = LocalStorage(root)  # `backup --accept-new-cluster`, in another process
    old = cluster.current(elsewhere, "wms")
    new = ClusterIdentity(str(OTHER_SYSTEM_ID), 17, 1 << 20)
    cluster.record_cluster(elsewhere, "wms", new, "backup --accept-new-cluster", replacing=old)

    # within CACHE_SECONDS the old record stands (the point of caching it)
    clock.now += cluster.CACHE_SECONDS - 1
    old_wal = segment_file(tmp_path / "b", NEXT)
    assert not push(worker, "wms", old_wal, encryptor, level=1).already_archived
    # then it is read again: the old cluster's WAL is refused
    clock.now += 1
    with pytest.raises(ForeignWalError) as caught:
        push(worker, "wms", segment_file(tmp_path / "c", "000000010000000B00000000"), encryptor, 1)
    assert f"holds the cluster with system identifier {OTHER_SYSTEM_ID}" in str(caught.value)
    assert not is_archived(worker, "wms", "000000010000000B00000000")


def test_the_first_writer_s_record_holds_against_a_second_first_writer() -> None:
    storage = MemoryStorage()
    first = ClusterIdentity(str(SYSTEM_ID), 17, 1 << 20)
    second = ClusterIdentity(str(OTHER_SYSTEM_ID), 17, 1 << 20)
    assert cluster.record_cluster(storage, "wms", first, "WAL file a").number == 1
    # a writer that looked before the first record existed: its create does not happen
    assert not cluster.create_once(storage, "wms/cluster/00000001.json", b"{}")
    late = MemoryStorage()
    late.objects.update(storage.objects)
    in_force = cluster.ensure_recorded(late, "wms", second, "WAL file b")
    assert in_force is not None and in_force.system_identifier == str(SYSTEM_ID)
    assert cluster_keys(late) == ["wms/cluster/00000001.json"]


def test_a_damaged_record_stops_archiving_until_someone_looks(
    encryptor: AgeEncryptor, tmp_path: Path
) -> None:
    storage = MemoryStorage()
    storage.write("wms/cluster/00000001.json", [b'{"system_identifier": "not a number"}'])
    with pytest.raises(RepositoryError) as caught:
        push(storage, "wms", segment_file(tmp_path, SEGMENT), encryptor, level=1)
    assert "the cluster record wms/cluster/00000001.json is damaged" in str(caught.value)
    assert "lifeboat backup wms --accept-new-cluster" in str(caught.value)
    assert wal_keys(storage) == []


def test_a_repository_that_cannot_be_read_does_not_keep_the_others_from_the_segment(
    encryptor: AgeEncryptor, tmp_path: Path
) -> None:
    good = MemoryStorage("good")
    broken = MemoryStorage("broken")
    broken.write("wms/cluster/00000001.json", [b"not json"])
    with pytest.raises(RepositoryError):
        push([broken, good], "wms", segment_file(tmp_path, SEGMENT), encryptor, level=1)
    assert is_archived(good, "wms", SEGMENT) and wal_keys(broken) == []


def test_a_streamed_partial_of_another_cluster_is_refused(
    encryptor: AgeEncryptor, tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path / "repo")
    push(storage, "wms", segment_file(tmp_path / "pg_wal", SEGMENT), encryptor, level=1)
    partial = segment_file(
        tmp_path / "staging", f"{NEXT}.partial", system_identifier=OTHER_SYSTEM_ID
    )
    with pytest.raises(ForeignWalError):
        push_stream_partial(storage, "wms", partial, encryptor, level=1)
    assert list(storage.list("wms/wal-stream/")) == []


def test_async_wal_push_refuses_a_segment_cut_short_before_spooling_it(tmp_path: Path) -> None:
    spool = SpoolPaths(tmp_path / "spool")
    cut = tmp_path / "pg_wal" / SEGMENT
    cut.parent.mkdir()
    cut.write_bytes(segment_bytes()[:4096])
    with pytest.raises(LifeboatError) as caught:
        spool_segment(spool, cut, max_segments=8)
    assert isinstance(caught.value, NotASegmentError)
    assert not spool.outgoing.exists() or queued(spool.outgoing) == []
