"""CRC32C, for the checksums that are not Lifeboat's own sha256."""

from __future__ import annotations

from typing import Literal


class Crc32c:
    """A running CRC32C (Castagnoli): the checksum of PostgreSQL's backup manifests and the
    one Cloud Storage reports."""

    def __init__(self) -> None:
        import google_crc32c

        self._extend = google_crc32c.extend
        self.value = 0

    def update(self, data: bytes | memoryview) -> None:
        self.value = self._extend(self.value, bytes(data))  # it takes no memoryview

    def digest(self, byteorder: Literal["big", "little"] = "big") -> bytes:
        return self.value.to_bytes(4, byteorder)
