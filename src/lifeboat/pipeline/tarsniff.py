"""Watch a tar stream go by and keep a copy of a few small members (e.g. backup_manifest)."""

from __future__ import annotations

from lifeboat.pipeline.checksum import Readable

BLOCK = 512
MAX_CAPTURE = 256 * 1024 * 1024


def _octal(field: bytes) -> int:
    if field and field[0] & 0x80:  # base-256 for sizes over 8 GiB
        value = field[0] & 0x7F
        for byte in field[1:]:
            value = (value << 8) | byte
        return value
    text = field.rstrip(b"\0 ").strip() or b"0"
    return int(text, 8)


class TarSniffer:
    """A readable passing source through unchanged while parsing it as tar."""

    def __init__(self, source: Readable, wanted: set[str]) -> None:
        self._source = source
        self._wanted = wanted
        self.members: dict[str, bytes] = {}
        self._header = bytearray()
        self._data_left = 0
        self._pad_left = 0
        self._capture: bytearray | None = None
        self._name = ""
        self._next_name: str | None = None
        self._special: bytearray | None = None  # GNU long name or pax header being read
        self._special_kind = b""
        self._ended = False

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        if data and not self._ended:
            self._feed(memoryview(data))
        return data

    def _feed(self, view: memoryview) -> None:
        while view and not self._ended:
            if self._data_left:
                take = min(self._data_left, len(view))
                piece = view[:take]
                if self._special is not None:
                    self._special += piece
                elif self._capture is not None:
                    self._capture += piece
                self._data_left -= take
                view = view[take:]
                if not self._data_left:
                    self._member_done()
                continue
            if self._pad_left:
                take = min(self._pad_left, len(view))
                self._pad_left -= take
                view = view[take:]
                continue
            take = min(BLOCK - len(self._header), len(view))
            self._header += view[:take]
            view = view[take:]
            if len(self._header) == BLOCK:
                self._start_member(bytes(self._header))
                self._header.clear()

    def _start_member(self, header: bytes) -> None:
        if header == b"\0" * BLOCK:
            self._ended = True
            return
        name = header[0:100].split(b"\0", 1)[0].decode("utf-8", "replace")
        prefix = header[345:500].split(b"\0", 1)[0].decode("utf-8", "replace")
        if header[257:262] == b"ustar" and prefix:
            name = f"{prefix}/{name}"
        kind = header[156:157]
        size = _octal(header[124:136])
        self._data_left = size
        self._pad_left = (BLOCK - size % BLOCK) % BLOCK
        self._special = None
        self._capture = None
        if kind in (b"L", b"x"):
            self._special = bytearray()
            self._special_kind = kind
        else:
            self._name = self._next_name or name
            self._next_name = None
            if self._name in self._wanted and size <= MAX_CAPTURE:
                self._capture = bytearray()
        if not size:
            self._member_done()

    def _member_done(self) -> None:
        if self._special is not None:
            text = bytes(self._special)
            if self._special_kind == b"L":
                self._next_name = text.split(b"\0", 1)[0].decode("utf-8", "replace")
            else:
                for record in text.decode("utf-8", "replace").split("\n"):
                    _, _, body = record.partition(" ")
                    key, _, value = body.partition("=")
                    if key == "path":
                        self._next_name = value
            self._special = None
        elif self._capture is not None:
            self.members[self._name] = bytes(self._capture)
            self._capture = None
