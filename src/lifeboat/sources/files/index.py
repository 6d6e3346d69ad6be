"""The per-file index of a files backup: one JSON line per archive member, in the archive's
order, after a first line naming the format (docs/repository-format.md).

Written while the archive is (to a file in a private folder, then stored as an object of its
own) and read back beside it in the same order, so checking an archive against its index
holds one entry in memory at a time whatever the number of files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as _quoted
from pathlib import Path
from typing import Literal

from lifeboat.errors import IntegrityError

INDEX_FORMAT = "lifeboat-files-index"
INDEX_VERSION = 1
INDEX_OBJECT = "index.jsonl.zst"  # plus the encryption's suffix
ARCHIVE_OBJECT = "files.tar.zst"
ARCHIVE_FORMAT = "tar-pax"

EntryType = Literal["file", "hardlink", "dir", "symlink"]


@dataclass(frozen=True)
class IndexEntry:
    path: str  # the member's name in the archive
    type: EntryType
    size: int  # the content's bytes (files; a hard link: its first name's), else 0
    mode: int
    uid: int
    gid: int
    mtime_ns: int
    sha256: str | None = None  # of the content stored, for files and hard links
    link: str | None = None  # a symlink's target, a hard link's first name

    def line(self) -> str:
        return index_line(
            self.path,
            self.type,
            self.size,
            self.mode,
            self.uid,
            self.gid,
            self.mtime_ns,
            self.sha256,
            self.link,
        )

    @classmethod
    def parse(cls, line: str, where: str) -> IndexEntry:
        try:
            body = json.loads(line)
            return cls(
                path=str(body["path"]),
                type=body["type"],
                size=int(body["size"]),
                mode=int(body["mode"]),
                uid=int(body["uid"]),
                gid=int(body["gid"]),
                mtime_ns=int(body["mtime_ns"]),
                sha256=body.get("sha256"),
                link=body.get("link"),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(f"{where}: an unreadable index line ({exc})") from None


def index_line(
    path: str,
    type: EntryType,
    size: int,
    mode: int,
    uid: int,
    gid: int,
    mtime_ns: int,
    sha256: str | None = None,
    link: str | None = None,
) -> str:
    """An entry's line. This runs once per file of a backup: only the two strings go
    through JSON's own quoting (ASCII only, so a name that is not UTF-8, kept as
    surrogates, survives the round trip), the rest is formatted as it is."""
    tail = f',"sha256":"{sha256}"' if sha256 is not None else ""
    if link is not None:
        tail += f',"link":{_quoted(link)}'
    return (
        f'{{"path":{_quoted(path)},"type":"{type}","size":{size},"mode":{mode},'
        f'"uid":{uid},"gid":{gid},"mtime_ns":{mtime_ns}{tail}}}\n'
    )


def header_line() -> str:
    return json.dumps({"format": INDEX_FORMAT, "version": INDEX_VERSION}) + "\n"


def read_index(path: Path) -> Iterator[IndexEntry]:
    """The entries of an index file (its plain text, as read back from the repository)."""
    with path.open(encoding="utf-8", errors="surrogateescape", newline="\n") as lines:
        first = lines.readline()
        try:
            head = json.loads(first)
        except ValueError:
            head = None
        if not isinstance(head, dict) or head.get("format") != INDEX_FORMAT:
            raise IntegrityError(f"{path.name}: not a Lifeboat files index")
        if head.get("version") != INDEX_VERSION:
            raise IntegrityError(
                f"{path.name}: index version {head.get('version')} is newer than this Lifeboat"
            )
        for number, line in enumerate(lines, start=2):
            yield IndexEntry.parse(line, f"index line {number}")
