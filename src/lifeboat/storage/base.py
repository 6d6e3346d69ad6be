"""The storage interface: backends only move bytes under flat `/`-separated keys."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import BinaryIO, NamedTuple, Protocol, runtime_checkable

from lifeboat.errors import StorageError


class ObjectInfo(NamedTuple):
    key: str
    size: int
    modified: datetime | None = None


class Capabilities(NamedTuple):
    atomic_rename: bool = False
    versioning: bool = False
    object_lock: bool = False
    part_size: int = 8 * 1024 * 1024
    max_parallelism: int = 1


class NotFound(StorageError):
    """The key does not exist."""


class TransientError(StorageError):
    """A failure worth retrying (timeouts, throttling, 5xx)."""


class PermanentError(StorageError):
    """A failure retrying will not fix (permissions, missing bucket, full disk)."""


class AlreadyExists(StorageError):
    """create_exclusive found an object under the key already."""


class Storage(Protocol):
    url: str
    capabilities: Capabilities

    def write(self, key: str, chunks: Iterable[bytes]) -> ObjectInfo:
        """Store the chunks under key; readers only ever see a complete object.

        If iterating chunks raises, nothing is left under key and the error propagates."""
        ...

    def read(self, key: str, offset: int = 0, length: int | None = None) -> BinaryIO: ...

    def stat(self, key: str) -> ObjectInfo: ...

    def list(self, prefix: str) -> Iterator[ObjectInfo]: ...

    def delete(self, key: str) -> None:
        """Remove key; a missing key is fine."""
        ...


# --- optional features ---------------------------------------------------------------------
# Declared protocols, not duck typing: a backend has a feature when it implements the
# protocol, and callers reach it through wrappers with the functions below.


@runtime_checkable
class ExclusiveCreate(Protocol):
    def create_exclusive(self, key: str, data: bytes) -> ObjectInfo:
        """Store data under key only if no object is there yet, atomically: of several
        callers racing for one key exactly one succeeds, the others get AlreadyExists and
        the first content stays. Readers only ever see the complete object. A key that
        already holds exactly `data` counts as created: the first attempt of a retried
        request may have made it (callers that must tell apart put something unique in
        data)."""
        ...


class PendingUpload(NamedTuple):
    """An upload a writer began and never finished: not an object, but it takes space."""

    key: str  # the key it was writing
    started: datetime  # when it was last written to (or started, where that is all known)
    handle: str  # what the backend needs to remove it: a temporary name, an upload id
    size: int | None = None  # bytes it holds, where the backend says


@runtime_checkable
class UploadJanitor(Protocol):
    """For backends where a killed writer leaves a pending upload behind (a temporary file,
    an unfinished multipart upload, uncommitted blocks) that nothing else would remove."""

    def pending_uploads(self, prefix: str) -> Iterator[PendingUpload]:
        """The pending uploads of keys starting with prefix."""
        ...

    def remove_pending_upload(self, upload: PendingUpload) -> None:
        """Remove one, if it is still pending; one already gone is fine. A writer still
        using it fails instead of completing: callers leave young ones alone."""
        ...


def holding(storage: Storage, key: str, data: bytes) -> ObjectInfo | None:
    """For create_exclusive after the store refused: the object under key if it holds
    exactly data (made by an earlier attempt of the same request), else None."""
    try:
        with storage.read(key) as stream:
            if stream.read(len(data) + 1) != data:
                return None
        return storage.stat(key)
    except NotFound:
        return None


@runtime_checkable
class Wrapper(Protocol):
    """A storage that adds behaviour around another one (retries, dry run, metrics)."""

    def unwrap(self) -> Storage: ...


def _layers(storage: Storage) -> Iterator[object]:
    """The storage, then each storage it wraps, innermost last."""
    current: object = storage
    while True:
        yield current
        if not isinstance(current, Wrapper):
            return
        current = current.unwrap()


def exclusive_create(storage: Storage) -> ExclusiveCreate | None:
    """The storage's exclusive create, or that of a storage it wraps; None without one."""
    return next((s for s in _layers(storage) if isinstance(s, ExclusiveCreate)), None)


def upload_janitor(storage: Storage) -> UploadJanitor | None:
    """The storage's pending-upload cleanup, or that of a storage it wraps; None when its
    writes can leave nothing behind."""
    return next((s for s in _layers(storage) if isinstance(s, UploadJanitor)), None)


# A temporary name a backend writes under before the object appears: `<key>.tmp-<8 hex>`.
TEMP_MARKER = ".tmp-"
_TEMPORARY = re.compile(re.escape(TEMP_MARKER) + r"[0-9a-f]{8}$")


def temporary_target(key: str) -> str | None:
    """The key a temporary name is being written for, or None for any other key."""
    match = _TEMPORARY.search(key)
    return key[: match.start()] if match else None


def validate_key(key: str) -> str:
    if not key or key.startswith("/") or any(part in ("", ".", "..") for part in key.split("/")):
        raise ValueError(f"invalid storage key {key!r}")
    return key
