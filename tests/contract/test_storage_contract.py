"""One conformance suite every storage backend must pass.

Each test runs once per backend; a new backend is covered by adding it to BACKENDS.
Every test here is marked `contract` (tests/conftest.py). The runs on a backend that needs
no server (SERVERLESS) and the LocalStorage-only tests are marked `unit` as well, so the
quick loop (`-m unit`) still checks the contract without starting an emulator.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from lifeboat.errors import DiskFullError, StorageError
from lifeboat.storage.azure import CONNECTION_STRING_ENV
from lifeboat.storage.base import TEMP_MARKER, AlreadyExists, NotFound, ObjectInfo, Storage
from lifeboat.storage.capabilities import (
    ExclusiveCreate,
    LegalHolds,
    LockState,
    ObjectLocking,
    Tiering,
    UploadJanitor,
    exclusive_create,
    legal_holds,
    object_locking,
    tiering,
    upload_janitor,
)
from lifeboat.storage.direct import BUFFER
from lifeboat.storage.local import LocalStorage
from lifeboat.storage.memory import MemoryStorage
from tests.forwarding import Wrapping
from tests.servers.azure import azure_contract_storage, shared_azurite
from tests.servers.gcs import gcs_contract_storage
from tests.servers.s3 import s3_contract_storage

MiB = 1 << 20

BACKENDS: dict[str, Callable[[Path], Storage]] = {
    "memory": lambda tmp: MemoryStorage("contract"),
    "local": lambda tmp: LocalStorage(tmp / "repo"),
    "azure": azure_contract_storage,
    "gcs": gcs_contract_storage,
    "s3": s3_contract_storage,
}


SERVERLESS = {"memory", "local"}

# The extras (storage/capabilities.py) each backend declares; what a backend lacks, it says
# by leaving it out, and the lookups answer None for it.
EXTRAS: dict[str, set[type]] = {
    "memory": {ExclusiveCreate},
    "local": {ExclusiveCreate, UploadJanitor},
    "azure": {ExclusiveCreate, UploadJanitor},
    "gcs": {ExclusiveCreate},
    "s3": {ExclusiveCreate, UploadJanitor, ObjectLocking, LegalHolds, Tiering},
}
ALL_EXTRAS = [ExclusiveCreate, UploadJanitor, ObjectLocking, LegalHolds, Tiering]
LOOKUPS: list[Callable[[Storage], object | None]] = [
    exclusive_create,
    upload_janitor,
    object_locking,
    legal_holds,
    tiering,
]


def backend_params(names: Iterable[str]) -> list[object]:
    return [
        pytest.param(name, marks=pytest.mark.unit if name in SERVERLESS else ())
        for name in sorted(names)
    ]


def declaring(extra: type) -> list[str]:
    return [name for name, extras in EXTRAS.items() if extra in extras]


@pytest.fixture(params=backend_params(BACKENDS))
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    return BACKENDS[request.param](tmp_path)


# gcp-storage-emulator accepts ifGenerationMatch=0 and overwrites anyway (GCS itself refuses
# with 412): against it the backend is a store without exclusive create, which the
# repository lock detects (tests/unit/repo/test_lock.py, tests/integration/test_gcs_storage.py).
EMULATOR_IGNORES_PRECONDITIONS = {"gcs"}
# Backends whose writes can leave a pending upload behind (a temporary file, an unfinished
# multipart upload, uncommitted blocks). Memory writes are atomic; a GCS resumable upload
# session cannot be listed, and expires after a week.
WITH_PENDING_UPLOADS = set(declaring(UploadJanitor))


@pytest.fixture
def creator(storage: Storage, request: pytest.FixtureRequest) -> ExclusiveCreate:
    backend = request.node.callspec.params["storage"]
    if backend in EMULATOR_IGNORES_PRECONDITIONS:
        pytest.skip(f"the {backend} emulator does not honour preconditions")
    found = exclusive_create(storage)
    assert found is not None, f"{backend} has no exclusive create"
    return found


@pytest.fixture
def local(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "repo")


def read_all(storage: Storage, key: str, offset: int = 0, length: int | None = None) -> bytes:
    with storage.read(key, offset, length) as stream:
        return stream.read()


def keys(storage: Storage, prefix: str) -> list[str]:
    return [info.key for info in storage.list(prefix)]


class Boom(Exception):
    """Raised by a chunk iterator to simulate a failing producer."""


def failing_chunks(good: int, error: BaseException) -> Iterator[bytes]:
    for i in range(good):
        yield bytes([i % 256]) * 4096
    raise error


# --- write / read ------------------------------------------------------------------------


def test_round_trip_single_chunk(storage: Storage) -> None:
    info = storage.write("src/obj", [b"hello world"])
    assert isinstance(info, ObjectInfo)
    assert info.key == "src/obj"
    assert info.size == 11
    assert read_all(storage, "src/obj") == b"hello world"


def test_round_trip_empty_object(storage: Storage) -> None:
    info = storage.write("src/empty", [])
    assert info.size == 0
    assert read_all(storage, "src/empty") == b""
    assert storage.stat("src/empty").size == 0
    assert keys(storage, "src/") == ["src/empty"]


def test_round_trip_empty_chunks(storage: Storage) -> None:
    info = storage.write("src/obj", [b"", b"ab", b"", b"c", b""])
    assert info.size == 3
    assert read_all(storage, "src/obj") == b"abc"


def test_round_trip_many_chunks(storage: Storage) -> None:
    chunks = [os.urandom(MiB + i) for i in range(5)]
    info = storage.write("a/b/c/big", iter(chunks))
    expected = b"".join(chunks)
    assert info.size == len(expected)
    assert read_all(storage, "a/b/c/big") == expected


def test_overwrite_replaces_the_whole_object(storage: Storage) -> None:
    storage.write("k", [b"x" * 1000])
    storage.write("k", [b"short"])
    assert read_all(storage, "k") == b"short"
    assert storage.stat("k").size == 5


def test_memoryview_and_bytearray_chunks(storage: Storage) -> None:
    storage.write("k", [bytearray(b"abc"), memoryview(b"defg")])  # type: ignore[list-item]
    assert read_all(storage, "k") == b"abcdefg"


@pytest.mark.parametrize(
    ("offset", "length", "expected"),
    [
        (0, None, b"0123456789"),
        (3, None, b"3456789"),
        (0, 4, b"0123"),
        (2, 5, b"23456"),
        (7, 100, b"789"),
        (10, None, b""),
        (4, 0, b""),
    ],
)
def test_read_range(storage: Storage, offset: int, length: int | None, expected: bytes) -> None:
    storage.write("r", [b"01234", b"56789"])
    assert read_all(storage, "r", offset, length) == expected


def test_read_range_in_small_pieces(storage: Storage) -> None:
    data = bytes(range(256)) * 64
    storage.write("r", [data])
    with storage.read("r", 100, 1000) as stream:
        pieces = []
        while piece := stream.read(77):
            pieces.append(piece)
    assert b"".join(pieces) == data[100:1100]


def test_stat_reports_size(storage: Storage) -> None:
    storage.write("s/one", [b"a" * 1234, b"b" * 10])
    info = storage.stat("s/one")
    assert info.key == "s/one"
    assert info.size == 1244


def test_missing_key_is_not_found(storage: Storage) -> None:
    storage.write("present", [b"x"])
    with pytest.raises(NotFound):
        storage.read("absent")
    with pytest.raises(NotFound):
        storage.stat("absent")
    with pytest.raises(NotFound):
        storage.stat("absent/below")


@pytest.mark.parametrize("operation", ["read", "stat"])
def test_key_below_an_object_is_not_found(
    storage: Storage, request: pytest.FixtureRequest, operation: str
) -> None:
    storage.write("present", [b"x"])
    with pytest.raises(NotFound):
        getattr(storage, operation)("present/below")


# --- list --------------------------------------------------------------------------------

# A key is never also a folder ("a/b" next to "a/b/x"): a filesystem cannot hold both, and
# the repository layout never needs it.
LISTING = [
    "a/b.txt",
    "a/b/x",
    "a/b/y/z",
    "a/bc",
    "a/bcd/e",
    "a/c",
    "ab",
    "b/a",
    "top",
]


def _populate(storage: Storage) -> None:
    for key in LISTING:
        storage.write(key, [key.encode()])


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("", LISTING),
        ("a/", ["a/b.txt", "a/b/x", "a/b/y/z", "a/bc", "a/bcd/e", "a/c"]),
        ("a/b/", ["a/b/x", "a/b/y/z"]),
        ("a/b", ["a/b.txt", "a/b/x", "a/b/y/z", "a/bc", "a/bcd/e"]),
        ("a/bc", ["a/bc", "a/bcd/e"]),
        ("a/bcd", ["a/bcd/e"]),
        ("a", ["a/b.txt", "a/b/x", "a/b/y/z", "a/bc", "a/bcd/e", "a/c", "ab"]),
        ("b/", ["b/a"]),
        ("t", ["top"]),
        ("nothing/", []),
        ("a/zz", []),
        ("a/b/y/z", ["a/b/y/z"]),
    ],
)
def test_list_returns_exactly_the_keys_under_the_prefix(
    storage: Storage, prefix: str, expected: list[str]
) -> None:
    _populate(storage)
    found = keys(storage, prefix)
    assert len(found) == len(set(found)), "a key is listed twice"
    assert set(found) == set(expected)


def test_list_reports_sizes(storage: Storage) -> None:
    storage.write("p/one", [b"1"])
    storage.write("p/three", [b"333"])
    sizes = {info.key: info.size for info in storage.list("p/")}
    assert sizes == {"p/one": 1, "p/three": 3}


def test_list_is_sorted(storage: Storage, request: pytest.FixtureRequest) -> None:
    for key in ("a/c", "a/b/x", "a/a", "z", "a/b/w/v", "0"):
        storage.write(key, [b"."])
    assert keys(storage, "") == sorted(keys(storage, ""))
    assert keys(storage, "a/") == ["a/a", "a/b/w/v", "a/b/x", "a/c"]


def test_list_of_empty_storage(storage: Storage) -> None:
    assert keys(storage, "") == []
    assert keys(storage, "x/") == []


# --- delete ------------------------------------------------------------------------------


def test_delete_removes_the_key(storage: Storage) -> None:
    storage.write("d/one", [b"1"])
    storage.write("d/two", [b"2"])
    storage.delete("d/one")
    with pytest.raises(NotFound):
        storage.stat("d/one")
    assert keys(storage, "d/") == ["d/two"]
    assert read_all(storage, "d/two") == b"2"


def test_delete_is_idempotent(storage: Storage) -> None:
    storage.write("d/one", [b"1"])
    storage.delete("d/one")
    storage.delete("d/one")
    storage.delete("never/written")
    assert keys(storage, "") == []


def test_write_after_delete(storage: Storage) -> None:
    storage.write("d/x/one", [b"1"])
    storage.delete("d/x/one")
    storage.write("d/x/one", [b"again"])
    assert read_all(storage, "d/x/one") == b"again"


# --- failed writes -----------------------------------------------------------------------


@pytest.mark.parametrize("good_chunks", [0, 1, 50])
def test_failing_chunks_leave_nothing(storage: Storage, good_chunks: int) -> None:
    error = Boom("producer died")
    with pytest.raises(Boom) as caught:
        storage.write("f/obj", failing_chunks(good_chunks, error))
    assert caught.value is error
    with pytest.raises(NotFound):
        storage.stat("f/obj")
    with pytest.raises(NotFound):
        storage.read("f/obj")
    assert keys(storage, "") == []


def test_failing_chunks_keep_the_previous_version(storage: Storage) -> None:
    storage.write("f/obj", [b"committed"])
    with pytest.raises(Boom):
        storage.write("f/obj", failing_chunks(3, Boom()))
    assert read_all(storage, "f/obj") == b"committed"
    assert keys(storage, "f/") == ["f/obj"]


@pytest.mark.parametrize("code", [errno.EIO, errno.ENOSPC])
def test_failing_chunks_os_error_propagates_unchanged(storage: Storage, code: int) -> None:
    # an OSError of the producer (reading its input, or its own scratch disk filling up)
    # is not the storage's failure and must not be reported as one
    error = OSError(code, os.strerror(code))
    with pytest.raises(OSError) as caught:
        storage.write("f/obj", failing_chunks(2, error))
    assert caught.value is error
    with pytest.raises(NotFound):
        storage.stat("f/obj")


def test_write_in_progress_is_never_visible_under_its_key(storage: Storage) -> None:
    seen: list[list[str]] = []

    def chunks() -> Iterator[bytes]:
        yield b"first"
        seen.append(keys(storage, "w/"))
        with pytest.raises(NotFound):
            storage.stat("w/obj")
        yield b"second"

    storage.write("w/other", [b"o"])
    storage.write("w/obj", chunks())
    # a backend may show the partial object under a temporary name (so that an interrupted
    # run's leftovers can be found and removed), but never under the key itself
    assert "w/obj" not in seen[0]
    assert all(k == "w/other" or ".tmp-" in k for k in seen[0])
    assert read_all(storage, "w/obj") == b"firstsecond"


# --- exclusive create --------------------------------------------------------------------


def test_every_backend_declares_exclusive_create(storage: Storage) -> None:
    assert isinstance(exclusive_create(storage), ExclusiveCreate)


def test_create_exclusive_creates(storage: Storage, creator: ExclusiveCreate) -> None:
    info = creator.create_exclusive("locks/a.lock", b'{"token": "one"}')
    assert info.key == "locks/a.lock"
    assert info.size == 16
    assert read_all(storage, "locks/a.lock") == b'{"token": "one"}'
    assert keys(storage, "locks/") == ["locks/a.lock"]


def test_create_exclusive_again_is_refused_and_keeps_the_first(
    storage: Storage, creator: ExclusiveCreate
) -> None:
    creator.create_exclusive("locks/a.lock", b"first")
    with pytest.raises(AlreadyExists):
        creator.create_exclusive("locks/a.lock", b"second")
    assert read_all(storage, "locks/a.lock") == b"first"
    storage.write("plain", [b"written"])
    with pytest.raises(AlreadyExists):
        creator.create_exclusive("plain", b"created")
    assert read_all(storage, "plain") == b"written"
    assert keys(storage, "") == ["locks/a.lock", "plain"]


def test_create_exclusive_of_the_same_bytes_counts_as_created(
    storage: Storage, creator: ExclusiveCreate
) -> None:
    # what a retried request meets when its first attempt landed but the answer was lost
    creator.create_exclusive("k", b"token 1234")
    assert creator.create_exclusive("k", b"token 1234").size == 10
    with pytest.raises(AlreadyExists):
        creator.create_exclusive("k", b"token 1234 and more")
    assert read_all(storage, "k") == b"token 1234"


def test_create_exclusive_after_delete(storage: Storage, creator: ExclusiveCreate) -> None:
    creator.create_exclusive("locks/a.lock", b"first")
    storage.delete("locks/a.lock")
    creator.create_exclusive("locks/a.lock", b"second")
    assert read_all(storage, "locks/a.lock") == b"second"


def test_create_exclusive_from_threads_has_one_winner(
    storage: Storage, creator: ExclusiveCreate
) -> None:
    contenders = 8
    start = threading.Barrier(contenders)
    won: list[int] = []
    lost: list[int] = []

    def contend(number: int) -> None:
        start.wait()
        try:
            creator.create_exclusive("locks/race.lock", f"contender {number}".encode())
        except AlreadyExists:
            lost.append(number)
        else:
            won.append(number)

    threads = [threading.Thread(target=contend, args=(n,)) for n in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1, won
    assert len(lost) == contenders - 1
    assert read_all(storage, "locks/race.lock") == f"contender {won[0]}".encode()


CHILD = [sys.executable, "-m", "tests.contract.storage_child"]
REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
CHILD_PART_SIZE = 5 * MiB  # S3's smallest


def _child(request: pytest.FixtureRequest, storage: Storage, *args: str) -> subprocess.Popen[str]:
    """A process running tests/contract/storage_child.py on the same storage."""
    backend = request.node.callspec.params["storage"]
    env = dict(os.environ)
    if backend == "azure":
        env[CONNECTION_STRING_ENV] = shared_azurite().connection_string
    url = str(storage.root) if isinstance(storage, LocalStorage) else storage.url
    return subprocess.Popen(
        [*CHILD, args[0], url, str(CHILD_PART_SIZE), *args[1:]],
        cwd=REPOSITORY_ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def _expect_line(child: subprocess.Popen[str], wanted: str) -> None:
    assert child.stdout is not None
    line = child.stdout.readline().strip()
    assert line == wanted, f"child said {line!r}, exit code {child.poll()}"


def _last_words(child: subprocess.Popen[str]) -> str:
    assert child.stdout is not None
    said = child.stdout.read().strip()
    assert child.wait(timeout=120) == 0, said
    return said


def test_create_exclusive_from_processes_has_one_winner(
    storage: Storage, creator: ExclusiveCreate, request: pytest.FixtureRequest
) -> None:
    if isinstance(storage, MemoryStorage):
        pytest.skip("a memory store lives in one process")
    contenders = [
        _child(request, storage, "create", "locks/race.lock", f"process {n}") for n in range(4)
    ]
    try:
        for child in contenders:
            _expect_line(child, "ready")
        for child in contenders:  # released together: every one is waiting on its stdin
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.close()
        outcomes = [_last_words(child) for child in contenders]
    finally:
        for child in contenders:
            child.kill()
            child.wait()
    assert sorted(outcomes) == ["lost", "lost", "lost", "won"]
    winner = outcomes.index("won")
    assert read_all(storage, "locks/race.lock") == f"process {winner}".encode()


# --- pending uploads of killed writers -----------------------------------------------------


def test_pending_uploads_are_found_where_a_backend_can_have_them(
    storage: Storage, request: pytest.FixtureRequest
) -> None:
    backend = request.node.callspec.params["storage"]
    assert isinstance(upload_janitor(storage), UploadJanitor) == (backend in WITH_PENDING_UPLOADS)


def _pending(janitor: UploadJanitor, prefix: str) -> list[str]:
    return [upload.key for upload in janitor.pending_uploads(prefix)]


def test_writer_killed_mid_upload_leaves_a_pending_upload_that_can_be_removed(
    storage: Storage, request: pytest.FixtureRequest
) -> None:
    janitor = upload_janitor(storage)
    if janitor is None:
        pytest.skip("this backend's writes leave nothing to clean up")
    storage.write("src/wal/done", [b"committed"])
    key = "src/wal/segment"
    writer = _child(request, storage, "hang", key, str(CHILD_PART_SIZE * 3 // 2))
    try:
        _expect_line(writer, "blocked")
        # blocks may still be on their way from the writer's threads: poll for the upload
        deadline = time.monotonic() + 60
        while key not in _pending(janitor, "src/") and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        writer.kill()
        writer.wait()
    uploads = list(janitor.pending_uploads("src/"))
    assert [upload.key for upload in uploads] == [key]
    assert uploads[0].started.tzinfo is not None
    assert _pending(janitor, "src/wal/") == [key]
    assert _pending(janitor, "other/") == []
    with pytest.raises(NotFound):
        storage.stat(key)

    janitor.remove_pending_upload(uploads[0])
    janitor.remove_pending_upload(uploads[0])  # gone already: fine
    assert _pending(janitor, "") == []
    assert keys(storage, "") == ["src/wal/done"]
    assert read_all(storage, "src/wal/done") == b"committed"


# --- the extras, and wrappers ----------------------------------------------------------------


Extra = TypeVar("Extra")


def own(found: Extra | None, storage: Storage) -> Extra:
    """What a lookup found, checked to be the storage's own extra."""
    assert found is not None
    assert found is storage
    return found


DATA_KEY = "src/backups/20260303T143000Z/dump.zst.age"
MANIFEST_KEY = "src/backups/20260303T143000Z/manifest.json"


def test_each_backend_declares_exactly_its_extras(
    storage: Storage, request: pytest.FixtureRequest
) -> None:
    backend = request.node.callspec.params["storage"]
    assert {extra for extra in ALL_EXTRAS if isinstance(storage, extra)} == EXTRAS[backend]


def test_a_wrapper_exposes_the_extras_it_wraps(
    storage: Storage, request: pytest.FixtureRequest
) -> None:
    backend = request.node.callspec.params["storage"]
    wrapped = Wrapping(Wrapping(storage))
    assert not any(isinstance(wrapped, extra) for extra in ALL_EXTRAS)
    # those that need nothing more than the declaration: the backend itself, or None
    found: dict[type, object] = {
        ExclusiveCreate: exclusive_create(wrapped),
        UploadJanitor: upload_janitor(wrapped),
        Tiering: tiering(wrapped),
    }
    for extra, extra_found in found.items():
        assert extra_found is (storage if extra in EXTRAS[backend] else None), extra.__name__
    for lookup in LOOKUPS:
        assert lookup(wrapped) is lookup(storage), lookup.__name__


def test_object_lock_is_only_in_effect_where_the_store_has_it(storage: Storage) -> None:
    """None of the suite's plain stores has Object Lock on: a backend that could lock (S3)
    answers None too, since its bucket does not."""
    assert not storage.capabilities.object_lock
    assert object_locking(storage) is None
    assert legal_holds(storage) is None


# Each backend that declares ObjectLocking, on a store that has Object Lock on.
LOCKING_BACKENDS: dict[str, Callable[[Path], Storage]] = {
    "s3": lambda tmp: s3_contract_storage(tmp, lock=True),
}


@pytest.mark.unit
def test_every_locking_backend_is_tested_with_object_lock_on() -> None:
    assert sorted(LOCKING_BACKENDS) == sorted(declaring(ObjectLocking))
    assert declaring(LegalHolds) == declaring(ObjectLocking)  # a legal hold needs a lock


@pytest.fixture(params=backend_params(LOCKING_BACKENDS))
def locked(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    return LOCKING_BACKENDS[request.param](tmp_path)


def test_object_lock_state_of_an_unprotected_object(locked: Storage) -> None:
    assert locked.capabilities.object_lock
    locking = own(object_locking(Wrapping(locked)), locked)
    locked.write(DATA_KEY, [b"data"])
    assert locking.object_lock_state(DATA_KEY) == LockState(None, False)
    with pytest.raises(NotFound):
        locking.object_lock_state("src/missing")


def test_a_legal_hold_keeps_an_object_until_released(locked: Storage) -> None:
    holds = own(legal_holds(Wrapping(locked)), locked)
    locking = own(object_locking(locked), locked)
    locked.write(DATA_KEY, [b"evidence"])

    holds.set_legal_hold(DATA_KEY, True)
    assert locking.object_lock_state(DATA_KEY) == LockState(None, True)
    with pytest.raises(StorageError):
        locked.delete(DATA_KEY)
    assert read_all(locked, DATA_KEY) == b"evidence"

    holds.set_legal_hold(DATA_KEY, False)
    assert locking.object_lock_state(DATA_KEY) == LockState(None, False)
    locked.delete(DATA_KEY)
    with pytest.raises(NotFound):
        locked.stat(DATA_KEY)


@pytest.fixture(params=backend_params(declaring(Tiering)))
def tiered(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    return BACKENDS[request.param](tmp_path)


def test_tier_tags_are_set_and_read_back(tiered: Storage) -> None:
    tags = own(tiering(Wrapping(tiered)), tiered)
    tiered.write(MANIFEST_KEY, [b"{}"])
    assert tags.tier(MANIFEST_KEY) is None  # metadata is stored untagged
    tiered.write(DATA_KEY, [b"data"])
    tags.set_tier(DATA_KEY, "weekly")
    assert tags.tier(DATA_KEY) == "weekly"
    tags.set_tier(DATA_KEY, "yearly")
    assert tags.tier(DATA_KEY) == "yearly"
    assert read_all(tiered, DATA_KEY) == b"data"  # a tag leaves the bytes alone
    with pytest.raises(NotFound):
        tags.tier("src/missing")
    with pytest.raises(NotFound):
        tags.set_tier("src/missing", "weekly")


# --- keys --------------------------------------------------------------------------------

INVALID_KEYS = ["", "/abs", "a/../b", "..", "a//b", "a/./b", "a/", "./a"]


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_invalid_key_write(storage: Storage, key: str) -> None:
    with pytest.raises(ValueError):
        storage.write(key, [b"x"])
    assert keys(storage, "") == []


@pytest.mark.parametrize("operation", ["read", "stat", "delete"])
@pytest.mark.parametrize("key", ["", "/abs", "a/../b"])
def test_invalid_key_other_operations(
    storage: Storage, request: pytest.FixtureRequest, key: str, operation: str
) -> None:
    with pytest.raises(ValueError):
        getattr(storage, operation)(key)


@pytest.mark.unit
def test_invalid_key_cannot_escape_local_root(local: LocalStorage, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        local.write("../outside", [b"x"])
    assert not (tmp_path / "outside").exists()


# --- local filesystem only ---------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.unit
def test_local_file_and_directory_modes(local: LocalStorage, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        local.write("src/backups/id/obj", [b"secret"])
        local.write("top", [b"x"])
    finally:
        os.umask(old)
    root = tmp_path / "repo"
    assert _mode(root / "src/backups/id/obj") == 0o600
    assert _mode(root / "top") == 0o600
    for folder in (root, root / "src", root / "src/backups", root / "src/backups/id"):
        assert _mode(folder) == 0o700, folder


@pytest.mark.unit
def test_local_delete_prunes_empty_folders_but_not_root(
    local: LocalStorage, tmp_path: Path
) -> None:
    local.write("a/b/c", [b"1"])
    local.write("a/d", [b"2"])
    local.delete("a/b/c")
    root = tmp_path / "repo"
    assert not (root / "a/b").exists()
    assert (root / "a/d").exists()
    local.delete("a/d")
    assert not (root / "a").exists()
    assert root.is_dir()


def _leftovers(root: Path) -> list[str]:
    return [p.name for p in root.rglob("*") if TEMP_MARKER in p.name]


@pytest.mark.unit
def test_local_failed_write_leaves_no_temp_file(local: LocalStorage, tmp_path: Path) -> None:
    with pytest.raises(Boom):
        local.write("x/y/obj", failing_chunks(10, Boom()))
    assert _leftovers(tmp_path / "repo") == []
    assert not (tmp_path / "repo/x/y/obj").exists()


@pytest.mark.unit
def test_local_successful_write_leaves_no_temp_file(local: LocalStorage, tmp_path: Path) -> None:
    local.write("x/obj", [b"a", b"b"])
    assert _leftovers(tmp_path / "repo") == []
    assert sorted(p.name for p in (tmp_path / "repo/x").iterdir()) == ["obj"]


class _FullDisk:
    """Wraps the temp file handle: the first `allowed` writes succeed, then ENOSPC."""

    def __init__(self, handle: object, allowed: int, code: int) -> None:
        self._handle = handle
        self._allowed = allowed
        self._code = code

    def write(self, data: bytes) -> int:
        if self._allowed <= 0:
            raise OSError(self._code, os.strerror(self._code))
        self._allowed -= 1
        return self._handle.write(data)  # type: ignore[attr-defined,no-any-return]

    def __getattr__(self, name: str) -> object:
        return getattr(self._handle, name)

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()  # type: ignore[attr-defined]


@pytest.mark.unit
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_local_full_disk_becomes_disk_full_error(
    local: LocalStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    # A full disk cannot be created for real in a unit test: the file handle fails the way
    # the kernel would. A real full filesystem is exercised by the integration tests.
    real_fdopen = os.fdopen

    def fdopen(fd: int, *args: object, **kwargs: object) -> _FullDisk:
        return _FullDisk(real_fdopen(fd, *args, **kwargs), allowed=1, code=code)  # type: ignore[call-overload]

    local.write("full/previous", [b"committed before the disk filled"])
    monkeypatch.setattr(os, "fdopen", fdopen)
    with pytest.raises(DiskFullError) as caught:
        # whole direct-write buffers, then a tail: the disk fills after the first
        local.write("full/obj", [b"a" * BUFFER, b"b" * BUFFER, b"c" * 1000])
    monkeypatch.undo()

    assert "no space left" in str(caught.value)
    assert caught.value.exit_code == 1
    with pytest.raises(NotFound):
        local.stat("full/obj")
    assert keys(local, "full/") == ["full/previous"]
    assert _leftovers(tmp_path / "repo") == []


@pytest.mark.unit
def test_local_other_os_error_is_not_disk_full(
    local: LocalStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lifeboat.storage.base import PermanentError

    real_fdopen = os.fdopen

    def fdopen(fd: int, *args: object, **kwargs: object) -> _FullDisk:
        return _FullDisk(real_fdopen(fd, *args, **kwargs), allowed=0, code=errno.EIO)  # type: ignore[call-overload]

    monkeypatch.setattr(os, "fdopen", fdopen)
    with pytest.raises(PermanentError) as caught:
        local.write("io/obj", [b"x"])
    monkeypatch.undo()
    assert not isinstance(caught.value, DiskFullError)
    assert _leftovers(tmp_path / "repo") == []


@pytest.mark.unit
def test_local_url_names_the_root(local: LocalStorage, tmp_path: Path) -> None:
    assert local.url == f"file://{tmp_path / 'repo'}"


def test_local_writes_and_deletes_in_one_folder_do_not_trip_each_other(
    local: LocalStorage,
) -> None:
    """A delete removes the folders it empties; a writer making its temporary file in such a
    folder at the same moment makes the folder again instead of failing, and a listing
    skips a folder that vanishes under it (lock files come and go in locks/ from several
    processes at once)."""
    failures: list[BaseException] = []

    def churn(worker: int) -> None:
        for cycle in range(400):
            key = f"locks/{worker}/{cycle}"
            try:
                local.write(key, [b"x"])
                local.delete(key)
            except BaseException as exc:
                failures.append(exc)

    def look() -> None:
        while any(worker.is_alive() for worker in workers):
            try:
                list(local.list(""))
            except BaseException as exc:
                failures.append(exc)

    workers = [threading.Thread(target=churn, args=(n,)) for n in range(4)]
    looker = threading.Thread(target=look)
    for worker in workers:
        worker.start()
    looker.start()
    for thread in [*workers, looker]:
        thread.join(timeout=120)
        assert not thread.is_alive()
    assert failures == []
    assert keys(local, "") == []
