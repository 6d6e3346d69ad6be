"""Reading a stored object back: stored sha256 -> decrypt -> decompress -> plain sha256 -> sink."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from lifeboat.errors import IntegrityError, LifeboatError
from lifeboat.pipeline.checksum import (
    BackgroundTap,
    HashingReader,
    HashingWriter,
    Progress,
    Readable,
    Tap,
    Writable,
)
from lifeboat.pipeline.compress import (
    Compression,
    ZstdError,
    compressing_reader,
    decompressing_writer,
)
from lifeboat.pipeline.crypto import Decryptor, Encryptor
from lifeboat.pipeline.stream import Gathering, HandOff, write_from_producer, write_to_all
from lifeboat.repo import layout
from lifeboat.repo.catalog import Repository
from lifeboat.repo.manifest import Manifest, StoredObject
from lifeboat.storage.base import ObjectInfo


@dataclass
class ReadBack:
    stored: Tap
    plain: Tap


def object_key(manifest: Manifest, obj: StoredObject) -> str:
    return layout.object_key(manifest.source, manifest.id, obj.name)


class Written(NamedTuple):
    """An object stored into one or more repositories: where it went, and where not."""

    stored: StoredObject
    repos: list[Repository]
    failed: dict[str, BaseException]


def write_plain(
    repos: Repository | Sequence[Repository],
    key: str,
    source: Readable,
    encryptor: Encryptor,
    compression: Compression,
    plain_format: str,
    advance: Progress | None = None,
) -> Written:
    """Stream source through plain sha256 -> zstd -> encryption -> stored sha256 into key,
    in every repository at once (read, compressed and encrypted once). A repository that
    fails is left out and reported in `failed`, unless all fail: then the error is raised."""
    targets = [repos] if isinstance(repos, Repository) else list(repos)
    # both hashed on threads of their own, the stored bytes in the large pieces they are
    # gathered into: the thread that compresses and encrypts is the one a backup waits on
    plain, stored = BackgroundTap(advance), BackgroundTap()

    def produce(sink: Writable) -> None:
        reader = compressing_reader(
            HashingReader(source, plain), compression.level, compression.threads
        )
        gathered = Gathering(HashingWriter(sink, stored))
        encryptor.encrypt(reader, gathered)
        gathered.finish()

    try:
        if len(targets) == 1:
            outcomes: list[ObjectInfo | BaseException] = [
                write_from_producer(targets[0].storage, key, produce)
            ]
        else:
            outcomes = write_to_all([r.storage for r in targets], key, produce)
    finally:
        plain.close()
        stored.close()
    written: list[Repository] = []
    failed: dict[str, BaseException] = {}
    for repo, outcome in zip(targets, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            failed[repo.name] = outcome
        elif outcome.size != stored.size:
            repo.storage.delete(key)
            failed[repo.name] = LifeboatError(
                f"{key}: storage holds {outcome.size} bytes, {stored.size} were sent"
            )
        else:
            written.append(repo)
    if not written:
        raise next(iter(failed.values()))
    obj = StoredObject(
        name=key.rsplit("/", 1)[1],
        size=stored.size,
        sha256=stored.sha256,
        plain_size=plain.size,
        plain_sha256=plain.sha256,
        format=plain_format,
    )
    return Written(obj, written, failed)


class Targets:
    """The repositories a backup is being written to: those still in the running, and why
    the others dropped out. An object that one repository fails to take drops that
    repository for the rest of the backup; the others go on."""

    def __init__(
        self, repos: Sequence[Repository], failed: dict[str, BaseException] | None = None
    ) -> None:
        self.all = list(repos)
        self.live = list(repos)
        # failed may already name repositories that could not even be prepared
        self.failed: dict[str, BaseException] = dict(failed or {})

    def take(self, written: Written) -> StoredObject:
        for name, error in written.failed.items():
            self.drop(name, error)
        return written.stored

    def drop(self, name: str, error: BaseException) -> None:
        self.failed.setdefault(name, error)
        self.live = [repo for repo in self.live if repo.name != name]

    def discard(self, keys: Sequence[str], *, dropped_only: bool = False) -> None:
        """Best effort: the objects of a backup that will not be committed (everywhere, or
        only in the repositories that dropped out)."""
        for repo in self.all:
            if dropped_only and repo.name not in self.failed:
                continue
            for key in keys:
                with contextlib.suppress(LifeboatError, OSError):
                    repo.storage.delete(key)

    def outcome(self, stored: StoredObject) -> Written:
        return Written(stored, self.live, self.failed)


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
    advance: Progress | None = None,
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
