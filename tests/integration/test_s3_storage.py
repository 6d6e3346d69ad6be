"""The S3 backend against a real S3 emulator (moto's server on a loopback port).

The conformance suite (tests/contract) covers the Storage protocol; these tests cover what
is particular to S3: multipart uploads, bounded memory, storage classes, encryption, Object
Lock, error messages, retries and cleanup of interrupted uploads.
"""

from __future__ import annotations

import random
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3.session
import pytest

from lifeboat.errors import ConfigError
from lifeboat.storage.base import AlreadyExists, NotFound, PermanentError, TransientError
from lifeboat.storage.options import StorageOptions
from lifeboat.storage.s3 import S3Storage, parse_s3_url
from lifeboat.storage.s3_integrity import UploadChecksum
from tests.retries import without_waits
from tests.servers import s3 as s3_servers
from tests.servers.ports import refused_port
from tests.servers.s3 import (
    AUTHENTICATION_OFF,
    SLOW_DOWN,
    Exchange,
    FaultProxy,
    MotoServer,
    admin_client,
    bucket_name,
    is_part_upload,
    repository_url,
    shared_moto,
    slow_down_every_other,
    started_at,
)

pytestmark = pytest.mark.integration

# the emulator's fixtures (bound here, not imported by name, so parameters may reuse the names)
s3_endpoint = s3_servers.s3_endpoint
s3_storage_factory = s3_servers.s3_storage_factory

MiB = 1 << 20
PART = 5 * MiB  # S3's smallest part
SMALL_PARTS = StorageOptions(part_size=PART, upload_concurrency=2, max_attempts=4)
DATA_KEY = "wms/backups/20260101T000000Z/base.tar.zst.age"
WAL_KEY = "wms/wal/0000000100000000/000000010000000000000001-ab12.zst.age"
META_KEY = "wms/backups/20260101T000000Z/manifest.json"

Factory = Callable[..., S3Storage]


class Boom(Exception):
    """Raised by a chunk iterator to simulate a failing producer."""


def random_bytes(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def in_chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def read_all(storage: S3Storage, key: str, offset: int = 0, length: int | None = None) -> bytes:
    with storage.read(key, offset, length) as stream:
        return stream.read()


def head(endpoint: str, storage: S3Storage, key: str) -> Any:
    bucket = storage.location.bucket
    return admin_client(endpoint).head_object(Bucket=bucket, Key=f"repo/{key}")


def pending_uploads(endpoint: str, storage: S3Storage) -> list[str]:
    reply = admin_client(endpoint).list_multipart_uploads(Bucket=storage.location.bucket)
    return [upload["Key"] for upload in reply.get("Uploads", [])]


def assert_one_clear_line(error: Exception, *expected: str) -> None:
    text = str(error)
    assert "\n" not in text
    assert "Traceback" not in text
    for fragment in expected:
        assert fragment in text, text


@pytest.fixture
def proxy(s3_endpoint: str) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of the session's emulator."""
    front = FaultProxy(shared_moto().port)
    front.start()
    yield front
    front.stop()


def behind(proxy: FaultProxy, storage: S3Storage) -> S3Storage:
    """The same repository, reached through the proxy."""
    url = repository_url(storage.location.bucket, proxy.endpoint)
    return without_waits(S3Storage(url, storage.options))


# --- uploads -------------------------------------------------------------------------------


def test_multipart_round_trip_with_ranged_reads(
    s3_storage_factory: Factory, s3_endpoint: str
) -> None:
    storage = s3_storage_factory("multipart", StorageOptions(part_size=PART, upload_concurrency=3))
    data = random_bytes(3 * PART + PART // 2)
    info = storage.write(DATA_KEY, in_chunks(data, MiB + 17))

    assert info.size == len(data)
    assert storage.stat(DATA_KEY).size == len(data)
    assert head(s3_endpoint, storage, DATA_KEY)["ETag"].strip('"').endswith("-4")
    assert read_all(storage, DATA_KEY) == data
    for offset, length in [
        (PART - 10, 20),  # across a part boundary
        (3 * PART + 5, None),  # inside the last, short part
        (0, PART),
        (len(data) - 1, 10),
        (len(data), None),
        (123, 0),
    ]:
        end = len(data) if length is None else offset + length
        assert read_all(storage, DATA_KEY, offset, length) == data[offset:end]
    with storage.read(DATA_KEY, 1000, 3 * MiB) as stream:
        pieces = []
        while piece := stream.read(777_777):
            pieces.append(piece)
    assert b"".join(pieces) == data[1000 : 1000 + 3 * MiB]
    assert pending_uploads(s3_endpoint, storage) == []


@pytest.mark.parametrize("checksum", ["crc32c", "md5"])
@pytest.mark.parametrize(
    ("size", "etag_suffix"), [(0, None), (PART, None), (PART + 1, "-2"), (2 * PART, "-2")]
)
def test_one_put_up_to_a_part_then_multipart(
    s3_storage_factory: Factory,
    s3_endpoint: str,
    size: int,
    etag_suffix: str | None,
    checksum: UploadChecksum,
) -> None:
    storage = s3_storage_factory("boundary", SMALL_PARTS._replace(upload_checksum=checksum))
    data = random_bytes(size, seed=size)
    storage.write(DATA_KEY, in_chunks(data, MiB))
    etag = head(s3_endpoint, storage, DATA_KEY)["ETag"].strip('"')
    assert ("-" in etag) == (etag_suffix is not None)
    if etag_suffix:
        assert etag.endswith(etag_suffix)
    assert read_all(storage, DATA_KEY) == data


def test_memory_stays_bounded_by_the_parts_in_flight(s3_storage_factory: Factory) -> None:
    """Ten parts go through with two in flight: the traced peak stays near three parts
    (two uploading, one filling, plus the SDK's small hashing buffers), far below the
    object's size."""
    storage = s3_storage_factory("memory", StorageOptions(part_size=PART, upload_concurrency=2))
    size = 10 * PART
    block = 256 * 1024

    def produce() -> Iterator[bytes]:
        for number in range(size // block):
            yield bytes([number % 251]) * block  # made on demand, so not counted as held

    storage.write(META_KEY, [b"{}"])  # the client's one-time set-up is not the upload's
    tracemalloc.start()
    try:
        storage.write(DATA_KEY, produce())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert storage.stat(DATA_KEY).size == size
    assert peak < 4.5 * PART, f"peak {peak / MiB:.1f} MiB for 5 MiB parts, 2 in flight"


# --- storage class, encryption, Object Lock ------------------------------------------------


def test_storage_class_and_encryption_by_object_kind(
    s3_storage_factory: Factory, s3_endpoint: str
) -> None:
    options = StorageOptions(
        storage_class="STANDARD_IA",
        wal_storage_class="GLACIER_IR",
        server_side_encryption="AES256",
    )
    storage = s3_storage_factory("classes", options)
    for key in (DATA_KEY, WAL_KEY, META_KEY):
        storage.write(key, [b"payload"])

    classes = {
        key: head(s3_endpoint, storage, key).get("StorageClass", "STANDARD")
        for key in (DATA_KEY, WAL_KEY, META_KEY)
    }
    assert classes == {DATA_KEY: "STANDARD_IA", WAL_KEY: "GLACIER_IR", META_KEY: "STANDARD"}
    for key in (DATA_KEY, WAL_KEY, META_KEY):
        assert head(s3_endpoint, storage, key)["ServerSideEncryption"] == "AES256"


@pytest.mark.parametrize("size", [100, PART + 100])
def test_backup_data_carries_the_tier_tag_for_lifecycle_rules(
    s3_storage_factory: Factory, s3_endpoint: str, size: int
) -> None:
    """The lifecycle rules of deploy/terraform act on the lifeboat-tier tag of backup data;
    WAL and metadata have rules (or none) of their own."""
    storage = s3_storage_factory(f"tiers-{size}", SMALL_PARTS)
    for key in (DATA_KEY, WAL_KEY, META_KEY):
        storage.write(key, in_chunks(random_bytes(size), MiB))
    admin = admin_client(s3_endpoint)
    tags = {
        key: admin.get_object_tagging(Bucket=storage.location.bucket, Key=f"repo/{key}")["TagSet"]
        for key in (DATA_KEY, WAL_KEY, META_KEY)
    }
    assert tags == {
        DATA_KEY: [{"Key": "lifeboat-tier", "Value": "daily"}],
        WAL_KEY: [],
        META_KEY: [],
    }


def test_kms_encryption_names_the_key(s3_storage_factory: Factory, s3_endpoint: str) -> None:
    options = StorageOptions(server_side_encryption="aws:kms", kms_key_id="alias/lifeboat")
    storage = s3_storage_factory("kms", options)
    storage.write(DATA_KEY, [b"payload"])  # the ETag is not an MD5 here: size check only
    reply = head(s3_endpoint, storage, DATA_KEY)
    assert reply["ServerSideEncryption"] == "aws:kms"
    assert "alias/lifeboat" in reply["SSEKMSKeyId"]
    assert read_all(storage, DATA_KEY) == b"payload"


def test_object_lock_retains_data_and_wal_not_metadata(
    s3_storage_factory: Factory, s3_endpoint: str
) -> None:
    options = SMALL_PARTS._replace(object_lock_days=2, object_lock_mode="COMPLIANCE")
    storage = s3_storage_factory("lock", options, lock=True)
    assert storage.capabilities.object_lock
    assert storage.capabilities.versioning
    # two days from the moment of each write: between these two moments, whole seconds
    earliest = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    storage.write(DATA_KEY, in_chunks(random_bytes(PART + 10), MiB))  # multipart
    storage.write(WAL_KEY, [b"wal"])
    storage.write(META_KEY, [b"{}"])
    latest = datetime.now(UTC) + timedelta(days=2)

    for key in (DATA_KEY, WAL_KEY):
        reply = head(s3_endpoint, storage, key)
        assert reply["ObjectLockMode"] == "COMPLIANCE"
        assert earliest <= reply["ObjectLockRetainUntilDate"] <= latest
    assert "ObjectLockMode" not in head(s3_endpoint, storage, META_KEY)
    storage.delete(META_KEY)
    with pytest.raises(NotFound):
        storage.stat(META_KEY)


def test_delete_under_compliance_lock_is_refused_clearly(s3_storage_factory: Factory) -> None:
    options = StorageOptions(object_lock_days=1, object_lock_mode="COMPLIANCE")
    storage = s3_storage_factory("refused", options, lock=True)
    before = datetime.now(UTC)
    storage.write(DATA_KEY, [b"precious"])
    after = datetime.now(UTC)

    with pytest.raises(PermanentError) as refused:
        storage.delete(DATA_KEY)
    assert_one_clear_line(
        refused.value, storage.location.display, DATA_KEY, "Object Lock (COMPLIANCE) until"
    )
    # a day after the write, whose date is the one of either moment around it (midnight)
    dates = {(moment + timedelta(days=1)).strftime("%Y-%m-%d") for moment in (before, after)}
    assert any(date in str(refused.value) for date in dates), refused.value
    assert read_all(storage, DATA_KEY) == b"precious"
    assert [info.key for info in storage.list("")] == [DATA_KEY]


def test_legal_hold_blocks_deletes_until_released(
    s3_storage_factory: Factory, s3_endpoint: str
) -> None:
    storage = s3_storage_factory("hold", lock=True)
    storage.write(DATA_KEY, [b"evidence"])
    storage.set_legal_hold(DATA_KEY, True)
    assert head(s3_endpoint, storage, DATA_KEY)["ObjectLockLegalHoldStatus"] == "ON"
    with pytest.raises(PermanentError) as refused:
        storage.delete(DATA_KEY)
    assert_one_clear_line(refused.value, DATA_KEY, "legal hold")

    storage.set_legal_hold(DATA_KEY, False)
    storage.delete(DATA_KEY)
    storage.delete(DATA_KEY)
    with pytest.raises(NotFound):
        storage.stat(DATA_KEY)


def test_delete_in_a_versioned_bucket_removes_every_version_of_data(
    s3_storage_factory: Factory, s3_endpoint: str
) -> None:
    storage = s3_storage_factory("versions", lock=True)  # Object Lock implies versioning
    for content in (b"one", b"two", b"three"):
        storage.write(DATA_KEY, [content])
    storage.write(DATA_KEY + ".keep", [b"neighbour"])
    storage.delete(DATA_KEY)

    reply = admin_client(s3_endpoint).list_object_versions(Bucket=storage.location.bucket)
    left = [v["Key"] for v in [*reply.get("Versions", []), *reply.get("DeleteMarkers", [])]]
    assert left == [f"repo/{DATA_KEY}.keep"]


def test_delete_of_metadata_in_a_versioned_bucket_leaves_a_delete_marker(
    s3_storage_factory: Factory, s3_endpoint: str
) -> None:
    """Lock files are released by a credential that may not delete versions: a plain
    DeleteObject, which in a versioned bucket hides the key behind a delete marker."""
    storage = s3_storage_factory("markers", lock=True)
    storage.write(META_KEY, [b"{}"])
    storage.delete(META_KEY)

    with pytest.raises(NotFound):
        storage.stat(META_KEY)
    reply = admin_client(s3_endpoint).list_object_versions(Bucket=storage.location.bucket)
    assert [m["Key"] for m in reply.get("DeleteMarkers", [])] == [f"repo/{META_KEY}"]


def test_lock_days_on_a_bucket_without_object_lock(s3_storage_factory: Factory) -> None:
    storage = s3_storage_factory("nolock", StorageOptions(object_lock_days=7))
    storage.write(META_KEY, [b"{}"])  # metadata is never locked, so it needs no lock
    with pytest.raises(PermanentError) as refused:
        storage.write(DATA_KEY, [b"data"])
    assert_one_clear_line(
        refused.value, storage.location.display, "has no Object Lock", "object_lock_days"
    )
    with pytest.raises(NotFound):
        storage.stat(DATA_KEY)
    with pytest.raises(PermanentError) as no_hold:
        storage.set_legal_hold(META_KEY, True)
    assert_one_clear_line(no_hold.value, "has no Object Lock", META_KEY)


def test_capabilities_of_a_plain_bucket(s3_storage_factory: Factory) -> None:
    storage = s3_storage_factory("plain", StorageOptions(part_size=PART, upload_concurrency=3))
    capabilities = storage.capabilities
    assert not capabilities.object_lock
    assert not capabilities.versioning
    assert not capabilities.atomic_rename
    assert capabilities.part_size == PART
    assert capabilities.max_parallelism == 3


# --- errors --------------------------------------------------------------------------------


def test_missing_bucket_is_one_clear_line(s3_endpoint: str) -> None:
    bucket = bucket_name("absent")
    storage = S3Storage(repository_url(bucket, s3_endpoint), StorageOptions())
    operations: list[Callable[[], object]] = [
        lambda: storage.write(META_KEY, [b"x"]),
        lambda: storage.write(DATA_KEY, iter([b"x" * PART, b"y"])),
        lambda: storage.stat(META_KEY),
        lambda: storage.read(META_KEY),
        lambda: list(storage.list("")),
        lambda: storage.delete(META_KEY),
    ]
    for operation in operations:
        with pytest.raises(PermanentError) as missing:
            operation()
        assert_one_clear_line(
            missing.value, f"repository s3://{bucket}/repo:", f"the bucket {bucket} does not exist"
        )


def test_unknown_access_key_is_one_clear_line(
    s3_storage_factory: Factory, s3_endpoint: str
) -> None:
    storage = s3_storage_factory("badkey")
    server = shared_moto()
    server.set_authentication(0)  # moto now checks every request against its IAM
    try:
        with pytest.raises(PermanentError) as refused:
            storage.write(META_KEY, [b"x"])
    finally:
        server.set_authentication(AUTHENTICATION_OFF)
    assert_one_clear_line(refused.value, storage.location.display, "the access key is not valid")
    assert "testing" not in str(refused.value)  # the (dummy) secret is never shown


def test_access_denied_is_one_clear_line(
    s3_storage_factory: Factory, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real IAM user of the emulator with no policy at all is refused everything."""
    storage = s3_storage_factory("denied")
    server = shared_moto()
    iam = boto3.session.Session().client("iam", region_name="us-east-1", endpoint_url=s3_endpoint)
    user = f"nobody-{bucket_name('u')}"
    server.set_authentication(2)  # the next two requests create the user and its key
    try:
        iam.create_user(UserName=user)
        key = iam.create_access_key(UserName=user)["AccessKey"]
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        denied = S3Storage(storage.url, storage.options)
        with pytest.raises(PermanentError) as refused:
            denied.write(META_KEY, [b"x"])
    finally:
        server.set_authentication(AUTHENTICATION_OFF)
    assert_one_clear_line(
        refused.value, storage.location.display, "access denied", "check the credentials / IAM"
    )
    assert key["SecretAccessKey"] not in str(refused.value)


def test_unreachable_endpoint_is_transient_and_bounded(s3_endpoint: str) -> None:
    # s3_endpoint: for its dummy credentials, not for its server
    with refused_port() as port:
        url = repository_url("any", f"http://127.0.0.1:{port}")
        storage = without_waits(S3Storage(url, StorageOptions(max_attempts=3)))
        with pytest.raises(TransientError) as unreachable:
            storage.stat(META_KEY)
    assert_one_clear_line(unreachable.value, "s3://any/repo", "cannot reach", "after 3 attempts")


def test_url_parameters() -> None:
    location = parse_s3_url("s3://acme/wms/db1/?region=eu-west-1&endpoint=https://minio:9000")
    assert (location.bucket, location.prefix) == ("acme", "wms/db1/")
    assert (location.region, location.endpoint) == ("eu-west-1", "https://minio:9000")
    assert location.display == "s3://acme/wms/db1"
    assert parse_s3_url("s3://acme").prefix == ""
    with pytest.raises(ConfigError, match="unknown parameter 'regoin'"):
        parse_s3_url("s3://acme/wms?regoin=eu-west-1")
    with pytest.raises(ConfigError, match="endpoint must be"):
        parse_s3_url("s3://acme/wms?endpoint=minio:9000")


def test_repository_at_the_bucket_root(s3_storage_factory: Factory, s3_endpoint: str) -> None:
    bucket = s3_storage_factory("root").location.bucket
    storage = S3Storage(repository_url(bucket, s3_endpoint, prefix=""), StorageOptions())
    storage.write("a/b", [b"1"])
    storage.write("c", [b"2"])
    assert [info.key for info in storage.list("")] == ["a/b", "c"]
    assert read_all(storage, "a/b") == b"1"


# --- retries and faults (through the loopback proxy) ---------------------------------------


def test_throttling_is_retried_until_it_succeeds(
    s3_storage_factory: Factory, proxy: FaultProxy
) -> None:
    """The emulator never throttles, so the proxy answers 503 SlowDown to every other
    request, uploads of parts included."""
    storage = behind(proxy, s3_storage_factory("throttled", SMALL_PARTS))
    proxy.fault = slow_down_every_other(lambda exchange: True)
    data = random_bytes(2 * PART + 3)

    storage.write(DATA_KEY, in_chunks(data, MiB))
    storage.write(META_KEY, [b"small"])
    assert read_all(storage, DATA_KEY) == data
    assert [info.key for info in storage.list("")] == [DATA_KEY, META_KEY]
    storage.delete(META_KEY)
    assert proxy.injected >= 8
    assert any(is_part_upload(Exchange(m, p, {}, b"")) for m, p in proxy.requests)


def test_gives_up_after_max_attempts_without_sdk_retries(
    s3_storage_factory: Factory, proxy: FaultProxy
) -> None:
    """Always throttled: exactly max_attempts requests reach the proxy, so the SDK does not
    retry on its own underneath ours."""
    storage = behind(proxy, s3_storage_factory("giveup", StorageOptions(max_attempts=3)))
    proxy.fault = lambda exchange: (503, b"<Error><Code>SlowDown</Code></Error>")
    with pytest.raises(TransientError) as throttled:
        storage.stat(META_KEY)
    # a HEAD answer has no body, so only its status tells what happened
    assert_one_clear_line(throttled.value, storage.location.display, "(503)", "3 attempts")
    assert len(proxy.requests) == 3


def test_permanent_errors_are_not_retried(proxy: FaultProxy) -> None:
    url = repository_url(bucket_name("gone"), proxy.endpoint)
    storage = S3Storage(url, StorageOptions(max_attempts=5))
    with pytest.raises(PermanentError):
        list(storage.list(""))
    assert len(proxy.requests) == 1


BAD_DIGEST = (
    b"<Error><Code>BadDigest</Code>"
    b"<Message>The Content-MD5 you specified did not match what we received.</Message></Error>"
)


def first_part(exchange: Exchange) -> bool:
    return is_part_upload(exchange) and "partNumber=1&" in exchange.query + "&"


MD5_SMALL_PARTS = SMALL_PARTS._replace(upload_checksum="md5")


@pytest.mark.parametrize("checksum", ["crc32c", "md5"])
def test_part_refused_for_its_checksum_is_sent_again(
    s3_storage_factory: Factory, proxy: FaultProxy, checksum: UploadChecksum
) -> None:
    """S3 refuses a part whose bytes do not match its checksum (x-amz-checksum-crc32c or
    Content-MD5) with 400 BadDigest; moto does not check, so the proxy answers the first
    part as S3 would."""
    options = SMALL_PARTS._replace(upload_checksum=checksum)
    storage = behind(proxy, s3_storage_factory(f"baddigest-{checksum}", options))
    refused = 0

    def bad_digest_once(exchange: Exchange) -> tuple[int, bytes] | None:
        nonlocal refused
        if first_part(exchange) and not refused:
            refused += 1
            return 400, BAD_DIGEST
        return None

    proxy.fault = bad_digest_once
    data = random_bytes(PART + 100)
    storage.write(DATA_KEY, in_chunks(data, MiB))
    assert refused == 1
    assert read_all(storage, DATA_KEY) == data


def flip_first_byte(exchange: Exchange) -> None:
    exchange.body = bytes([exchange.body[0] ^ 1]) + exchange.body[1:]


def flip_first_part(exchange: Exchange) -> None:
    if first_part(exchange):
        flip_first_byte(exchange)


def test_part_damaged_on_the_way_is_caught_by_its_etag_and_sent_again(
    s3_storage_factory: Factory, proxy: FaultProxy, s3_endpoint: str
) -> None:
    """With MD5 checksums, for stores without flexible checksums: the proxy flips a byte of
    the first part once. S3 would refuse it for its Content-MD5; moto stores it, so the
    part's ETag must give it away, and the part is sent again before anything is visible."""
    direct = s3_storage_factory("bitflip", MD5_SMALL_PARTS)
    storage = behind(proxy, direct)
    flipped = 0

    def flip_first_part_once(exchange: Exchange) -> None:
        nonlocal flipped
        if first_part(exchange) and not flipped:
            flipped += 1
            flip_first_byte(exchange)

    proxy.fault = flip_first_part_once
    data = random_bytes(PART + 100)
    storage.write(DATA_KEY, in_chunks(data, MiB))
    assert flipped == 1
    assert read_all(storage, DATA_KEY) == data
    assert pending_uploads(s3_endpoint, direct) == []


def test_part_damaged_every_time_fails_the_write_and_leaves_nothing(
    s3_storage_factory: Factory, proxy: FaultProxy, s3_endpoint: str
) -> None:
    """As above, but the proxy damages every attempt: the write gives up, aborts its
    upload, and leaves nothing under the key."""
    direct = s3_storage_factory("bitflips", MD5_SMALL_PARTS._replace(max_attempts=2))
    storage = behind(proxy, direct)

    proxy.fault = flip_first_part
    with pytest.raises(TransientError) as damaged:
        storage.write(DATA_KEY, in_chunks(random_bytes(PART + 100), MiB))
    assert_one_clear_line(damaged.value, DATA_KEY, "damaged on the way", "2 attempts")
    with pytest.raises(NotFound):
        direct.stat(DATA_KEY)
    assert pending_uploads(s3_endpoint, direct) == []


def test_damaged_part_kept_by_a_store_that_does_not_check_crc32c_is_caught(
    s3_storage_factory: Factory, proxy: FaultProxy, s3_endpoint: str
) -> None:
    """S3 refuses a part that does not match its x-amz-checksum-crc32c (see above). moto
    keeps it, and computes the object's composite CRC32C from what it kept: the check of the
    completed object gives the damage away, and the object is removed."""
    direct = s3_storage_factory("crcflip", SMALL_PARTS)
    storage = behind(proxy, direct)

    proxy.fault = flip_first_part
    with pytest.raises(PermanentError) as damaged:
        storage.write(DATA_KEY, in_chunks(random_bytes(PART + 100), MiB))
    assert_one_clear_line(damaged.value, DATA_KEY, "stored damaged", "CRC32C", "removed")
    with pytest.raises(NotFound):
        direct.stat(DATA_KEY)
    assert pending_uploads(s3_endpoint, direct) == []


@pytest.mark.parametrize(
    ("checksum", "header", "wrong"),
    [
        ("crc32c", "x-amz-checksum-crc32c", "AAAAAA=="),
        ("md5", "ETag", '"00000000000000000000000000000000"'),
    ],
)
def test_stored_object_that_differs_from_what_was_sent_is_removed(
    s3_storage_factory: Factory,
    proxy: FaultProxy,
    checksum: UploadChecksum,
    header: str,
    wrong: str,
) -> None:
    """The emulator stores what it is sent, so the proxy makes its check after the upload
    report another checksum, as if the stored bytes differed."""
    direct = s3_storage_factory(f"verify-{checksum}", StorageOptions(upload_checksum=checksum))
    storage = behind(proxy, direct)

    def other_checksum(exchange: Exchange, headers: dict[str, str], body: bytes) -> bytes:
        if exchange.method == "HEAD":
            for name in list(headers):
                if name.lower() == header.lower():
                    headers[name] = wrong
        return body

    proxy.rewrite_response = other_checksum
    with pytest.raises(PermanentError) as damaged:
        storage.write(META_KEY, [b"content"])
    assert_one_clear_line(damaged.value, META_KEY, "stored damaged", "write it again")
    with pytest.raises(NotFound):
        direct.stat(META_KEY)


@pytest.mark.parametrize("size", [100, PART + 100])
def test_store_that_does_not_confirm_crc32c_is_one_clear_line(
    s3_storage_factory: Factory, proxy: FaultProxy, s3_endpoint: str, size: int
) -> None:
    """An S3-compatible store without flexible checksums ignores x-amz-checksum-crc32c: the
    proxy drops the checksum from every answer. The write fails at once, says to switch to
    MD5, and leaves nothing behind; with MD5 the same store works."""
    direct = s3_storage_factory(f"nocrc-{size}", SMALL_PARTS)
    storage = behind(proxy, direct)

    def without_checksums(exchange: Exchange, headers: dict[str, str], body: bytes) -> bytes:
        for name in list(headers):
            if name.lower().startswith("x-amz-checksum-"):
                del headers[name]
        return body

    proxy.rewrite_response = without_checksums
    data = random_bytes(size)
    with pytest.raises(PermanentError) as unconfirmed:
        storage.write(DATA_KEY, in_chunks(data, MiB))
    assert_one_clear_line(unconfirmed.value, DATA_KEY, 'upload_checksum = "md5"')
    with pytest.raises(NotFound):
        direct.stat(DATA_KEY)
    assert pending_uploads(s3_endpoint, direct) == []

    with_md5 = behind(proxy, S3Storage(direct.url, MD5_SMALL_PARTS))
    with_md5.write(DATA_KEY, in_chunks(data, MiB))
    assert read_all(direct, DATA_KEY) == data


def test_read_resumes_where_the_connection_was_cut(
    s3_storage_factory: Factory, proxy: FaultProxy
) -> None:
    """The proxy cuts the first GET after 1 MiB of its body; the rest comes from a ranged
    GET of the same version."""
    storage = behind(proxy, s3_storage_factory("resume"))
    data = random_bytes(3 * MiB)
    storage.write(DATA_KEY, [data])
    cuts = 0

    def cut_first_get(exchange: Exchange) -> int | None:
        nonlocal cuts
        if exchange.method == "GET" and DATA_KEY in exchange.path and not cuts:
            cuts += 1
            return MiB
        return None

    proxy.cut_response = cut_first_get
    assert read_all(storage, DATA_KEY, 10) == data[10:]
    assert cuts == 1
    gets = [path for method, path in proxy.requests if method == "GET"]
    assert len(gets) == 2


def test_outage_mid_upload_leaves_no_object_and_the_upload_is_cleaned_later(
    s3_storage_factory: Factory, proxy: FaultProxy, s3_endpoint: str
) -> None:
    """The proxy goes down mid-upload (connections cut, then refused), as a crashed server
    would; unlike killing moto, the server keeps the state to look at afterwards. The write
    cannot even abort its upload then: the pending-upload cleanup does it later."""
    direct = s3_storage_factory("outage", SMALL_PARTS._replace(max_attempts=2))
    storage = behind(proxy, direct)

    def produce() -> Iterator[bytes]:
        yield from in_chunks(random_bytes(2 * PART), MiB)
        proxy.stop()
        yield from in_chunks(random_bytes(2 * PART), MiB)

    with pytest.raises(TransientError) as outage:
        storage.write(DATA_KEY, produce())
    assert_one_clear_line(outage.value, storage.location.display, "cannot reach")
    proxy.start()

    assert list(direct.list("")) == []
    assert pending_uploads(s3_endpoint, direct) == [f"repo/{DATA_KEY}"]
    [upload] = direct.pending_uploads("")
    assert upload.key == DATA_KEY
    direct.remove_pending_upload(upload)
    assert pending_uploads(s3_endpoint, direct) == []


def test_server_killed_mid_upload(s3_endpoint: str, tmp_path: Path) -> None:
    """A server of its own (s3_endpoint only brings the dummy credentials), killed for real
    while parts are in flight: the write fails with a clear, retryable error within its
    bounded attempts."""
    server = MotoServer(tmp_path)
    server.start()
    try:
        bucket = bucket_name("killed")
        admin_client(server.endpoint).create_bucket(Bucket=bucket)
        options = SMALL_PARTS._replace(max_attempts=3)
        storage = without_waits(S3Storage(repository_url(bucket, server.endpoint), options))

        def produce() -> Iterator[bytes]:
            yield from in_chunks(random_bytes(2 * PART), MiB)
            server.stop()
            yield from in_chunks(random_bytes(2 * PART), MiB)

        with pytest.raises(TransientError) as killed:
            storage.write(DATA_KEY, produce())
        # bounded by its attempts, not by a clock
        bounded = "after 3 attempts"
        assert_one_clear_line(killed.value, f"s3://{bucket}/repo", "cannot reach", bounded)
    finally:
        server.stop()


# --- failed producers and cleanup ----------------------------------------------------------


@pytest.mark.parametrize("good_parts", [0.5, 1.5, 2.5])
def test_failing_producer_leaves_no_object_and_no_upload(
    s3_storage_factory: Factory, s3_endpoint: str, good_parts: float
) -> None:
    storage = s3_storage_factory("producer", SMALL_PARTS)
    error = Boom("pg_basebackup died")

    def produce() -> Iterator[bytes]:
        yield from in_chunks(random_bytes(int(good_parts * PART)), MiB)
        raise error

    with pytest.raises(Boom) as caught:
        storage.write(DATA_KEY, produce())
    assert caught.value is error
    assert list(storage.list("")) == []
    assert pending_uploads(s3_endpoint, storage) == []


def test_pending_uploads_are_the_unfinished_multipart_uploads_under_the_prefix(
    s3_storage_factory: Factory, s3_endpoint: str, proxy: FaultProxy
) -> None:
    """moto reports every upload as started on 2010-11-10; the proxy gives the uploads of
    one key the real time, so that their ages differ as they would on S3."""
    direct = s3_storage_factory("pending")
    storage = behind(proxy, direct)
    admin = admin_client(s3_endpoint)
    bucket = direct.location.bucket
    admin.create_multipart_upload(Bucket=bucket, Key=f"repo/{DATA_KEY}")
    admin.create_multipart_upload(Bucket=bucket, Key=f"repo/{WAL_KEY}")
    admin.create_multipart_upload(Bucket=bucket, Key="elsewhere/obj")
    now = datetime.now(UTC)
    proxy.rewrite_response = started_at(f"repo/{WAL_KEY}", now)
    started = {upload.key: upload.started for upload in storage.pending_uploads("")}
    assert started.keys() == {DATA_KEY, WAL_KEY}  # not the one outside the repository
    assert abs(started[WAL_KEY] - now) < timedelta(minutes=1)
    assert started[DATA_KEY] < now - timedelta(days=365)
    [wal] = storage.pending_uploads("wms/wal/")
    assert wal.key == WAL_KEY
    storage.remove_pending_upload(wal)
    storage.remove_pending_upload(wal)  # gone already: fine
    assert sorted(pending_uploads(s3_endpoint, direct)) == ["elsewhere/obj", f"repo/{DATA_KEY}"]


# --- exclusive create ----------------------------------------------------------------------


def test_create_exclusive_is_a_conditional_put(
    s3_storage_factory: Factory, proxy: FaultProxy
) -> None:
    storage = behind(proxy, s3_storage_factory("exclusive"))
    storage.create_exclusive("locks/wms.lock", b"mine")
    with pytest.raises(AlreadyExists) as caught:
        storage.create_exclusive("locks/wms.lock", b"theirs")
    assert_one_clear_line(caught.value, "locks/wms.lock exists already")
    assert read_all(storage, "locks/wms.lock") == b"mine"
    puts = [path for method, path in proxy.requests if method == "PUT"]
    assert len(puts) == 2


def test_create_exclusive_whose_answer_was_lost_is_ours(
    s3_storage_factory: Factory, proxy: FaultProxy
) -> None:
    """The first PutObject lands but the answer says it failed: the retry meets 412 and
    finds the bytes it sent, so the create succeeded (a lock taken that way is held, not
    refused)."""
    storage = behind(proxy, s3_storage_factory("lost-answer"))
    puts = 0

    def land_then_fail(exchange: Exchange) -> tuple[int, bytes] | None:
        nonlocal puts
        if exchange.method != "PUT":
            return None
        puts += 1
        if puts > 1:
            return None
        proxy._forward(exchange)  # it lands ...
        return 503, SLOW_DOWN  # ... and the answer says otherwise

    proxy.fault = land_then_fail
    info = storage.create_exclusive("locks/wms.lock", b"token 1")
    assert info.size == 7
    assert puts == 2
    assert read_all(storage, "locks/wms.lock") == b"token 1"
    with pytest.raises(AlreadyExists):
        storage.create_exclusive("locks/wms.lock", b"token 2")


def test_create_exclusive_retries_a_conditional_conflict(
    s3_storage_factory: Factory, proxy: FaultProxy
) -> None:
    """S3 answers 409 ConditionalRequestConflict to a conditional write racing another one
    on the same key, and asks for a retry (moto never races: the proxy answers it once)."""
    storage = behind(proxy, s3_storage_factory("conflict"))
    conflict = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>ConditionalRequestConflict'
        b"</Code><Message>A conflicting operation occurred.</Message></Error>"
    )
    answered = 0

    def conflict_once(exchange: Exchange) -> tuple[int, bytes] | None:
        nonlocal answered
        if exchange.method == "PUT" and answered == 0:
            answered += 1
            return 409, conflict
        return None

    proxy.fault = conflict_once
    storage.create_exclusive("locks/wms.lock", b"mine")
    assert answered == 1
    assert read_all(storage, "locks/wms.lock") == b"mine"
