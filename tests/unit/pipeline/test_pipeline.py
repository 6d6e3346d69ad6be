"""The streaming pipeline: zstd + age/gpg stages, hashing taps and thread hand-offs."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import shutil
import subprocess
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
import zstandard

from lifeboat.errors import DecryptionKeyError, DiskFullError, EncryptionError, IntegrityError
from lifeboat.pipeline import stream
from lifeboat.pipeline.checksum import HashingReader, HashingWriter, Tap, Writable
from lifeboat.pipeline.compress import compressing_reader, decompressing_writer
from lifeboat.pipeline.crypto import (
    AgeDecryptor,
    AgeEncryptor,
    GpgDecryptor,
    GpgEncryptor,
    Recipient,
    generate_age_identity,
    gpg_encryption_fingerprints,
    read_age_identities,
)
from lifeboat.pipeline.stream import (
    CHUNK,
    QUEUE_DEPTH,
    ChunkQueue,
    filter_through,
    pump,
    write_from_producer,
)
from lifeboat.storage.base import NotFound, ObjectInfo
from lifeboat.storage.local import LocalStorage
from lifeboat.storage.memory import MemoryStorage
from tests.unit.helpers import AgeKey
from tests.waiting import wait_for

MiB = 1 << 20
AGE_MAGIC = b"age-encryption.org/v1"


def sample_data(size: int = 3 * MiB + 12345) -> bytes:
    """Compressible but not trivial: repeated random blocks plus a random tail."""
    block = os.urandom(64 * 1024)
    data = (block * (size // len(block) + 1))[: size - 4096] + os.urandom(4096)
    assert len(data) == size
    return data


@pytest.fixture(scope="module")
def data() -> bytes:
    return sample_data()


def encrypt_age(data: bytes, public: str) -> tuple[bytes, Tap, Tap]:
    plain, stored = Tap(), Tap()
    sink = io.BytesIO()
    reader = compressing_reader(HashingReader(io.BytesIO(data), plain), level=3, threads=0)
    AgeEncryptor([public]).encrypt(reader, HashingWriter(sink, stored))
    return sink.getvalue(), plain, stored


def decrypt_to_bytes(decryptor: AgeDecryptor | GpgDecryptor, blob: bytes) -> tuple[bytes, Tap, Tap]:
    stored, plain = Tap(), Tap()
    sink = io.BytesIO()
    writer = decompressing_writer(HashingWriter(sink, plain))
    decryptor.decrypt(HashingReader(io.BytesIO(blob), stored), writer)
    writer.flush()
    return sink.getvalue(), stored, plain


# --- taps ------------------------------------------------------------------------------------


def test_taps_count_and_hash() -> None:
    seen: list[int] = []
    tap = Tap(seen.append)
    reader = HashingReader(io.BytesIO(b"abcdefghij"), tap)
    assert reader.read(4) == b"abcd"
    assert reader.read() == b"efghij"
    assert reader.read() == b""
    assert tap.size == 10
    assert tap.sha256 == hashlib.sha256(b"abcdefghij").hexdigest()
    assert seen == [4, 6]

    out = io.BytesIO()
    wtap = Tap()
    writer = HashingWriter(out, wtap)
    assert writer.write(b"xyz") == 3
    writer.write(b"")
    writer.flush()
    assert out.getvalue() == b"xyz"
    assert wtap.size == 3
    assert wtap.sha256 == hashlib.sha256(b"xyz").hexdigest()
    assert Tap().sha256 == hashlib.sha256(b"").hexdigest()


# --- age -------------------------------------------------------------------------------------


def test_age_round_trip(data: bytes, age_key: AgeKey) -> None:
    path, public = age_key
    blob, plain_in, stored_in = encrypt_age(data, public)

    assert plain_in.size == len(data)
    assert plain_in.sha256 == hashlib.sha256(data).hexdigest()
    assert stored_in.size == len(blob)
    assert stored_in.sha256 == hashlib.sha256(blob).hexdigest()
    assert len(blob) < len(data) // 2  # it was compressed

    restored, stored_out, plain_out = decrypt_to_bytes(AgeDecryptor(path), blob)
    assert restored == data
    assert (stored_out.size, stored_out.sha256) == (stored_in.size, stored_in.sha256)
    assert (plain_out.size, plain_out.sha256) == (plain_in.size, plain_in.sha256)


def test_age_output_is_standard_age_and_zstd(data: bytes, age_key: AgeKey) -> None:
    import pyrage

    path, public = age_key
    blob, _, _ = encrypt_age(data, public)
    assert blob.startswith(AGE_MAGIC + b"\n")
    identities = read_age_identities(path)
    compressed = pyrage.decrypt(blob, identities)
    # a standard zstd frame with a content checksum, readable by any zstd
    assert compressed.startswith(b"\x28\xb5\x2f\xfd")
    params = zstandard.get_frame_parameters(compressed)
    assert params.has_checksum
    assert zstandard.ZstdDecompressor().decompressobj().decompress(compressed) == data


def test_age_round_trip_empty_input(age_key: AgeKey) -> None:
    path, public = age_key
    blob, plain, _ = encrypt_age(b"", public)
    assert plain.size == 0
    assert blob.startswith(AGE_MAGIC)
    restored, _, plain_out = decrypt_to_bytes(AgeDecryptor(path), blob)
    assert restored == b""
    assert plain_out.sha256 == hashlib.sha256(b"").hexdigest()


def test_age_several_recipients(data: bytes, age_key: AgeKey, tmp_path: Path) -> None:
    path, public = age_key
    secret2, public2 = generate_age_identity()
    (tmp_path / "second.key").write_text(secret2 + "\n")
    encryptor = AgeEncryptor([public, public2])
    assert encryptor.recipients() == [Recipient("age", public), Recipient("age", public2)]
    sink = io.BytesIO()
    encryptor.encrypt(io.BytesIO(b"for both"), sink)
    for key in (path, tmp_path / "second.key"):
        out = io.BytesIO()
        AgeDecryptor(key).decrypt(io.BytesIO(sink.getvalue()), out)
        assert out.getvalue() == b"for both"


def test_age_wrong_identity(data: bytes, age_key: AgeKey, tmp_path: Path) -> None:
    _, public = age_key
    blob, _, _ = encrypt_age(data, public)
    other = tmp_path / "other.key"
    other.write_text(generate_age_identity()[0] + "\n")
    with pytest.raises(DecryptionKeyError) as caught:
        decrypt_to_bytes(AgeDecryptor(other), blob)
    assert str(other) in str(caught.value)


def test_age_corrupted_header_mac(data: bytes, age_key: AgeKey) -> None:
    path, public = age_key
    blob = bytearray(encrypt_age(data, public)[0])
    mac = blob.index(b"\n--- ") + 5
    blob[mac] = ord("A") if blob[mac] != ord("A") else ord("B")
    with pytest.raises(IntegrityError):
        decrypt_to_bytes(AgeDecryptor(path), bytes(blob))


@pytest.mark.parametrize("where", ["first-chunk", "middle", "last-chunk", "truncated"])
def test_age_corrupted_body(age_key: AgeKey, where: str) -> None:
    # incompressible input, so the ciphertext spans many 64 KiB age chunks
    path, public = age_key
    blob = bytearray(encrypt_age(os.urandom(600_000), public)[0])
    body = blob.index(b"\n--- ") + 50
    if where == "first-chunk":
        blob[body + 100] ^= 0x01
    elif where == "middle":
        blob[len(blob) // 2] ^= 0x01
    elif where == "last-chunk":
        blob[-10] ^= 0x01
    else:
        del blob[len(blob) // 2 :]
    with pytest.raises(IntegrityError, match="corrupted"):
        decrypt_to_bytes(AgeDecryptor(path), bytes(blob))


class FailingReader:
    """Serves `good` reads from data, then fails like a broken disk."""

    def __init__(self, data: bytes, good: int) -> None:
        self._stream = io.BytesIO(data)
        self._good = good

    def read(self, size: int = -1) -> bytes:
        if self._good <= 0:
            raise OSError(errno.EIO, "Input/output error")
        self._good -= 1
        return self._stream.read(size)

    def readinto(self, buffer: bytearray) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class FullSink:
    def write(self, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    def flush(self) -> None:
        pass


def test_age_decrypt_source_and_sink_errors_are_not_corruption(
    age_key: AgeKey,
) -> None:
    path, public = age_key
    blob = encrypt_age(os.urandom(300_000), public)[0]
    with pytest.raises(OSError) as caught:
        AgeDecryptor(path).decrypt(FailingReader(blob, good=3), io.BytesIO())
    assert caught.value.errno == errno.EIO
    assert not isinstance(caught.value, IntegrityError)
    with pytest.raises(OSError) as caught:
        AgeDecryptor(path).decrypt(io.BytesIO(blob), FullSink())
    assert caught.value.errno == errno.ENOSPC


def test_age_check_can_decrypt(age_key: AgeKey) -> None:
    path, public = age_key
    decryptor = AgeDecryptor(path)
    assert decryptor.public_keys() == [public]
    decryptor.check_can_decrypt([Recipient("age", public)])
    decryptor.check_can_decrypt(
        [Recipient("age", generate_age_identity()[1]), Recipient("age", public)]
    )
    foreign = generate_age_identity()[1]
    with pytest.raises(DecryptionKeyError) as caught:
        decryptor.check_can_decrypt([Recipient("age", foreign)])
    assert foreign in str(caught.value)
    assert public in str(caught.value)
    with pytest.raises(DecryptionKeyError, match="no age recipient"):
        decryptor.check_can_decrypt([Recipient("gpg", "ABCDEF")])
    with pytest.raises(DecryptionKeyError):
        decryptor.check_can_decrypt([])


def test_age_decryptor_needs_identity_file() -> None:
    with pytest.raises(DecryptionKeyError, match="age_identity_file"):
        AgeDecryptor(None)


def test_age_invalid_recipient() -> None:
    with pytest.raises(EncryptionError, match="invalid age recipient"):
        AgeEncryptor(["age1notarealkey"])


def test_read_age_identities(age_key: AgeKey, tmp_path: Path) -> None:
    path, public = age_key
    identities = read_age_identities(path)
    assert [str(i.to_public()) for i in identities] == [public]  # type: ignore[attr-defined]

    missing = tmp_path / "missing.key"
    with pytest.raises(DecryptionKeyError, match="not found") as caught:
        read_age_identities(missing)
    assert str(missing) in str(caught.value)

    garbage = tmp_path / "garbage.key"
    garbage.write_text("# a comment\nAGE-SECRET-KEY-1NOTVALID\n")
    with pytest.raises(DecryptionKeyError, match="not an age secret key"):
        read_age_identities(garbage)
    with pytest.raises(DecryptionKeyError):
        AgeDecryptor(garbage)

    public_only = tmp_path / "public.key"
    public_only.write_text(public + "\n")
    with pytest.raises(DecryptionKeyError):
        read_age_identities(public_only)

    comments = tmp_path / "comments.key"
    comments.write_text("# nothing here\n\n")
    with pytest.raises(DecryptionKeyError, match="no AGE-SECRET-KEY"):
        read_age_identities(comments)

    with pytest.raises(DecryptionKeyError, match="cannot read"):
        read_age_identities(tmp_path)  # a directory


def test_age_identity_file_error_does_not_echo_the_key(tmp_path: Path) -> None:
    secret, _ = generate_age_identity()
    broken = tmp_path / "broken.key"
    broken.write_text(secret[:-3] + "xyz\n")
    with pytest.raises(DecryptionKeyError) as caught:
        read_age_identities(broken)
    assert secret[20:] not in str(caught.value)


# --- gpg -------------------------------------------------------------------------------------

GPG = shutil.which("gpg")
needs_gpg = pytest.mark.skipif(GPG is None, reason="gpg is not installed")


def _gpg_homedir(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    home = tmp_path_factory.mktemp(name)
    home.chmod(0o700)
    return home


def _stop_agent(home: Path) -> None:
    if shutil.which("gpgconf"):
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
            capture_output=True,
            check=False,
        )


@pytest.fixture(scope="module")
def gpg_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = _gpg_homedir(tmp_path_factory, "gnupg")
    subprocess.run(
        [
            "gpg",
            "--batch",
            "--homedir",
            str(home),
            "--passphrase",
            "",
            "--quick-gen-key",
            "test@example.com",
            "default",
            "default",
            "never",
        ],
        capture_output=True,
        check=True,
    )
    yield home
    _stop_agent(home)


@pytest.fixture(scope="module")
def empty_gpg_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = _gpg_homedir(tmp_path_factory, "gnupg-empty")
    yield home
    _stop_agent(home)


def _colon_listing(home: Path) -> list[list[str]]:
    result = subprocess.run(
        ["gpg", "--homedir", str(home), "--with-colons", "--fixed-list-mode", "--list-keys"],
        capture_output=True,
        text=True,
        check=True,
    )
    return [line.split(":") for line in result.stdout.splitlines()]


@needs_gpg
def test_gpg_encryptor_records_encryption_subkeys(gpg_home: Path) -> None:
    rows = _colon_listing(gpg_home)
    primary = next(rows[i + 1][9] for i, r in enumerate(rows) if r[0] == "pub")
    subkeys = [rows[i + 1][9] for i, r in enumerate(rows) if r[0] == "sub" and "e" in r[11]]
    assert len(subkeys) == 1
    encryptor = GpgEncryptor(["test@example.com"], gpg_home)
    assert encryptor.recipients() == [Recipient("gpg", subkeys[0])]
    assert primary not in {r.id for r in encryptor.recipients()}
    assert gpg_encryption_fingerprints(gpg_home, "test@example.com", secret=True) == subkeys


@needs_gpg
def test_gpg_unknown_recipient(gpg_home: Path) -> None:
    with pytest.raises(EncryptionError, match="no usable public key"):
        GpgEncryptor(["nobody@example.com"], gpg_home)


@needs_gpg
def test_gpg_round_trip(data: bytes, gpg_home: Path) -> None:
    encryptor = GpgEncryptor(["test@example.com"], gpg_home)
    plain_in, stored_in = Tap(), Tap()
    sink = io.BytesIO()
    reader = compressing_reader(HashingReader(io.BytesIO(data), plain_in), 3, 0)
    encryptor.encrypt(reader, HashingWriter(sink, stored_in))
    blob = sink.getvalue()
    assert plain_in.sha256 == hashlib.sha256(data).hexdigest()
    assert stored_in.sha256 == hashlib.sha256(blob).hexdigest()
    assert stored_in.size == len(blob)
    assert blob[0] & 0x80  # an OpenPGP packet, not zstd or plaintext
    assert b"\x28\xb5\x2f\xfd" not in blob[:64]

    decryptor = GpgDecryptor(gpg_home)
    decryptor.check_can_decrypt(encryptor.recipients())
    restored, stored_out, plain_out = decrypt_to_bytes(decryptor, blob)
    assert restored == data
    assert (stored_out.size, stored_out.sha256) == (stored_in.size, stored_in.sha256)
    assert (plain_out.size, plain_out.sha256) == (plain_in.size, plain_in.sha256)


@needs_gpg
def test_gpg_without_secret_key(gpg_home: Path, empty_gpg_home: Path) -> None:
    encryptor = GpgEncryptor(["test@example.com"], gpg_home)
    sink = io.BytesIO()
    encryptor.encrypt(io.BytesIO(b"secret rows"), sink)
    decryptor = GpgDecryptor(empty_gpg_home)
    with pytest.raises(DecryptionKeyError) as caught:
        decryptor.check_can_decrypt(encryptor.recipients())
    assert encryptor.recipients()[0].id in str(caught.value)
    with pytest.raises(DecryptionKeyError):
        decryptor.decrypt(io.BytesIO(sink.getvalue()), io.BytesIO())


@needs_gpg
def test_gpg_corrupted_ciphertext(gpg_home: Path) -> None:
    encryptor = GpgEncryptor(["test@example.com"], gpg_home)
    sink = io.BytesIO()
    encryptor.encrypt(io.BytesIO(os.urandom(200_000)), sink)
    blob = bytearray(sink.getvalue())
    blob[len(blob) // 2] ^= 0x01
    with pytest.raises(IntegrityError):
        GpgDecryptor(gpg_home).decrypt(io.BytesIO(bytes(blob)), io.BytesIO())


# --- write_from_producer ---------------------------------------------------------------------


def _producer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("produce:") and t.is_alive()]


class ProducerFailed(Exception):
    pass


@pytest.mark.timeout(20)
def test_write_from_producer_round_trip(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "repo")
    data = os.urandom(5 * MiB + 17)

    def producer(sink: Writable) -> None:
        for start in range(0, len(data), 300_000):
            sink.write(data[start : start + 300_000])

    info = write_from_producer(storage, "src/obj", producer)
    assert info.size == len(data)
    with storage.read("src/obj") as stored:
        assert stored.read() == data
    assert _producer_threads() == []


@pytest.mark.timeout(20)
@pytest.mark.parametrize("backend", ["memory", "local"])
def test_producer_failure_propagates_and_nothing_is_stored(tmp_path: Path, backend: str) -> None:
    storage = MemoryStorage() if backend == "memory" else LocalStorage(tmp_path / "repo")
    error = ProducerFailed("pg_dump exited with status 1")

    def producer(sink: Writable) -> None:
        for _ in range(3):
            sink.write(b"x" * MiB)
        raise error

    with pytest.raises(ProducerFailed) as caught:
        write_from_producer(storage, "src/obj", producer)
    assert caught.value is error
    with pytest.raises(NotFound):
        storage.stat("src/obj")
    assert list(storage.list("")) == []
    assert _producer_threads() == []


@pytest.mark.timeout(20)
def test_producer_failure_before_writing(tmp_path: Path) -> None:
    storage = MemoryStorage()

    def producer(sink: Writable) -> None:
        raise ProducerFailed("no output at all")

    with pytest.raises(ProducerFailed):
        write_from_producer(storage, "src/obj", producer)
    assert storage.objects == {}


class FailingStorage(MemoryStorage):
    """Accepts `good` chunks, then fails the way a full disk would."""

    def __init__(self, good: int = 1) -> None:
        super().__init__("failing")
        self.good = good
        self.consumed = 0

    def write(self, key: str, chunks: Iterable[bytes]) -> ObjectInfo:
        for _ in chunks:
            self.consumed += 1
            if self.consumed > self.good:
                raise DiskFullError(f"cannot write {key}: no space left on device")
        raise AssertionError("the producer finished although the storage failed")


@pytest.mark.timeout(20)
def test_storage_failure_propagates_and_stops_producer() -> None:
    storage = FailingStorage(good=1)
    written = [0]
    stopped: list[BaseException] = []

    def producer(sink: Writable) -> None:
        try:
            for _ in range(200):
                sink.write(b"y" * MiB)
                written[0] += 1
        except BaseException as exc:
            stopped.append(exc)
            raise

    with pytest.raises(DiskFullError, match="no space left"):
        write_from_producer(storage, "src/obj", producer)
    assert storage.objects == {}
    assert _producer_threads() == []
    assert len(stopped) == 1
    assert isinstance(stopped[0], stream.Cancelled)
    assert written[0] < 200
    assert written[0] <= storage.consumed + QUEUE_DEPTH + 1


@pytest.mark.timeout(20)
def test_storage_failure_wins_over_age_producer_cancellation() -> None:
    # pyrage turns the sink's Cancelled into its own EncryptError: the storage's error must
    # still be the one reported, not "age encryption failed: Cancelled"
    _, public = generate_age_identity()
    encryptor = AgeEncryptor([public])
    storage = FailingStorage(good=1)
    data = os.urandom(20 * MiB)

    def producer(sink: Writable) -> None:
        encryptor.encrypt(compressing_reader(io.BytesIO(data), 1, 1), sink)

    with pytest.raises(DiskFullError, match="no space left"):
        write_from_producer(storage, "src/obj", producer)
    assert storage.objects == {}
    assert _producer_threads() == []


@pytest.mark.timeout(20)
@pytest.mark.parametrize("backend", ["memory", "local"])
def test_producer_os_error_is_not_blamed_on_storage(tmp_path: Path, backend: str) -> None:
    storage = MemoryStorage() if backend == "memory" else LocalStorage(tmp_path / "repo")

    def producer(sink: Writable) -> None:
        pump(FailingReader(os.urandom(4 * MiB), good=2), sink, chunk=MiB)

    with pytest.raises(OSError) as caught:
        write_from_producer(storage, "src/obj", producer)
    assert caught.value.errno == errno.EIO
    assert not isinstance(caught.value, DiskFullError)
    assert list(storage.list("")) == []


class SlowCountingStorage(MemoryStorage):
    """Consumes once the producer ran into the bound, keeps only counts, and watches the
    hand-off queue."""

    def __init__(self) -> None:
        super().__init__("slow")
        self.queues: list[ChunkQueue] = []
        self.max_depth = 0
        self.max_in_flight = 0
        self.received = 0
        self.produced = [0]

    def write(self, key: str, chunks: Iterable[bytes]) -> ObjectInfo:
        hasher = hashlib.sha256()
        for index, chunk in enumerate(chunks):
            (queue,) = self.queues
            if index == 0:
                # the producer fills the queue meanwhile and then has to wait
                wait_for(queue._queue.full, "the producer to fill the hand-off queue")
            self.max_depth = max(self.max_depth, queue._queue.qsize())
            self.received += len(chunk)
            self.max_in_flight = max(self.max_in_flight, self.produced[0] - self.received)
            hasher.update(chunk)
        self.digest = hasher.hexdigest()
        return ObjectInfo(key, self.received)


@pytest.mark.timeout(20)
def test_memory_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    storage = SlowCountingStorage()

    class WatchedQueue(ChunkQueue):
        def __init__(self) -> None:
            super().__init__()
            storage.queues.append(self)

    monkeypatch.setattr(stream, "ChunkQueue", WatchedQueue)
    piece = os.urandom(MiB)
    total = 200 * MiB
    expected = hashlib.sha256()

    def producer(sink: Writable) -> None:
        for _ in range(total // MiB):
            sink.write(piece)
            storage.produced[0] += len(piece)

    for _ in range(total // MiB):
        expected.update(piece)

    info = write_from_producer(storage, "src/big", producer)
    assert info.size == total
    assert storage.received == total
    assert storage.digest == expected.hexdigest()
    assert storage.max_depth <= QUEUE_DEPTH
    assert storage.max_depth == QUEUE_DEPTH  # the producer did run into the bound
    # queued chunks + the one being put + the one in the consumer's hands
    assert storage.max_in_flight <= (QUEUE_DEPTH + 2) * CHUNK


def test_chunk_queue_regroups_small_writes() -> None:
    hand_off = ChunkQueue()
    consumed: list[bytes] = []
    consumer = threading.Thread(target=lambda: consumed.extend(hand_off.chunks()))
    consumer.start()
    for _ in range(2500):
        hand_off.write(b"z" * 1000)
    hand_off.finish()
    consumer.join(10)
    assert not consumer.is_alive()
    assert b"".join(consumed) == b"z" * 2_500_000
    assert all(len(c) >= CHUNK for c in consumed[:-1])
    assert len(consumed) == 3


def test_chunk_queue_passes_error_to_consumer() -> None:
    hand_off = ChunkQueue()
    hand_off.write(b"partial")
    error = ProducerFailed("boom")
    hand_off.finish(error)
    with pytest.raises(ProducerFailed) as caught:
        list(hand_off.chunks())
    assert caught.value is error


def test_chunk_queue_cancelled_put_raises() -> None:
    hand_off = ChunkQueue()
    hand_off.cancelled.set()
    with pytest.raises(stream.Cancelled):
        hand_off.write(b"x" * CHUNK)


# --- pump / filter_through ----------------------------------------------------------------------


def test_pump() -> None:
    out = io.BytesIO()
    assert pump(io.BytesIO(b"a" * 1000), out, chunk=7) == 1000
    assert out.getvalue() == b"a" * 1000


@pytest.mark.timeout(20)
def test_filter_through_copies() -> None:
    data = os.urandom(3 * MiB)
    out = io.BytesIO()
    result = filter_through(["cat"], io.BytesIO(data), out)
    assert result.returncode == 0
    assert out.getvalue() == data


@pytest.mark.timeout(20)
def test_filter_through_reports_exit_status_and_stderr() -> None:
    result = filter_through(
        ["sh", "-c", "cat >/dev/null; echo first >&2; echo 'last line' >&2; exit 3"],
        io.BytesIO(b"input"),
        None,
    )
    assert result.returncode == 3
    assert result.stderr.last_line() == "last line"
    assert result.stderr.lines() == ["first", "last line"]


@pytest.mark.timeout(20)
def test_filter_through_passes_environment() -> None:
    out = io.BytesIO()
    filter_through(
        ["sh", "-c", 'cat >/dev/null; printf %s "$LB_TEST_VALUE"'],
        io.BytesIO(b""),
        out,
        env={"LB_TEST_VALUE": "from-env", "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )
    assert out.getvalue() == b"from-env"


class BrokenSource:
    def __init__(self, good: int) -> None:
        self.good = good

    def read(self, size: int = -1) -> bytes:
        if self.good <= 0:
            raise OSError(5, "Input/output error")
        self.good -= 1
        return b"q" * 65536


@pytest.mark.timeout(20)
@pytest.mark.parametrize("sink", [io.BytesIO, None])
def test_filter_through_propagates_source_error(sink: type[io.BytesIO] | None) -> None:
    with pytest.raises(OSError, match="Input/output error"):
        filter_through(["cat"], BrokenSource(good=20), sink() if sink else None)


@pytest.mark.timeout(20)
def test_filter_through_process_that_stops_reading() -> None:
    # `head` exits early: the broken pipe is not an error of ours, the exit status speaks
    out = io.BytesIO()
    result = filter_through(["head", "-c", "10"], io.BytesIO(b"r" * (4 * MiB)), out)
    assert result.returncode == 0
    assert out.getvalue() == b"r" * 10


@pytest.mark.timeout(20)
def test_filter_through_sink_error_stops_process() -> None:
    class FullStorageSink:
        def write(self, data: bytes) -> int:
            raise DiskFullError("no space left on device")

    with pytest.raises(DiskFullError):
        filter_through(["cat"], io.BytesIO(b"s" * (4 * MiB)), FullStorageSink())


def test_a_failing_source_is_named_not_blamed_on_age() -> None:
    """pyrage wraps what the reader raises; a pg_dump that fails under age is reported as
    the pg_dump failure it is, not as an encryption problem."""
    from lifeboat.errors import ToolError

    class FailingDump:
        def read(self, size: int = -1, /) -> bytes:
            raise ToolError("pg_dump failed: connection to server lost")

    _, recipient = generate_age_identity()
    with pytest.raises(ToolError, match=r"^pg_dump failed: connection to server lost$"):
        AgeEncryptor([recipient]).encrypt(FailingDump(), io.BytesIO())
