"""The storage interface: backends only move bytes under flat `/`-separated keys.

What a backend may do beyond these five operations is declared in storage/capabilities.py."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import BinaryIO, NamedTuple, Protocol

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
