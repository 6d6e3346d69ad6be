"""A push parser for tar streams (ustar, GNU long names, pax paths), fed chunk by chunk."""

from __future__ import annotations

from dataclasses import dataclass

BLOCK = 512
REGULAR = (b"0", b"\0", b"7")
DIRECTORY = b"5"
SYMLINK = b"2"


def _octal(field: bytes) -> int:
    if field and field[0] & 0x80:  # base-256 for sizes over 8 GiB
        value = field[0] & 0x7F
        for byte in field[1:]:
            value = (value << 8) | byte
        return value
    text = field.rstrip(b"\0 ").strip() or b"0"
    return int(text, 8)


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class TarMember:
    name: str
    kind: bytes
    size: int
    mode: int
    linkname: str

    @property
    def is_file(self) -> bool:
        return self.kind in REGULAR


class TarParser:
    """Calls member() at each member's header, data() with its bytes and member_end() after
    them. Long-name and pax records are folded into the member they describe."""

    def __init__(self) -> None:
        self._header = bytearray()
        self._data_left = 0
        self._pad_left = 0
        self._special: bytearray | None = None  # GNU long name/link or pax header being read
        self._special_kind = b""
        self._next: dict[str, str] = {}
        self.ended = False

    def member(self, member: TarMember) -> None:
        """A member begins."""

    def data(self, piece: memoryview) -> None:
        """The next bytes of the current member."""

    def member_end(self) -> None:
        """The current member's data is complete."""

    def feed(self, view: memoryview) -> None:
        while view and not self.ended:
            if self._data_left:
                take = min(self._data_left, len(view))
                if self._special is not None:
                    self._special += view[:take]
                else:
                    self.data(view[:take])
                self._data_left -= take
                view = view[take:]
                if not self._data_left:
                    self._done()
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
                self._start(bytes(self._header))
                self._header.clear()

    def _start(self, header: bytes) -> None:
        if header == b"\0" * BLOCK:
            self.ended = True
            return
        name = _text(header[0:100])
        prefix = _text(header[345:500])
        if header[257:262] == b"ustar" and prefix:
            name = f"{prefix}/{name}"
        kind = header[156:157]
        size = _octal(header[124:136])
        self._data_left = size
        self._pad_left = (BLOCK - size % BLOCK) % BLOCK
        self._special = None
        if kind in (b"L", b"K", b"x"):
            self._special = bytearray()
            self._special_kind = kind
        else:
            member = TarMember(
                name=self._next.pop("path", name),
                kind=kind,
                size=size,
                mode=_octal(header[100:108]) & 0o7777,
                linkname=self._next.pop("linkpath", _text(header[157:257])),
            )
            self._next.clear()
            self.member(member)
        if not size:
            self._done()

    def _done(self) -> None:
        if self._special is None:
            self.member_end()
            return
        text = bytes(self._special)
        self._special = None
        if self._special_kind == b"L":
            self._next["path"] = _text(text)
        elif self._special_kind == b"K":
            self._next["linkpath"] = _text(text)
        else:
            for record in text.decode("utf-8", "surrogateescape").split("\n"):
                _, _, body = record.partition(" ")
                key, _, value = body.partition("=")
                if key in ("path", "linkpath"):
                    self._next[key] = value
