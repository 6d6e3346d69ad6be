"""Storages that stand in front of another one, for tests of what a wrapper exposes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import BinaryIO

from lifeboat.storage.base import Capabilities, ObjectInfo, Storage


class FiveOperations:
    """The five operations of the storage it stands for, and nothing else: none of the
    extras, not even the way to them (unwrap)."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.url = inner.url
        self.capabilities: Capabilities = inner.capabilities

    def write(self, key: str, chunks: Iterable[bytes]) -> ObjectInfo:
        return self.inner.write(key, chunks)

    def read(self, key: str, offset: int = 0, length: int | None = None) -> BinaryIO:
        return self.inner.read(key, offset, length)

    def stat(self, key: str) -> ObjectInfo:
        return self.inner.stat(key)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        return self.inner.list(prefix)

    def delete(self, key: str) -> None:
        self.inner.delete(key)


class Wrapping(FiveOperations):
    """A wrapper as retries, dry run or metrics would be: it forwards the five operations
    and declares what it wraps, so that the extras are reached through it."""

    def unwrap(self) -> Storage:
        return self.inner
