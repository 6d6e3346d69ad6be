"""A push parser for tar streams (ustar, GNU long names, pax extended headers), fed chunk
by chunk."""

from __future__ import annotations

import re
from dataclasses import dataclass

BLOCK = 512
REGULAR = (b"0", b"\0", b"7")
DIRECTORY = b"5"
SYMLINK = b"2"
HARDLINK = b"1"
# pax keys that override a member's header fields (POSIX.1-2001; what tarfile and GNU tar write)
_PAX_TEXT = ("path", "linkpath", "uname", "gname")
_PAX_NUMBER = ("size", "uid", "gid")


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
    uid: int = 0
    gid: int = 0
    mtime_ns: int = 0
    uname: str = ""
    gname: str = ""

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
        self._next: dict[str, str] = {}  # what a pax or long-name record says of the next member
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
        if kind not in (b"L", b"K", b"x", b"g") and "size" in self._next:
            size = int(self._next["size"])  # a pax size: over 8 GiB
        self._data_left = size
        self._pad_left = (BLOCK - size % BLOCK) % BLOCK
        self._special = None
        if kind in (b"L", b"K", b"x", b"g"):
            self._special = bytearray()
            self._special_kind = kind
        else:
            fields = self._next
            self._next = {}
            member = TarMember(
                name=fields.get("path", name),
                kind=kind,
                size=size,
                mode=_octal(header[100:108]) & 0o7777,
                linkname=fields.get("linkpath", _text(header[157:257])),
                uid=int(fields.get("uid", _octal(header[108:116]))),
                gid=int(fields.get("gid", _octal(header[116:124]))),
                mtime_ns=(
                    pax_time_ns(fields["mtime"])
                    if "mtime" in fields
                    else _octal(header[136:148]) * 1_000_000_000
                ),
                uname=fields.get("uname", _text(header[265:297])),
                gname=fields.get("gname", _text(header[297:329])),
            )
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
        elif self._special_kind == b"x":
            self._next.update(pax_records(text))
        # b"g": global pax records, which nothing here needs, are skipped


def pax_records(text: bytes) -> dict[str, str]:
    """The keys of a pax extended header that a member's fields take. Each record is
    "LENGTH KEY=VALUE\n" with LENGTH counting the whole record: a value may hold a newline
    (a file name may), so records are cut by their length, not at newlines."""
    found: dict[str, str] = {}
    position = 0
    while position < len(text):
        space = text.find(b" ", position)
        if space < 0 or not text[position:space].isdigit():
            break
        length = int(text[position:space])
        if length <= 0:
            break
        record = text[space + 1 : position + length - 1]  # without the final newline
        position += length
        key, _, value = record.partition(b"=")
        name = key.decode("ascii", "replace")
        if name in _PAX_TEXT:
            found[name] = value.decode("utf-8", "surrogateescape")
        elif (name in _PAX_NUMBER and value.isdigit()) or (
            name == "mtime" and _PAX_TIME.fullmatch(value)
        ):
            found[name] = value.decode("ascii")
    return found


_PAX_TIME = re.compile(rb"-?[0-9]+(\.[0-9]*)?")


def pax_time(ns: int) -> str:
    """A time in nanoseconds since the epoch as a pax record writes it, exactly."""
    sign = "-" if ns < 0 else ""
    seconds, fraction = divmod(abs(ns), 1_000_000_000)
    return f"{sign}{seconds}.{fraction:09d}"


def pax_time_ns(text: str) -> int:
    """A pax time ("1765000000.5", "-3.25") in nanoseconds, without a float's rounding."""
    negative = text.startswith("-")
    seconds, _, fraction = text.lstrip("-").partition(".")
    ns = int(seconds or "0") * 1_000_000_000 + int((fraction + "0" * 9)[:9])
    return -ns if negative else ns
