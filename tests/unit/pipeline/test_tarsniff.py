"""The tar sniffer against archives made by Python's tarfile (ustar, GNU and pax names)."""

from __future__ import annotations

import io
import tarfile

import pytest

from lifeboat.pipeline.tar.sniff import TarSniffer


def _archive(fmt: int, members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
@pytest.mark.parametrize("chunk", [1, 511, 512, 4096, 1 << 20])
def test_captures_wanted_members_whatever_the_chunking(fmt: int, chunk: int) -> None:
    long_dir = "d" * 120 if fmt != tarfile.USTAR_FORMAT else "d" * 60
    members = {
        "base/1/1234": b"x" * 10_000,
        f"{long_dir}/backup_label": b"START WAL LOCATION: 0/2000028\n",
        "empty": b"",
        "backup_manifest": b'{"WAL-Ranges": []}' * 100,
    }
    data = _archive(fmt, members)
    sniffer = TarSniffer(io.BytesIO(data), {"backup_manifest", f"{long_dir}/backup_label", "empty"})
    out = bytearray()
    while piece := sniffer.read(chunk):
        out += piece
    assert bytes(out) == data  # passes everything through untouched
    assert sniffer.members == {
        "backup_manifest": members["backup_manifest"],
        f"{long_dir}/backup_label": members[f"{long_dir}/backup_label"],
        "empty": b"",
    }
