"""Reading a stored object back: stored sha256 -> decrypt -> decompress -> plain sha256 -> sink."""

from __future__ import annotations

from dataclasses import dataclass

from lifeboat.config.model import CompressionConfig
from lifeboat.errors import IntegrityError, LifeboatError
from lifeboat.pipeline.checksum import (
    BackgroundTap,
    HashingReader,
    HashingWriter,
    Readable,
    Tap,
    Writable,
)
from lifeboat.pipeline.compress import ZstdError, compressing_reader, decompressing_writer
from lifeboat.pipeline.crypto import Decryptor, Encryptor
from lifeboat.pipeline.stream import HandOff, write_from_producer
from lifeboat.progress import Advance
from lifeboat.repo import layout
from lifeboat.repo.catalog import Repository
from lifeboat.repo.manifest import Manifest, StoredObject


@dataclass
class ReadBack:
    stored: Tap
    plain: Tap


def object_key(manifest: Manifest, obj: StoredObject) -> str:
    return layout.object_key(manifest.source, manifest.id, obj.name)


def write_plain(
    repo: Repository,
    key: str,
    source: Readable,
    encryptor: Encryptor,
    compression: CompressionConfig,
    plain_format: str,
    advance: Advance | None = None,
) -> StoredObject:
    """Stream source through plain sha256 -> zstd -> encryption -> stored sha256 into key."""
    plain, stored = BackgroundTap(advance), Tap()

    def produce(sink: Writable) -> None:
        reader = compressing_reader(
            HashingReader(source, plain), compression.level, compression.threads
        )
        encryptor.encrypt(reader, HashingWriter(sink, stored))

    try:
        info = write_from_producer(repo.storage, key, produce)
    finally:
        plain.close()
    if info.size != stored.size:
        repo.storage.delete(key)
        raise LifeboatError(f"{key}: storage holds {info.size} bytes, {stored.size} were sent")
    return StoredObject(
        name=key.rsplit("/", 1)[1],
        size=stored.size,
        sha256=stored.sha256,
        plain_size=plain.size,
        plain_sha256=plain.sha256,
        format=plain_format,
    )


def check_stored(repo: Repository, manifest: Manifest, obj: StoredObject) -> None:
    """Size and sha256 of the stored bytes against the manifest; needs no key."""
    key = object_key(manifest, obj)
    tap = Tap()
    with repo.storage.read(key) as stream:
        while chunk := stream.read(1 << 20):
            tap.update(chunk)
    if tap.size != obj.size:
        raise IntegrityError(
            f"{key}: {tap.size} bytes stored, manifest says {obj.size} (truncated?)"
        )
    if tap.sha256 != obj.sha256:
        raise IntegrityError(f"{key}: sha256 mismatch, the stored object is corrupted")


def read_plain(
    repo: Repository,
    manifest: Manifest,
    obj: StoredObject,
    decryptor: Decryptor,
    sink: Writable,
    advance: Advance | None = None,
    *,
    check_plain_digest: bool = True,
) -> ReadBack:
    """Stream the plaintext of obj into sink, then check both taps against the manifest.

    Without check_plain_digest the plaintext is counted, not hashed: the stored bytes'
    sha256 matching the manifest, age's authentication of every chunk and zstd's content
    checksum already prove it is what was backed up. Hashing it again costs a core-second
    per 1.3 GB, which a restore racing against its RTO should not spend."""
    key = object_key(manifest, obj)
    stored, plain = Tap(), Tap(advance, digest=check_plain_digest)
    with repo.storage.read(key) as stream:
        handoff = HandOff(HashingWriter(sink, plain))
        decompressor = decompressing_writer(handoff)
        try:
            try:
                decryptor.decrypt(HashingReader(stream, stored), decompressor)
                decompressor.flush()
                handoff.finish()
            except BaseException:
                handoff.abort()
                raise
        except ZstdError as exc:
            raise IntegrityError(
                f"{key}: decompression failed, the object is corrupted: {exc}"
            ) from None
        except IntegrityError as exc:
            raise IntegrityError(f"{key}: {exc}") from None
    if stored.size != obj.size or stored.sha256 != obj.sha256:
        raise IntegrityError(f"{key}: sha256 mismatch, the stored object is corrupted or truncated")
    if plain.size != obj.plain_size or (check_plain_digest and plain.sha256 != obj.plain_sha256):
        raise IntegrityError(f"{key}: the decrypted data does not match the manifest")
    return ReadBack(stored, plain)
