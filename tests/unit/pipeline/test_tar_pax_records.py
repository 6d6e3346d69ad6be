"""The tar parser reads pax records by their length and keeps what a restore needs."""

from __future__ import annotations

import io
import tarfile

from lifeboat.pipeline.tar.parser import TarMember, TarParser, pax_time, pax_time_ns


class Members(TarParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[TarMember] = []
        self.contents: list[bytes] = []

    def member(self, member: TarMember) -> None:
        self.found.append(member)
        self.contents.append(b"")

    def data(self, piece: memoryview) -> None:
        self.contents[-1] += bytes(piece)


def parsed(archive: bytes, step: int = 7) -> Members:
    parser = Members()
    for start in range(0, len(archive), step):  # fed in odd pieces, as a stream comes
        parser.feed(memoryview(archive[start : start + step]))
    assert parser.ended
    return parser


def test_a_name_with_a_newline_and_exact_times_come_through_pax_records() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w|", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo("dir/na me\nwith 'quote\"=é" + "x" * 150)
        info.size = 3
        info.uid, info.gid, info.uname, info.gname = 1234, 5678, "ünïcode", "grp"
        info.mtime = 1
        info.pax_headers = {"mtime": pax_time(1_765_000_000_123_456_789)}
        archive.addfile(info, io.BytesIO(b"abc"))
        link = tarfile.TarInfo("hard")
        link.type, link.linkname = tarfile.LNKTYPE, "l" * 120
        archive.addfile(link)
    (first, second) = parsed(buffer.getvalue()).found
    assert first.name == "dir/na me\nwith 'quote\"=é" + "x" * 150
    assert (first.size, first.uid, first.gid) == (3, 1234, 5678)
    assert (first.uname, first.gname) == ("ünïcode", "grp")
    assert first.mtime_ns == 1_765_000_000_123_456_789
    assert (second.kind, second.linkname) == (b"1", "l" * 120)


def test_a_pax_size_overrides_the_header_field() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w|", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo("f")
        info.size = 5
        info.pax_headers = {"size": "5"}  # as tarfile writes sizes over 8 GiB, with 0 beside
        archive.addfile(info, io.BytesIO(b"12345"))
    parser = parsed(buffer.getvalue())
    assert parser.contents == [b"12345"]


def test_pax_times_keep_nanoseconds_both_ways() -> None:
    for ns in (0, 1, -1, -1_500_000_000, 1_765_000_000_000_000_001):
        assert pax_time_ns(pax_time(ns)) == ns
    assert pax_time_ns("12.5") == 12_500_000_000
    assert pax_time_ns("-3") == -3_000_000_000


def test_headers_are_the_bytes_tarfile_writes() -> None:
    from lifeboat.pipeline.tar.header import Header, _by_tarfile, header_bytes

    for header in [
        Header("a/b", tarfile.REGTYPE, 0o644, 0, 0, 5, 1_765_000_000_123_456_789, "", "root"),
        Header("ü" * 80, tarfile.SYMTYPE, 0o777, 1234, 5678, 0, 5, "x" * 150, "user", "grp"),
        Header("d", tarfile.DIRTYPE, 0o1755, 8**7 + 3, 0, 0, -5, "", "n" * 40, "g"),
        Header("big", tarfile.REGTYPE, 0o644, 0, 0, 8**11 + 1, 0),
        Header("ĳ" + "x" * 200, tarfile.LNKTYPE, 0o644, 1, 2, 0, 10**18, "y" * 99, "ü", "g"),
        Header("not utf-8 \udcff", tarfile.REGTYPE, 0o600, 0, 0, 1, 0),
        Header("before 1970", tarfile.REGTYPE, 0o644, 0, 0, 3, -1_500_000_000, "", "u", "g"),
        Header("far future", tarfile.REGTYPE, 0o644, 0, 0, 3, 8**11 * 10**9 + 7),
        Header("x" * 100, tarfile.SYMTYPE, 0o777, 0, 0, 0, 1, "y" * 100, "u" * 32, "g" * 32),
        Header("spaces and 'quotes'", tarfile.DIRTYPE, 0o700, 8**7 - 1, 0, 0, 10**9),
    ]:
        assert header_bytes(header) == _by_tarfile(header), header
        if header.size > 512:
            continue
        data = b"z" * header.size + b"\0" * (512 - header.size if header.size else 0)
        (member,) = parsed(header_bytes(header) + data + b"\0" * 1024).found
        suffix = "/" if header.kind == tarfile.DIRTYPE else ""
        assert (member.name, member.mtime_ns) == (header.name + suffix, header.mtime_ns)
