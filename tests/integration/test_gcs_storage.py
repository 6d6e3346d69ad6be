"""GcsStorage against a real emulator: gcp-storage-emulator, on a free loopback port.

Faults the emulator cannot produce (throttling, a refused credential or permission, a
retention lock, a connection lost mid-download) come from a loopback proxy in front of it; the
others (a missing bucket, a dying producer, a server killed mid-upload) are real."""

# The fixtures come from tests.servers.gcs (tests/conftest.py is shared): pytest finds them
# by the names imported here, which the tests then take as parameters.
# ruff: noqa: F811

from __future__ import annotations

import hashlib
import json
import random
import tracemalloc
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from lifeboat.storage import gcs
from lifeboat.storage.base import (
    AlreadyExists,
    NotFound,
    PermanentError,
    Storage,
    TransientError,
)
from lifeboat.storage.gcs import GcsStorage
from lifeboat.storage.options import StorageOptions
from tests.retries import waits_of, without_waits
from tests.servers.gcs import (  # noqa: F401 - fixtures
    Fault,
    FaultProxy,
    GcsEmulator,
    GcsStorageFactory,
    gcs_endpoint,
    gcs_storage_factory,
    throttle,
)

pytestmark = pytest.mark.integration
pytest.importorskip("google.cloud.storage", reason="the gcs extra is not installed")

KiB = 1024
MiB = 1024 * KiB
PART = 256 * KiB  # the smallest part a resumable upload takes: many parts from little data
OPTIONS = StorageOptions(part_size=PART, max_attempts=4)

DATA_KEY = "wms/backups/20261122T094415Z/base.tar.zst.age"
DUMP_KEY = "wms/backups/20261122T094415Z/dump.zst.age"
WAL_KEY = "wms/wal/0000000100000000/000000010000000000000001-ab.zst.age"
MANIFEST_KEY = "wms/backups/20261122T094415Z/manifest.json"


class Boom(Exception):
    """Raised by a producer that dies mid-upload."""


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def chunks_of(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def read_all(storage: Storage, key: str, offset: int = 0, length: int | None = None) -> bytes:
    with storage.read(key, offset, length) as stream:
        return stream.read()


def keys(storage: Storage, prefix: str = "") -> list[str]:
    return [info.key for info in storage.list(prefix)]


def through(proxy: FaultProxy, storage: GcsStorage, options: StorageOptions) -> GcsStorage:
    """The same repository, reached through the proxy, retrying without waiting."""
    return without_waits(GcsStorage(storage.url, options, emulator_host=proxy.endpoint))


def object_resource(endpoint: str, storage: GcsStorage, key: str) -> dict[str, object]:
    """The object's metadata as the emulator holds it, read past the backend."""
    parts = urlsplit(storage.url)
    name = f"{parts.path.strip('/')}/{key}"
    url = f"{endpoint}/storage/v1/b/{parts.netloc}/o/{quote(name, safe='')}"
    with urllib.request.urlopen(url, timeout=10) as response:
        resource: dict[str, object] = json.load(response)
        return resource


def test_multi_part_round_trip_streams_in_bounded_memory(
    gcs_storage_factory: GcsStorageFactory,
) -> None:
    storage = gcs_storage_factory("repo", OPTIONS)
    storage.write("warm-up", [b"the client and its connections are made on first use"])
    data = payload(5 * MiB + 12345)
    tracemalloc.start()
    try:
        info = storage.write(DATA_KEY, chunks_of(data, 64 * KiB + 3))
        write_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        digest = hashlib.sha256()
        with storage.read(DATA_KEY) as stream:
            while piece := stream.read(64 * KiB):
                digest.update(piece)
        read_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert info.size == len(data)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    # one part in flight, the next one being gathered and a producer chunk; never the object
    assert write_peak < 3 * PART, f"writing held {write_peak} bytes"
    # the read buffer and a block on its way from the socket
    assert read_peak < 1 * MiB, f"reading held {read_peak} bytes"
    assert storage.stat(DATA_KEY).size == len(data)
    assert keys(storage) == ["warm-up", DATA_KEY]


@pytest.mark.parametrize(
    ("offset", "length"),
    [
        (0, 10),
        (PART - 7, 14),  # across the first part boundary
        (3 * PART + 5, 2 * PART),
        (123, None),
        (5 * PART - 5, 100),  # past the end
        (5 * PART, None),  # at the end
    ],
)
def test_ranged_reads_of_a_multi_part_object(
    gcs_storage_factory: GcsStorageFactory, offset: int, length: int | None
) -> None:
    storage = gcs_storage_factory("repo", OPTIONS)
    data = payload(5 * PART, seed=offset)
    storage.write("ranged", chunks_of(data, 100 * KiB))
    stop = None if length is None else offset + length
    assert read_all(storage, "ranged", offset, length) == data[offset:stop]


def test_storage_class_follows_the_kind_of_object(
    gcs_storage_factory: GcsStorageFactory, gcs_endpoint: str
) -> None:
    """gcp-storage-emulator keeps the storage class an upload names, so it can be read back."""
    options = OPTIONS._replace(storage_class="NEARLINE", wal_storage_class="COLDLINE")
    storage = gcs_storage_factory("repo", options)
    storage.write(DATA_KEY, chunks_of(payload(3 * PART), 64 * KiB))  # resumable upload
    storage.write(DUMP_KEY, [b"small data"])  # one request
    storage.write(WAL_KEY, [b"wal"])
    storage.write(MANIFEST_KEY, [b"{}"])

    expected = {DATA_KEY: "NEARLINE", DUMP_KEY: "NEARLINE", WAL_KEY: "COLDLINE"}
    expected[MANIFEST_KEY] = "STANDARD"  # metadata keeps the bucket's default class
    for key, storage_class in expected.items():
        assert object_resource(gcs_endpoint, storage, key)["storageClass"] == storage_class, key


MISSING_BUCKET_OPERATIONS: dict[str, Callable[[GcsStorage], object]] = {
    "small write": lambda storage: storage.write("k", [b"x"]),
    "multi-part write": lambda storage: storage.write("k", chunks_of(payload(3 * PART), PART)),
    "read": lambda storage: storage.read("k"),
    "stat": lambda storage: storage.stat("k"),
    "list": lambda storage: keys(storage),
    "delete": lambda storage: storage.delete("k"),
}


@pytest.mark.parametrize("operation", sorted(MISSING_BUCKET_OPERATIONS))
def test_missing_bucket_fails_at_once_naming_the_repository(
    gcs_endpoint: str, operation: str
) -> None:
    with FaultProxy(gcs_endpoint) as proxy:
        storage = GcsStorage(
            "gs://lifeboat-no-such-bucket/repo",
            StorageOptions(part_size=PART),
            emulator_host=proxy.endpoint,
        )
        with pytest.raises(PermanentError) as caught:
            MISSING_BUCKET_OPERATIONS[operation](storage)

    message = str(caught.value)
    assert "gs://lifeboat-no-such-bucket/repo" in message
    assert "does not exist" in message
    assert "\n" not in message
    assert not isinstance(caught.value, NotFound)
    # the request, and one listing to tell a missing bucket from a missing object: no retries
    assert len(proxy.requests) <= 2


def first_attempts_and_every_fifth() -> Fault:
    """Picks the first request to each method and path (the first chunk of an upload, the
    first read...) and then every fifth request."""
    seen: set[tuple[str, str]] = set()

    def pick(number: int, method: str, path: str) -> bool:
        first = (method, path) not in seen
        seen.add((method, path))
        return first or number % 5 == 0

    return pick


def test_throttled_requests_are_retried_and_the_write_succeeds(
    gcs_endpoint: str, gcs_storage_factory: GcsStorageFactory
) -> None:
    """Throttling cannot be caused in the emulator: a loopback proxy in front of it answers
    503 (slow down) to the first request to every path and then to every fifth request,
    including chunks of the resumable upload and its first one."""
    direct = gcs_storage_factory("repo", OPTIONS)
    data = payload(4 * PART + 1000)
    with FaultProxy(gcs_endpoint, throttle(first_attempts_and_every_fifth())) as proxy:
        storage = through(proxy, direct, OPTIONS)
        info = storage.write(DATA_KEY, chunks_of(data, 100 * KiB))
        storage.write("small", [b"tiny"])
        assert read_all(storage, DATA_KEY) == data
        assert read_all(storage, DATA_KEY, PART - 5, 10) == data[PART - 5 : PART + 5]
        assert storage.stat("small").size == 4
        assert keys(storage) == ["small", DATA_KEY]
        storage.delete("small")

    assert info.size == len(data)
    assert read_all(direct, DATA_KEY) == data
    assert keys(direct) == [DATA_KEY]
    refused = [request for request in proxy.refused if "upload_id=" in request[1]]
    assert len(refused) >= 2, "the throttling never hit a chunk of the upload"
    assert len(proxy.refused) >= 8


def test_endless_throttling_gives_up_after_max_attempts(
    gcs_endpoint: str, gcs_storage_factory: GcsStorageFactory
) -> None:
    """The proxy answers 503 to everything: each operation makes exactly max_attempts
    requests (no retries inside the SDK on top of the backend's) and then fails."""
    direct = gcs_storage_factory("repo", OPTIONS)
    options = OPTIONS._replace(max_attempts=3)
    operations: list[Callable[[GcsStorage], object]] = [
        lambda storage: storage.stat("k"),
        lambda storage: storage.write("k", [b"small"]),
        lambda storage: storage.write("k", chunks_of(payload(2 * PART), PART)),
        lambda storage: storage.read("k"),
        lambda storage: keys(storage),
        lambda storage: storage.delete("k"),
    ]
    for operation in operations:
        with (
            FaultProxy(gcs_endpoint, throttle(lambda *request: True)) as proxy,
            pytest.raises(TransientError) as caught,
        ):
            storage = through(proxy, direct, options)
            operation(storage)
        assert len(proxy.requests) == 3
        message = str(caught.value)
        assert direct.url in message and "3 attempts" in message and "\n" not in message
        # a full-jitter wait before each attempt but the first, under a doubling ceiling
        waits = waits_of(storage)
        assert len(waits) == 2
        for attempt, wait in enumerate(waits, start=1):
            assert 0 <= wait <= gcs.BACKOFF_BASE_SECONDS * 2 ** (attempt - 1)


def test_download_cut_midway_resumes_where_it_stopped(
    gcs_endpoint: str, gcs_storage_factory: GcsStorageFactory
) -> None:
    """A connection lost mid-download cannot be caused in the emulator: the proxy passes on
    every download but sends back only half of the first body of each read before closing
    the connection. The reader asks again for the rest only."""
    direct = gcs_storage_factory("repo", OPTIONS)
    data = payload(3 * PART + 77)
    direct.write("obj", chunks_of(data, PART))

    def first_of_each_read(number: int, method: str, path: str) -> bool:
        return number in (1, 3)

    with FaultProxy(gcs_endpoint, cut=first_of_each_read) as proxy:
        storage = through(proxy, direct, OPTIONS)
        assert read_all(storage, "obj") == data
        assert read_all(storage, "obj", 1000, 2 * PART) == data[1000 : 1000 + 2 * PART]
    assert [method for method, path in proxy.requests] == ["GET"] * 4


RETENTION = (
    "Object 'repo/k' is subject to bucket's retention policy or object retention and cannot "
    "be deleted or overwritten until 2033-11-22T10:00:00Z"
)
REFUSALS: list[tuple[int, str, Callable[[GcsStorage], object], str]] = [
    (401, "Invalid Credentials", lambda storage: storage.stat("k"), "credentials were refused"),
    (
        403,
        "backup@acme.iam.gserviceaccount.com does not have storage.objects.create access",
        lambda storage: storage.write("k", [b"x"]),
        "access denied",
    ),
    (
        403,
        "backup@acme.iam.gserviceaccount.com does not have storage.objects.get access",
        lambda storage: storage.read("k"),
        "access denied",
    ),
    (403, RETENTION, lambda storage: storage.delete("k"), "retention policy"),
    (400, "Invalid argument: storageClass", lambda storage: keys(storage), "refused the request"),
]


@pytest.mark.parametrize(("status", "message", "operation", "explained"), REFUSALS)
def test_refusals_fail_at_once_with_one_line_that_says_what_to_do(
    gcs_endpoint: str,
    gcs_storage_factory: GcsStorageFactory,
    status: int,
    message: str,
    operation: Callable[[GcsStorage], object],
    explained: str,
) -> None:
    """The emulator checks no credentials and keeps no retention policy: the proxy gives
    the service's answers to a refused credential, a missing permission and a retention
    lock."""
    direct = gcs_storage_factory("repo", OPTIONS)
    with (
        FaultProxy(gcs_endpoint, lambda *request: (status, message)) as proxy,
        pytest.raises(PermanentError) as caught,
    ):
        operation(through(proxy, direct, OPTIONS))
    assert len(proxy.requests) == 1, "a permanent failure is not retried"
    text = str(caught.value)
    assert direct.url in text and explained in text and "\n" not in text


def test_credentials_a_service_message_quotes_stay_out_of_the_error(
    gcs_endpoint: str, gcs_storage_factory: GcsStorageFactory
) -> None:
    """A service, or a proxy on the way, may quote a request's URL or header in its
    message: a resumable session's URL (anyone holding it can write the object) or a
    bearer token. The emulator quotes neither: the proxy answers with such a message."""
    quoted = "https://gcs.example/o?upload_id=SESSIONSECRET: Bearer ya29.TOKENSECRET refused"
    direct = gcs_storage_factory("repo", OPTIONS)
    with (
        FaultProxy(gcs_endpoint, lambda *request: (403, quoted)) as proxy,
        pytest.raises(PermanentError) as caught,
    ):
        through(proxy, direct, OPTIONS).write("k", chunks_of(payload(2 * PART), PART))
    text = str(caught.value)
    assert "SECRET" not in text and "\n" not in text
    assert text.startswith(f"repository {direct.url}: cannot start uploading k: access denied")
    assert "https://gcs.example/o: Bearer *** refused" in text


def dying_producer(error: BaseException, parts: int) -> Iterator[bytes]:
    yield from chunks_of(payload(parts * PART), 100 * KiB)
    raise error


def test_failing_producer_leaves_no_object_and_cancels_the_upload(
    gcs_endpoint: str, gcs_storage_factory: GcsStorageFactory
) -> None:
    direct = gcs_storage_factory("repo", OPTIONS)
    direct.write("f/kept", [b"committed"])
    with FaultProxy(gcs_endpoint) as proxy:
        storage = through(proxy, direct, OPTIONS)
        error = Boom("producer died")
        with pytest.raises(Boom) as caught:
            storage.write("f/kept", dying_producer(error, parts=3))
        assert caught.value is error
        with pytest.raises(Boom):
            storage.write("f/new", dying_producer(Boom(), parts=3))

    assert read_all(direct, "f/kept") == b"committed"
    with pytest.raises(NotFound):
        direct.stat("f/new")
    assert keys(direct) == ["f/kept"]
    sessions = {path for method, path in proxy.requests if method == "PUT"}
    assert len(sessions) == 2, "both writes sent chunks before the producer died"
    for session in sessions:
        assert ("DELETE", session) in proxy.requests, "the resumable session was not cancelled"


def test_emulator_killed_mid_upload_leaves_nothing(tmp_path: Path) -> None:
    """A real crash: the emulator keeps its data on disk, is killed while parts of an upload
    are on their way, and is started again on the same data to look."""
    emulator = GcsEmulator(data_dir=tmp_path / "gcs").start()
    try:
        bucket = emulator.create_bucket()

        def opened() -> GcsStorage:
            # anew after a start: a restarted emulator may listen on another port
            options = OPTIONS._replace(max_attempts=3)
            return without_waits(
                GcsStorage(f"gs://{bucket}/repo", options, emulator_host=emulator.endpoint)
            )

        storage = opened()
        storage.write("kept", [b"committed before the crash"])

        def producer() -> Iterator[bytes]:
            yield from chunks_of(payload(3 * PART), 64 * KiB)
            emulator.kill()
            yield from chunks_of(payload(3 * PART), 64 * KiB)

        with pytest.raises(TransientError) as caught:
            storage.write(DATA_KEY, producer())
        message = str(caught.value)
        assert storage.url in message and "\n" not in message
        assert "upload_id" not in message, "the session URL must not be shown"

        emulator.start()
        storage = opened()
        assert keys(storage) == ["kept"]
        with pytest.raises(NotFound):
            storage.stat(DATA_KEY)
        assert read_all(storage, "kept") == b"committed before the crash"
    finally:
        emulator.stop()


# --- exclusive create ----------------------------------------------------------------------

PRECONDITION_FAILED = (412, "At least one of the pre-conditions you specified did not hold.")


def test_create_exclusive_asks_for_generation_zero_and_takes_412_as_taken(
    gcs_endpoint: str, gcs_storage_factory: GcsStorageFactory
) -> None:
    """GCS answers 412 to an upload with ifGenerationMatch=0 when the object exists. The
    emulator ignores the precondition, so the proxy gives the service's answer to the
    second upload."""
    direct = gcs_storage_factory("repo", OPTIONS)
    uploads: list[str] = []

    def refuse_the_second_upload(number: int, method: str, path: str) -> tuple[int, str] | None:
        if method != "POST" or "/upload/" not in path:
            return None
        uploads.append(path)
        return PRECONDITION_FAILED if len(uploads) == 2 else None

    with FaultProxy(gcs_endpoint, refuse_the_second_upload) as proxy:
        storage = through(proxy, direct, OPTIONS)
        storage.create_exclusive("locks/wms.lock", b"first")
        with pytest.raises(AlreadyExists) as caught:
            storage.create_exclusive("locks/wms.lock", b"second")
    assert len(uploads) == 2
    assert all("ifGenerationMatch=0" in path for path in uploads)
    assert "locks/wms.lock exists already" in str(caught.value)
    assert read_all(direct, "locks/wms.lock") == b"first"
