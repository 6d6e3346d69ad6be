"""In-memory backend for unit tests and dry runs."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import BinaryIO

from lifeboat.storage.base import AlreadyExists, Capabilities, NotFound, ObjectInfo, validate_key
from lifeboat.storage.capabilities import ExclusiveCreate, holding


class MemoryStorage(ExclusiveCreate):
    capabilities = Capabilities(atomic_rename=True, max_parallelism=8)

    def __init__(self, name: str = "memory") -> None:
        self.url = f"mem://{name}"
        self.objects: dict[str, tuple[bytes, datetime]] = {}
        self._exclusive = threading.Lock()

    def write(self, key: str, chunks: Iterable[bytes]) -> ObjectInfo:
        validate_key(key)
        data = b"".join(chunks)  # a failing iterator raises here, before anything is stored
        now = datetime.now(UTC)
        self.objects[key] = (data, now)
        return ObjectInfo(key, len(data), now)

    def create_exclusive(self, key: str, data: bytes) -> ObjectInfo:
        validate_key(key)
        with self._exclusive:
            if key not in self.objects:
                return self.write(key, [data])
        mine = holding(self, key, data)
        if mine is None:
            raise AlreadyExists(f"{self.url}/{key} exists already")
        return mine

    def read(self, key: str, offset: int = 0, length: int | None = None) -> BinaryIO:
        validate_key(key)
        try:
            data = self.objects[key][0]
        except KeyError:
            raise NotFound(f"{self.url}/{key} does not exist") from None
        end = len(data) if length is None else offset + length
        return io.BytesIO(data[offset:end])

    def stat(self, key: str) -> ObjectInfo:
        validate_key(key)
        try:
            data, modified = self.objects[key]
        except KeyError:
            raise NotFound(f"{self.url}/{key} does not exist") from None
        return ObjectInfo(key, len(data), modified)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        snapshot = self.objects.copy()  # other threads may write and delete meanwhile
        for key in sorted(snapshot):
            if key.startswith(prefix):
                data, modified = snapshot[key]
                yield ObjectInfo(key, len(data), modified)

    def delete(self, key: str) -> None:
        self.objects.pop(validate_key(key), None)
