"""Watch a tar stream go by and keep a copy of a few small members (e.g. backup_manifest)."""

from __future__ import annotations

from lifeboat.pipeline.checksum import Readable
from lifeboat.pipeline.tar.parser import TarMember, TarParser

MAX_CAPTURE = 256 * 1024 * 1024


class TarSniffer(TarParser):
    """A readable passing source through unchanged while parsing it as tar."""

    def __init__(self, source: Readable, wanted: set[str]) -> None:
        super().__init__()
        self._source = source
        self._wanted = wanted
        self.members: dict[str, bytes] = {}
        self._name = ""
        self._capture: bytearray | None = None

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        if data and not self.ended:
            self.feed(memoryview(data))
        return data

    def member(self, member: TarMember) -> None:
        self._name = member.name
        wanted = member.name in self._wanted and member.size <= MAX_CAPTURE
        self._capture = bytearray() if wanted else None

    def data(self, piece: memoryview) -> None:
        if self._capture is not None:
            self._capture += piece

    def member_end(self) -> None:
        if self._capture is not None:
            self.members[self._name] = bytes(self._capture)
            self._capture = None
