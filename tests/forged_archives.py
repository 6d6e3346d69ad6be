"""Files-backup archives built by a test, with an index that agrees with them: what someone
who can write into a repository (and has the public key) could plant there. Restores must
refuse their hostile members whatever the index says."""

from __future__ import annotations

import hashlib
import io
import tarfile

from lifeboat.sources.files.index import EntryType, IndexEntry, header_line

Member = tuple[tarfile.TarInfo, bytes]

ENTRY_TYPES: dict[bytes, EntryType] = {
    tarfile.REGTYPE: "file",
    tarfile.DIRTYPE: "dir",
    tarfile.SYMTYPE: "symlink",
    tarfile.LNKTYPE: "hardlink",
}


def file(name: str, content: bytes = b"planted") -> Member:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(content), 0o644
    return info, content


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> Member:
    """A symlink, a hard link (kind LNKTYPE) or, with target "", a special member."""
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, b""


def folder(name: str) -> Member:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    return info, b""


def forged(members: list[Member]) -> tuple[bytes, str]:
    """The archive of members, and the text of an index that agrees with it."""
    archive, index = io.BytesIO(), io.StringIO()
    index.write(header_line())
    with tarfile.open(fileobj=archive, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for info, content in members:
            tar.addfile(info, io.BytesIO(content) if info.isfile() else None)
            entry = IndexEntry(
                path=info.name.rstrip("/"),
                # a device's entry: a type no backup writes, the check reports the mismatch
                type=ENTRY_TYPES.get(info.type, "file"),
                size=info.size,
                mode=info.mode,
                uid=0,
                gid=0,
                mtime_ns=0,
                sha256=hashlib.sha256(content).hexdigest() if info.isfile() else None,
                link=info.linkname or None,
            )
            index.write(entry.line())
    return archive.getvalue(), index.getvalue()
