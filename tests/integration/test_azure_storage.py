"""The Azure Blob Storage backend against Azurite, the Azure Storage emulator.

Azurite runs for real on a loopback port (tests/servers/azure.py); the faults it cannot
produce by itself (throttling, immutability policies) come from a loopback proxy in front
of it. The contract suite covers the backend too, through the "azure" entry of its BACKENDS
(tests.servers.azure.azure_contract_storage).
"""

from __future__ import annotations

import base64
import os
import random
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lifeboat.errors import ConfigError
from lifeboat.storage.azure import (
    ACCOUNT_ENV,
    BLOB_ENDPOINT_ENV,
    CONNECTION_STRING_ENV,
    KEY_ENV,
    SAS_TOKEN_ENV,
    AzureBlobStorage,
)
from lifeboat.storage.base import NotFound, PermanentError, Storage, TransientError
from lifeboat.storage.options import StorageOptions
from tests.retries import waits_of, without_waits
from tests.servers import azure as azure_servers
from tests.servers.azure import (
    DEV_ACCOUNT,
    DEV_KEY,
    IMMUTABLE,
    SERVER_BUSY,
    Azurite,
    Fault,
    FaultProxy,
    StorageFactory,
    azure_environment,
    connection_string,
    first_attempt_of_each_request,
    new_container,
    shared_azurite,
)
from tests.servers.ports import refused_port

pytestmark = pytest.mark.integration

# the fixtures of tests/servers/azure.py, seen by pytest here (tests/conftest.py is shared)
azurite_endpoint = azure_servers.azurite_endpoint
azure_storage_factory = azure_servers.azure_storage_factory

MiB = 1 << 20
DATA_KEY = "wms/backups/20261122T094415Z/base.tar.zst.age"
WAL_KEY = "wms/wal/0000000100000000/000000010000000000000001-ab.zst.age"
METADATA_KEY = "wms/backups/20261122T094415Z/manifest.json"
SMALL_PARTS = StorageOptions(part_size=MiB, upload_concurrency=3, max_attempts=3)


class Boom(Exception):
    """Raised by a chunk iterator to simulate a failing producer."""


def seeded_chunks(seed: int, count: int, size: int) -> Iterator[bytes]:
    """Reproducible random chunks, so that a large object need not be held to be checked."""
    generator = random.Random(seed)
    for _ in range(count):
        yield generator.randbytes(size)


def read_all(storage: Storage, key: str, offset: int = 0, length: int | None = None) -> bytes:
    with storage.read(key, offset, length) as stream:
        return stream.read()


def keys(storage: Storage, prefix: str = "") -> list[str]:
    return [info.key for info in storage.list(prefix)]


def sdk_blob(storage: AzureBlobStorage, key: str) -> Any:
    """The SDK's client of a key's blob, to look at what the service holds."""
    from azure.storage.blob import BlobServiceClient

    container, _, prefix = storage.url.removeprefix("az://").partition("/")
    service = BlobServiceClient.from_connection_string(os.environ[CONNECTION_STRING_ENV])
    return service.get_blob_client(container, f"{prefix}/{key}" if prefix else key)


def container_of(storage: AzureBlobStorage) -> str:
    return storage.url.removeprefix("az://").partition("/")[0]


# --- round trips -----------------------------------------------------------------------


def test_multi_block_round_trip_with_ranged_reads_in_bounded_memory(
    azure_storage_factory: StorageFactory,
) -> None:
    storage = azure_storage_factory("round-trip", SMALL_PARTS)
    chunk_size, count = 256 * 1024 + 7, 40  # chunks do not line up with the 1 MiB parts
    tracemalloc.start()
    try:
        info = storage.write(DATA_KEY, seeded_chunks(1, count, chunk_size))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    expected = b"".join(seeded_chunks(1, count, chunk_size))

    assert info.size == len(expected) == storage.stat(DATA_KEY).size
    bound = SMALL_PARTS.part_size * (SMALL_PARTS.upload_concurrency + 1)
    assert peak < bound + chunk_size + MiB, f"peak {peak} bytes while writing"
    committed, uncommitted = sdk_blob(storage, DATA_KEY).get_block_list("all")
    assert len(committed) == 11 and not uncommitted
    assert read_all(storage, DATA_KEY) == expected
    # ranges across block boundaries and across the 4 MiB download chunks
    assert read_all(storage, DATA_KEY, MiB - 10, 2 * MiB + 20) == expected[MiB - 10 : 3 * MiB + 10]
    assert read_all(storage, DATA_KEY, 5 * MiB + 3) == expected[5 * MiB + 3 :]
    assert read_all(storage, DATA_KEY, 3, 9 * MiB) == expected[3 : 9 * MiB + 3]
    assert read_all(storage, DATA_KEY, len(expected) + 5) == b""
    with storage.read(DATA_KEY, 100, 3 * MiB) as stream:
        pieces = []
        while piece := stream.read(123_457):
            pieces.append(piece)
    assert b"".join(pieces) == expected[100 : 3 * MiB + 100]


def test_object_of_exactly_one_part_and_of_whole_parts(
    azure_storage_factory: StorageFactory,
) -> None:
    in_container = azure_storage_factory("whole-parts", SMALL_PARTS)
    # a repository at the root of its container: keys are the blob names
    storage = AzureBlobStorage(f"az://{container_of(in_container)}", SMALL_PARTS)
    storage.write("one", [b"a" * MiB])
    storage.write("three", [b"b" * MiB] * 3)
    assert read_all(storage, "one") == b"a" * MiB
    assert storage.stat("three").size == 3 * MiB
    assert len(sdk_blob(storage, "three").get_block_list("committed")[0]) == 3
    assert keys(storage) == ["one", "three"]
    assert sdk_blob(storage, "one").blob_name == "one"


def test_repositories_under_different_prefixes_do_not_see_each_other(
    azure_storage_factory: StorageFactory,
) -> None:
    first = azure_storage_factory("prefixes")  # at az://CONTAINER/repo
    second = AzureBlobStorage(f"az://{container_of(first)}/repository", StorageOptions())
    first.write("k", [b"1"])
    second.write("k", [b"2"])
    assert keys(first) == ["k"] and keys(second) == ["k"]
    assert read_all(first, "k") == b"1"
    first.delete("k")
    assert read_all(second, "k") == b"2"


# --- access tiers ----------------------------------------------------------------------


# Azurite 3 sets all four tiers on upload and commit, and reports them like Azure
@pytest.mark.parametrize("tier", ["Hot", "Cool", "Cold", "Archive"])
def test_access_tier_of_data_and_wal_but_not_metadata(
    azure_storage_factory: StorageFactory, tier: str
) -> None:
    storage = azure_storage_factory("tiers", SMALL_PARTS._replace(access_tier=tier.lower()))
    storage.write(DATA_KEY, [b"d" * 10])  # one request
    storage.write(WAL_KEY, [b"w" * (MiB + 1)])  # blocks, tier set at commit
    storage.write(METADATA_KEY, [b"{}"])

    for key in (DATA_KEY, WAL_KEY):
        properties = sdk_blob(storage, key).get_blob_properties()
        assert properties.blob_tier == tier, key
        assert not properties.blob_tier_inferred, key
    assert sdk_blob(storage, METADATA_KEY).get_blob_properties().blob_tier_inferred


def test_archived_blob_read_says_to_rehydrate(azure_storage_factory: StorageFactory) -> None:
    storage = azure_storage_factory("archive", StorageOptions(access_tier="Archive"))
    storage.write(DATA_KEY, [b"cold data"])
    with pytest.raises(PermanentError, match="rehydrate"):
        read_all(storage, DATA_KEY)


def test_unknown_access_tier_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="'Lukewarm' is not one of Hot, Cool, Cold, Archive"):
        AzureBlobStorage("az://backups/wms", StorageOptions(access_tier="Lukewarm"))


# --- failed writes ---------------------------------------------------------------------


def test_chunk_iterator_raising_mid_upload_leaves_no_blob(
    azure_storage_factory: StorageFactory,
) -> None:
    storage = azure_storage_factory("failing-chunks", SMALL_PARTS)
    storage.write("kept", [b"previous version"])
    error = Boom("producer died")

    def chunks(key: str) -> Iterator[bytes]:
        yield from seeded_chunks(2, 20, 256 * 1024)  # five parts staged
        assert sdk_blob(storage, key).get_block_list("uncommitted")[1], "nothing was staged"
        raise error

    with pytest.raises(Boom) as caught:
        storage.write("fresh", chunks("fresh"))
    assert caught.value is error
    with pytest.raises(Boom):
        storage.write("kept", chunks("kept"))

    with pytest.raises(NotFound):
        storage.stat("fresh")
    with pytest.raises(NotFound):
        storage.read("fresh")
    assert keys(storage) == ["kept"]
    assert read_all(storage, "kept") == b"previous version"


def test_azurite_killed_mid_upload(tmp_path: Path) -> None:
    server = Azurite(tmp_path / "azurite")
    server.start()
    try:
        container = new_container(server.connection_string)

        def opened() -> AzureBlobStorage:
            # anew after each start: a restarted server may listen on another port
            with azure_environment(server.connection_string):
                return without_waits(AzureBlobStorage(f"az://{container}/repo", SMALL_PARTS))

        opened().write("witness", [b"committed before the crash"])
        server.stop()  # Azurite saves its metadata when stopped politely...
        server.start()
        storage = opened()

        def chunks() -> Iterator[bytes]:
            yield from seeded_chunks(3, 12, 256 * 1024)
            server.kill()  # ...but not when killed, here with parts in flight
            yield from seeded_chunks(4, 12, 256 * 1024)

        with pytest.raises(TransientError) as caught:
            storage.write("victim", chunks())
        message = str(caught.value)
        assert message.startswith(f"repository {storage.url}: cannot write victim")
        assert "\n" not in message

        server.start()
        storage = opened()
        assert keys(storage) == ["witness"]
        with pytest.raises(NotFound):
            storage.stat("victim")
    finally:
        server.stop()


# --- transient failures ----------------------------------------------------------------


def proxied_storage(
    proxy: FaultProxy, container: str, options: StorageOptions = SMALL_PARTS
) -> AzureBlobStorage:
    """The repository reached through the proxy, retrying without waiting."""
    with azure_environment(proxy.connection_string):
        return without_waits(AzureBlobStorage(f"az://{container}/repo", options))


def test_throttled_requests_are_retried_until_they_succeed(azurite_endpoint: str) -> None:
    """Azurite never throttles: a loopback proxy answers 503 ServerBusy to the first attempt
    of every request (each block, the commit, the checks, each ranged read) and relays its
    retry."""
    container = new_container(azurite_endpoint)
    policy = first_attempt_of_each_request(SERVER_BUSY)
    with FaultProxy(shared_azurite().listening_port, policy) as proxy:
        storage = proxied_storage(proxy, container)
        expected = b"".join(seeded_chunks(5, 36, 256 * 1024))  # 9 MiB: 9 blocks, 3 reads
        storage.write(DATA_KEY, [expected])
        assert read_all(storage, DATA_KEY) == expected
        assert read_all(storage, DATA_KEY, 4 * MiB - 1, 2) == expected[4 * MiB - 1 : 4 * MiB + 1]
        with storage.read(DATA_KEY, 1, 8 * MiB) as stream:  # resumed mid-stream, twice
            pieces = []
            while piece := stream.read(1_000_003):
                pieces.append(piece)
        assert b"".join(pieces) == expected[1 : 8 * MiB + 1]
        assert keys(storage) == [DATA_KEY]
        storage.delete(DATA_KEY)
        with pytest.raises(NotFound):
            storage.stat(DATA_KEY)

    throttled = [seen for seen in proxy.seen if seen[2] == 503]
    assert len([1 for method, path, _ in throttled if "comp=block&" in path]) == 9
    assert proxy.statuses("GET").count(503) >= 7  # a listing and every ranged read


def test_throttling_gives_up_after_max_attempts(azurite_endpoint: str) -> None:
    """A loopback proxy answers 503 ServerBusy to every write: exactly max_attempts requests
    reach the service (the SDK does not retry on its own as well), and nothing is stored."""
    container = new_container(azurite_endpoint)

    def always_busy(method: str, path: str, headers: object) -> Fault | None:
        return SERVER_BUSY if method == "PUT" else None

    with FaultProxy(shared_azurite().listening_port, always_busy) as proxy:
        storage = proxied_storage(proxy, container)
        with pytest.raises(TransientError) as caught:
            storage.write("k", [b"small"])
        assert proxy.statuses("PUT") == [503] * SMALL_PARTS.max_attempts
        assert len(waits_of(storage)) == SMALL_PARTS.max_attempts - 1
        with pytest.raises(TransientError):
            storage.write("big", [bytes(3 * MiB)])
        assert keys(storage) == []
    message = str(caught.value)
    assert message.startswith(f"repository {storage.url}: cannot write k: ")
    assert message.endswith("(gave up after 3 attempts)")
    assert "503 ServerBusy" in message and "run again" in message


# --- permanent failures ----------------------------------------------------------------


def test_wrong_key_is_one_clear_permanent_error(azurite_endpoint: str) -> None:
    container = new_container(azurite_endpoint)
    wrong_key = base64.b64encode(b"not the account key".ljust(64, b".")).decode()

    def relay(method: str, path: str, headers: object) -> Fault | None:
        return None

    with FaultProxy(shared_azurite().listening_port, relay) as proxy:
        with azure_environment(connection_string(proxy.endpoint, wrong_key)):
            storage = AzureBlobStorage(f"az://{container}/repo", StorageOptions())
        with pytest.raises(PermanentError) as caught:
            storage.stat("k")
        assert len(proxy.seen) == 1  # not retried
        with pytest.raises(PermanentError):
            storage.write("k", [b"x"])
        with pytest.raises(PermanentError):
            keys(storage)
    message = str(caught.value)
    assert message.startswith(f"repository az://{container}/repo: cannot look up k:")
    # Azure says AuthenticationFailed, Azurite AuthorizationFailure: either names the variables
    assert "refused the" in message and "AZURE_STORAGE_KEY" in message
    assert "\n" not in message and wrong_key not in message


def test_missing_container(azure_storage_factory: StorageFactory) -> None:
    storage = AzureBlobStorage("az://no-such-container/repo", StorageOptions())
    operations: dict[str, Callable[[], object]] = {
        "write": lambda: storage.write("k", [b"x"]),
        "write in blocks": lambda: storage.write("k", [bytes(17 * MiB)]),
        "read": lambda: storage.read("k"),
        "stat": lambda: storage.stat("k"),
        "list": lambda: keys(storage),
        "delete": lambda: storage.delete("k"),
    }
    for name, operation in operations.items():
        with pytest.raises(PermanentError) as caught:
            operation()
        assert not isinstance(caught.value, NotFound), name
        message = str(caught.value)
        assert message.startswith("repository az://no-such-container/repo: cannot"), name
        assert "container 'no-such-container' does not exist in account" in message, name
        assert "create it" in message and "\n" not in message, name


def test_read_only_sas_token_is_denied_writes(
    azurite_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime, timedelta

    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    container = new_container(azurite_endpoint)
    expiry = datetime.now(UTC) + timedelta(hours=1)

    def sas(permission: ContainerSasPermissions) -> str:
        return generate_container_sas(
            DEV_ACCOUNT, container, DEV_KEY, permission=permission, expiry=expiry
        )

    monkeypatch.delenv(CONNECTION_STRING_ENV, raising=False)
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.setenv(ACCOUNT_ENV, DEV_ACCOUNT)
    monkeypatch.setenv(BLOB_ENDPOINT_ENV, shared_azurite().endpoint)
    monkeypatch.setenv(
        SAS_TOKEN_ENV,
        "?" + sas(ContainerSasPermissions(read=True, write=True, delete=True, list=True)),
    )
    writer = AzureBlobStorage(f"az://{container}/repo", StorageOptions())
    writer.write("k", [b"by SAS"])
    monkeypatch.setenv(SAS_TOKEN_ENV, sas(ContainerSasPermissions(read=True, list=True)))
    reader = AzureBlobStorage(f"az://{container}/repo", StorageOptions())
    assert read_all(reader, "k") == b"by SAS" and keys(reader) == ["k"]

    with pytest.raises(PermanentError) as caught:
        reader.write("other", [b"x"])
    message = str(caught.value)
    assert "access denied" in message and "\n" not in message
    assert "sig=" not in message


def test_account_key_from_the_environment(
    azurite_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    container = new_container(azurite_endpoint)
    monkeypatch.delenv(CONNECTION_STRING_ENV, raising=False)
    monkeypatch.delenv(ACCOUNT_ENV, raising=False)
    monkeypatch.setenv(KEY_ENV, DEV_KEY)
    monkeypatch.setenv(BLOB_ENDPOINT_ENV, shared_azurite().endpoint)
    storage = AzureBlobStorage(f"az://{container}?account={DEV_ACCOUNT}", StorageOptions())
    assert storage.url == f"az://{container}?account={DEV_ACCOUNT}"
    storage.write("top", [b"by key"])
    assert keys(storage) == ["top"]


def test_immutability_policy_refusing_a_delete(azurite_endpoint: str) -> None:
    """Azurite has no immutability policies: a loopback proxy answers each DELETE with the
    409 BlobImmutableDueToPolicy Azure sends for a blob under a time-based retention policy."""
    container = new_container(azurite_endpoint)

    def locked(method: str, path: str, headers: object) -> Fault | None:
        return IMMUTABLE if method == "DELETE" else None

    with FaultProxy(shared_azurite().listening_port, locked) as proxy:
        storage = proxied_storage(proxy, container)
        storage.write("locked", [b"retained"])
        with pytest.raises(PermanentError) as caught:
            storage.delete("locked")
        assert proxy.statuses("DELETE") == [409]  # not retried
        assert read_all(storage, "locked") == b"retained"
    message = str(caught.value)
    assert message.startswith(f"repository {storage.url}: cannot delete locked:")
    assert "immutability policy" in message


# --- configuration ---------------------------------------------------------------------


def test_configuration_errors_name_the_repository_but_no_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in (CONNECTION_STRING_ENV, ACCOUNT_ENV, KEY_ENV, SAS_TOKEN_ENV, BLOB_ENDPOINT_ENV):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match=r"^repository az://backups/wms: no Azure storage"):
        AzureBlobStorage("az://backups/wms", StorageOptions())
    with pytest.raises(ConfigError, match="no credentials for account 'acme'") as caught:
        AzureBlobStorage("az://backups/wms?account=acme", StorageOptions())
    assert KEY_ENV in str(caught.value) and SAS_TOKEN_ENV in str(caught.value)

    with pytest.raises(ConfigError) as caught:
        AzureBlobStorage("az://backups/wms?sv=2022-11-02&sig=TOPSECRET", StorageOptions())
    assert "unknown URL parameter(s) sig, sv" in str(caught.value)
    assert "TOPSECRET" not in str(caught.value)

    with pytest.raises(ConfigError, match="not a valid container name"):
        AzureBlobStorage("az://Backups_2/wms", StorageOptions())

    monkeypatch.setenv(CONNECTION_STRING_ENV, connection_string("http://127.0.0.1:9/x"))
    with pytest.raises(ConfigError, match="names account 'acme' but") as caught:
        AzureBlobStorage("az://backups/wms?account=acme", StorageOptions())
    assert DEV_KEY not in str(caught.value)
    monkeypatch.setenv(CONNECTION_STRING_ENV, "AccountKey=half-pasted")
    with pytest.raises(ConfigError, match="is malformed") as caught:
        AzureBlobStorage("az://backups/wms", StorageOptions())
    assert "half-pasted" not in str(caught.value)
    monkeypatch.setenv(CONNECTION_STRING_ENV, connection_string("http://127.0.0.1:9/x", "no-b64!"))
    with pytest.raises(PermanentError, match="refused the credentials") as refused:
        AzureBlobStorage("az://backups/wms", StorageOptions()).stat("k")
    assert "no-b64!" not in str(refused.value)


def test_unreachable_service_is_transient_and_keeps_the_sas_token_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(CONNECTION_STRING_ENV, raising=False)
    monkeypatch.setenv(ACCOUNT_ENV, "acme")
    monkeypatch.setenv(SAS_TOKEN_ENV, "sv=2022-11-02&ss=b&sig=TOPSECRET%3D")
    with refused_port() as port:
        monkeypatch.setenv(BLOB_ENDPOINT_ENV, f"http://127.0.0.1:{port}/acme")
        storage = without_waits(
            AzureBlobStorage("az://backups/wms", StorageOptions(max_attempts=2))
        )
        for operation in (lambda: storage.write("k", [b"x"]), lambda: keys(storage)):
            with pytest.raises(TransientError) as caught:
                operation()
            message = str(caught.value)
            assert message.startswith("repository az://backups/wms: cannot")
            assert "gave up after 2 attempts" in message and "Connection refused" in message
            assert "TOPSECRET" not in message and "\n" not in message
