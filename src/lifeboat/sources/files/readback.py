"""Reading a files backup back: its index fetched into a private folder, then its archive
parsed as it streams in, each member checked against the index entry of the same rank
(type, name, size, link, and the sha256 of a file's content).

verify --deep uses this as is; a restore and a drill write the members out on top of it."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from lifeboat.errors import IntegrityError
from lifeboat.pipeline.crypto import Decryptor
from lifeboat.pipeline.tar.parser import DIRECTORY, HARDLINK, SYMLINK, TarMember, TarParser
from lifeboat.repo.catalog import Repository
from lifeboat.repo.manifest import FilesDetails, Manifest, StoredObject
from lifeboat.repo.objects import read_plain
from lifeboat.sources.files.index import IndexEntry, read_index
from lifeboat.sources.files.scratch import private_folder

MAX_PROBLEMS = 50  # listed one by one; the rest are counted


def index_object(manifest: Manifest) -> StoredObject:
    name = manifest.details_as(FilesDetails).index
    for obj in manifest.objects:
        if obj.name == name:
            return obj
    raise IntegrityError(f"backup {manifest.source}/{manifest.id}: its index {name} is not listed")


@contextlib.contextmanager
def fetched_index(repo: Repository, manifest: Manifest, decryptor: Decryptor) -> Iterator[Path]:
    """The backup's index, decrypted into a private folder (0700) removed afterwards."""
    with private_folder() as folder:
        path = folder / "index.jsonl"
        with path.open("wb") as sink:
            read_plain(repo, manifest, index_object(manifest), decryptor, sink)
        yield path


def member_type(member: TarMember) -> str:
    if member.is_file:
        return "file"
    return {DIRECTORY: "dir", SYMLINK: "symlink", HARDLINK: "hardlink"}.get(
        member.kind, f"type {member.kind.decode('ascii', 'replace')!r}"
    )


@dataclass
class Counts:
    files: int = 0
    directories: int = 0
    symlinks: int = 0
    total_bytes: int = 0

    def add(self, entry: IndexEntry) -> None:
        if entry.type in ("file", "hardlink"):
            self.files += 1
        elif entry.type == "dir":
            self.directories += 1
        elif entry.type == "symlink":
            self.symlinks += 1
        if entry.type == "file":
            self.total_bytes += entry.size


@dataclass
class Problems:
    lines: list[str] = field(default_factory=list)
    more: int = 0

    def add(self, line: str) -> None:
        if len(self.lines) < MAX_PROBLEMS:
            self.lines.append(line)
        else:
            self.more += 1

    def all(self) -> list[str]:
        return self.lines + ([f"... and {self.more} more problems"] if self.more else [])


class CheckedArchive(TarParser):
    """A writable sink: the archive, each member checked against the next index entry.
    Subclasses see each checked member (accept), its data (content) and its end (done)."""

    def __init__(self, index: Iterator[IndexEntry]) -> None:
        super().__init__()
        self._index = index
        self.problems = Problems()
        self.counts = Counts()  # of the members that matched their entry
        self._entry: IndexEntry | None = None
        self._member: TarMember | None = None
        self._digest: hashlib._Hash | None = None
        self._lost = False  # archive and index went out of step: entries mean nothing more

    def write(self, data: bytes) -> int:
        self.feed(memoryview(data))
        return len(data)

    # --- hooks -----------------------------------------------------------------------------

    def accept(self, member: TarMember, entry: IndexEntry | None) -> None:
        """A member begins; entry is its index entry when they agree (else None)."""

    def content(self, piece: memoryview) -> None:
        """The next bytes of the current member."""

    def done(self, member: TarMember, entry: IndexEntry | None, intact: bool) -> None:
        """The member ended; intact: its content's sha256 is the index's."""

    # --- the check -------------------------------------------------------------------------

    def member(self, member: TarMember) -> None:
        if member.kind == DIRECTORY and member.name.endswith("/"):
            member = replace(member, name=member.name.rstrip("/"))  # tar writes "dir/"
        entry = None if self._lost else next(self._index, None)
        self._member, self._entry = member, None
        if self._lost:
            pass
        elif entry is None:
            self.problems.add(f"{member.name}: in the archive, not in the index")
            self._lost = True
        elif entry.path != member.name:
            self.problems.add(
                f"{member.name}: the archive and the index disagree from here on "
                f"(the index names {entry.path})"
            )
            self._lost = True
        else:
            mismatch = _mismatch(member, entry)
            if mismatch:
                self.problems.add(f"{member.name}: {mismatch}")
            else:
                self._entry = entry
        self._digest = hashlib.sha256() if member.is_file else None
        self.accept(member, self._entry)

    def data(self, piece: memoryview) -> None:
        if self._digest is not None:
            self._digest.update(piece)
        self.content(piece)

    def member_end(self) -> None:
        member, entry = self._member, self._entry
        if member is None:
            return
        intact = True
        if entry is not None and entry.type == "file" and self._digest is not None:
            intact = self._digest.hexdigest() == entry.sha256
            if not intact:
                self.problems.add(f"{member.name}: content differs from the index (sha256)")
        if entry is not None and intact:
            self.counts.add(entry)
        self._member = self._entry = None
        self.done(member, entry if intact else None, intact)

    def finish(self) -> None:
        """The archive ended: the index must have ended with it."""
        if not self.ended:
            self.problems.add("the archive ends before its end marker: it is truncated")
        left = sum(1 for _ in self._index)  # consumed even when lost: a subclass counts them
        if left and not self._lost:
            self.problems.add(f"{left} index entries have no member in the archive")

    def compare(self, details: FilesDetails) -> None:
        """The counts of intact members against the manifest's evidence."""
        expected = (details.files, details.directories, details.symlinks, details.total_bytes)
        found = self.counts
        got = (found.files, found.directories, found.symlinks, found.total_bytes)
        for what, want, have in zip(
            ("files", "directories", "symlinks", "bytes"), expected, got, strict=True
        ):
            if want != have:
                self.problems.add(f"the manifest says {want} {what}, {have} were read back intact")


def _mismatch(member: TarMember, entry: IndexEntry) -> str:
    kind = member_type(member)
    if kind != entry.type:
        return f"a {kind} in the archive, a {entry.type} in the index"
    if entry.type == "file" and member.size != entry.size:
        return f"{member.size} bytes in the archive, {entry.size} in the index"
    if entry.type in ("symlink", "hardlink") and member.linkname != entry.link:
        return f"links to {member.linkname!r} in the archive, {entry.link!r} in the index"
    return ""


def check_backup(repo: Repository, manifest: Manifest, decryptor: Decryptor) -> list[str]:
    """verify --deep: the whole archive read back and checked against index and manifest."""
    details = manifest.details_as(FilesDetails)
    with fetched_index(repo, manifest, decryptor) as index_path:
        checker = CheckedArchive(read_index(index_path))
        read_plain(repo, manifest, manifest.objects[0], decryptor, checker)
        checker.finish()
    checker.compare(details)
    return checker.problems.all()
