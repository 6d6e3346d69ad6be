"""Tar member headers in the POSIX.1-2001 (pax) format, written fast.

tarfile.TarInfo.tobuf costs some 60 µs a member, most of a small file's cost in a backup
of millions; this writes the same bytes (a ustar header, preceded by a pax extended header
when a field does not fit it) in a fraction of that. Names that are not valid UTF-8 (kept as
surrogates) are left to tarfile, which marks them with hdrcharset=BINARY."""

from __future__ import annotations

import struct
import tarfile
from dataclasses import dataclass

from lifeboat.pipeline.tar.parser import BLOCK, pax_time

_PAX_NAME = b"././@PaxHeader"
_MAX_OCTAL_7 = 8**7  # uid, gid: 7 octal digits
_MAX_OCTAL_11 = 8**11  # size, mtime: 11 octal digits
_BILLION = 1_000_000_000

# name, the five numbers (mode, uid, gid, size, mtime), checksum, type, linkname, magic and
# version, uname, gname; struct pads each field, and the rest of the block, with NULs
_USTAR = struct.Struct("100s48s8s1s100s8s32s32s183s")
_NUMBERS = b"%07o\0%07o\0%07o\0%011o\0%011o\0"
_CHECKSUM_SPACES = b"        "  # the checksum field counts as spaces while it is summed
_MAGIC = b"ustar\x0000"
_DIR = tarfile.DIRTYPE

# the pax member's own ustar block depends only on the length of its records
_pax_blocks: dict[int, bytes] = {}
# "LENGTH mtime=" for a time of each length: the record's length counts its own digits
_mtime_prefixes: dict[int, bytes] = {}


@dataclass(frozen=True)
class Header:
    name: str
    kind: bytes  # tarfile.REGTYPE, DIRTYPE, SYMTYPE, LNKTYPE
    mode: int
    uid: int
    gid: int
    size: int
    mtime_ns: int
    linkname: str = ""
    uname: str = ""
    gname: str = ""


def header_bytes(header: Header) -> bytes:
    """The header blocks of one member (its data and padding follow them)."""
    return member_header(
        header.name,
        header.kind,
        header.mode,
        header.uid,
        header.gid,
        header.size,
        header.mtime_ns,
        header.linkname,
        header.uname,
        header.gname,
    )


def member_header(
    name: str,
    kind: bytes,
    mode: int,
    uid: int,
    gid: int,
    size: int,
    mtime_ns: int,
    linkname: str = "",
    uname: str = "",
    gname: str = "",
) -> bytes:
    """header_bytes without a Header: this runs once for every member of a backup."""
    try:
        # a folder's name ends with "/", as tar and tarfile write it
        encoded = (name + "/" if kind == _DIR else name).encode()
        link = linkname.encode()
        user = uname.encode()
        group = gname.encode()
    except UnicodeEncodeError:
        header = Header(name, kind, mode, uid, gid, size, mtime_ns, linkname, uname, gname)
        return _by_tarfile(header)
    if mtime_ns >= 0:
        seconds, fraction = divmod(mtime_ns, _BILLION)
        stamp = b"%d.%09d" % (seconds, fraction)
    else:
        seconds, stamp = 0, pax_time(mtime_ns).encode("ascii")
    prefix = _mtime_prefixes.get(len(stamp))
    if prefix is None:
        prefix = _mtime_prefixes[len(stamp)] = _record(b"mtime", stamp)[: -len(stamp) - 1]
    body = prefix + stamp + b"\n"
    usual = (
        len(encoded) <= 100
        and len(link) <= 100
        and len(user) <= 32
        and len(group) <= 32
        and uid < _MAX_OCTAL_7
        and gid < _MAX_OCTAL_7
        and size < _MAX_OCTAL_11
        and seconds < _MAX_OCTAL_11
        and uid >= 0
        and gid >= 0
        and (encoded + link + user + group).isascii()
    )
    if not usual:
        body += _unusual_records(encoded, link, user, group, uid, gid, size)
    length = len(body)
    pax = _pax_blocks.get(length)
    if pax is None:
        pax = _ustar(_PAX_NAME, tarfile.XHDTYPE, 0, 0, 0, length, 0, b"", b"", b"")
        _pax_blocks[length] = pax
    if not usual:
        encoded, link, user, group = (
            _ascii(encoded, 100),
            _ascii(link, 100),
            _ascii(user, 32),
            _ascii(group, 32),
        )
        uid = uid if 0 <= uid < _MAX_OCTAL_7 else 0
        gid = gid if 0 <= gid < _MAX_OCTAL_7 else 0
        size = size if size < _MAX_OCTAL_11 else 0
        seconds = seconds if seconds < _MAX_OCTAL_11 else 0  # the pax record has it
    main = _ustar(encoded, kind, mode, uid, gid, size, seconds, link, user, group)
    return pax + body + b"\0" * (-length % BLOCK) + main


def _unusual_records(
    name: bytes, link: bytes, user: bytes, group: bytes, uid: int, gid: int, size: int
) -> bytes:
    """The records beyond mtime, for the fields a ustar header cannot hold."""
    records = []
    if len(name) > 100 or not name.isascii():
        records.append((b"path", name))
    if len(link) > 100 or not link.isascii():
        records.append((b"linkpath", link))
    if len(user) > 32 or not user.isascii():
        records.append((b"uname", user))
    if len(group) > 32 or not group.isascii():
        records.append((b"gname", group))
    for key, value in ((b"uid", uid), (b"gid", gid)):
        if not 0 <= value < _MAX_OCTAL_7:
            records.append((key, str(value).encode("ascii")))
    if size >= _MAX_OCTAL_11:
        records.append((b"size", str(size).encode("ascii")))
    return b"".join(_record(key, value) for key, value in records)


def _record(key: bytes, value: bytes) -> bytes:
    """ "LENGTH key=value\\n", LENGTH counting itself."""
    length = len(key) + len(value) + 3  # the space, "=" and newline
    digits = len(str(length))
    while len(str(length + digits)) != digits:
        digits += 1
    return b"%d %s=%s\n" % (length + digits, key, value)


def _ascii(field: bytes, width: int) -> bytes:
    """What the ustar field holds when a pax record has the real value."""
    if len(field) <= width and field.isascii():
        return field
    return field.decode("utf-8").encode("ascii", "replace")[:width]


def _ustar(
    name: bytes,
    kind: bytes,
    mode: int,
    uid: int,
    gid: int,
    size: int,
    mtime: int,
    linkname: bytes,
    uname: bytes,
    gname: bytes,
) -> bytes:
    numbers = _NUMBERS % (mode, uid, gid, size, mtime)
    block = _USTAR.pack(name, numbers, _CHECKSUM_SPACES, kind, linkname, _MAGIC, uname, gname, b"")
    return block[:148] + b"%06o\0 " % sum(block) + block[156:]


def _by_tarfile(header: Header) -> bytes:
    member = tarfile.TarInfo(header.name)
    member.type = header.kind
    member.size = header.size
    member.mode = header.mode
    member.uid, member.gid = header.uid, header.gid
    member.uname, member.gname = header.uname, header.gname
    member.mtime = max(header.mtime_ns // 1_000_000_000, 0)
    member.linkname = header.linkname
    member.pax_headers = {"mtime": pax_time(header.mtime_ns)}
    return member.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
