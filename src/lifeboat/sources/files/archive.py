"""The tar (PAX) stream of a files backup, produced as the pipeline reads it, with its index.

Each file is read once: what goes into the archive is hashed on the way, and its index line
written as its member is. A file is opened before its header is written (the header needs
its size), and checked again after it was read: one that changed meanwhile is kept as read
(padded with zeros when it shrank, so the archive stays well formed) and reported, one that
vanished or cannot be read is left out and reported. None of it is fatal: the backup checks
that the configured paths exist before it starts."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import IO, Any

from lifeboat.pipeline.tar.header import member_header
from lifeboat.pipeline.tar.parser import BLOCK
from lifeboat.sources.files.index import EntryType, header_line, index_line
from lifeboat.sources.files.owners import group_name, user_name
from lifeboat.sources.files.select import Entry

CHUNK = 1 << 20
RECORD = 20 * BLOCK  # tar's record: the archive's length is a multiple of it, as tar(1) writes
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
_SPECIAL = {
    stat.S_IFSOCK: "a socket",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


@dataclass
class Tally:
    """What the archive holds, and what it could not hold as it was."""

    files: int = 0  # regular files, hard links included
    directories: int = 0
    symlinks: int = 0
    total_bytes: int = 0
    changed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # name -> why it is not in

    # why each file changed, for the log (the manifest names them only)
    changes: dict[str, str] = field(default_factory=dict)

    def change(self, name: str, why: str) -> None:
        self.changed.append(name)
        self.changes[name] = why

    def skip(self, name: str, why: str) -> None:
        self.skipped[name] = why

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Tally:
        return cls(**body)


class ArchiveStream:
    """A readable: the tar archive of entries, written on demand. The index goes to
    index_out as members are produced; tally counts them."""

    def __init__(self, entries: Iterator[Entry], index_out: IO[str]) -> None:
        self.tally = Tally()
        self._index = index_out
        self._pieces = self._produce(entries)
        self._buffer = bytearray()
        self._done = False
        # (device, inode) -> (first name, sha256, size) of files with several names
        self._links: dict[tuple[int, int], tuple[str, str, int]] = {}

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        want = CHUNK if size is None or size < 0 else size
        while len(self._buffer) < want and not self._done:
            piece = next(self._pieces, None)
            if piece is None:
                self._done = True
            else:
                self._buffer += piece
        data = bytes(self._buffer[:want])
        del self._buffer[:want]
        return data

    def pieces(self) -> Iterator[bytes]:
        """The archive as the pieces it is made of (what read() gathers): a writer that
        can take them as they are saves copying every byte into a buffer and out again."""
        return self._pieces

    # --- members ---------------------------------------------------------------------------

    def _produce(self, entries: Iterator[Entry]) -> Iterator[bytes]:
        self._index.write(header_line())
        written = 0
        for entry in entries:
            member = self._member(entry)
            if member is None:
                continue
            if isinstance(member, bytes):
                written += len(member)
                yield member
            else:
                for piece in member:
                    written += len(piece)
                    yield piece
        end = 2 * BLOCK
        end += (RECORD - (written + end) % RECORD) % RECORD
        yield b"\0" * end

    def _member(self, entry: Entry) -> bytes | Iterator[bytes] | None:
        """Its bytes, or for a large file an iterator of them; None when it is left out.
        (Plain returns, not a generator each: this runs for every entry of a backup.)"""
        info = entry.info
        if info is None:
            return self._file(entry)
        kind = stat.S_IFMT(info.st_mode)
        if kind == stat.S_IFREG:
            return self._file(entry)
        if kind == stat.S_IFDIR:
            self.tally.directories += 1
            return self._header(entry.name, tarfile.DIRTYPE, info, "dir")
        if kind == stat.S_IFLNK:
            try:
                target = os.readlink(entry.path)
            except OSError as exc:
                self._vanished_or_unreadable(entry.name, exc)
                return None
            self.tally.symlinks += 1
            return self._header(entry.name, tarfile.SYMTYPE, info, "symlink", link=target)
        self.tally.skip(entry.name, f"{_SPECIAL.get(kind, 'not a file')}, not backed up")
        return None

    def _file(self, entry: Entry) -> bytes | Iterator[bytes] | None:
        try:
            fd = os.open(entry.path, _OPEN_FLAGS)
        except OSError as exc:
            self._vanished_or_unreadable(entry.name, exc)
            return None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                self.tally.change(entry.name, "was replaced by something else than a file")
                return None
            key = (info.st_dev, info.st_ino)
            if info.st_nlink > 1 and key in self._links:
                first, sha256, size = self._links[key]
                self.tally.files += 1
                return self._header(
                    entry.name,
                    tarfile.LNKTYPE,
                    info,
                    "hardlink",
                    link=first,
                    sha256=sha256,
                    size=size,
                )
            size = info.st_size
            header = self._header_bytes(entry.name, tarfile.REGTYPE, info, size=size)
            if size > CHUNK:
                large, fd = self._large(fd, entry.name, info, header), -1  # it closes fd
                return large
            # a small file: header, data and padding in one piece
            data = _read_up_to(fd, size)
            if len(data) < size:
                self.tally.change(entry.name, f"shrank from {size} to {len(data)} bytes")
                data += b"\0" * (size - len(data))
            self._file_read(entry.name, fd, info, hashlib.sha256(data).hexdigest())
            return header + data + b"\0" * (-size % BLOCK)
        finally:
            if fd >= 0:
                os.close(fd)

    def _large(self, fd: int, name: str, info: os.stat_result, header: bytes) -> Iterator[bytes]:
        try:
            yield header
            size = left = info.st_size
            digest = hashlib.sha256()
            while left:
                data = os.read(fd, min(CHUNK, left))
                if not data:
                    self.tally.change(name, f"shrank from {size} to {size - left} bytes")
                    while left:
                        zeros = b"\0" * min(CHUNK, left)
                        digest.update(zeros)
                        left -= len(zeros)
                        yield zeros
                    break
                digest.update(data)
                left -= len(data)
                yield data
            yield b"\0" * (-size % BLOCK)
            self._file_read(name, fd, info, digest.hexdigest())
        finally:
            os.close(fd)

    def _file_read(self, name: str, fd: int, info: os.stat_result, sha256: str) -> None:
        """A file's content is in the archive: count it, index it, and report it when it
        changed while it was read."""
        after = os.fstat(fd)
        moved = after.st_size != info.st_size or after.st_mtime_ns != info.st_mtime_ns
        if moved and name not in self.tally.changes:
            self.tally.change(name, "changed")
        self.tally.files += 1
        self.tally.total_bytes += info.st_size
        self._write_index(name, "file", info, size=info.st_size, sha256=sha256)
        if info.st_nlink > 1:
            self._links[(info.st_dev, info.st_ino)] = (name, sha256, info.st_size)

    def _vanished_or_unreadable(self, name: str, exc: OSError) -> None:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            # ELOOP: O_NOFOLLOW met a symlink where the file was
            self.tally.change(name, "vanished" if exc.errno == errno.ENOENT else "was replaced")
        else:
            self.tally.skip(name, f"cannot be read: {exc.strerror}")

    # --- headers -----------------------------------------------------------------------------

    def _header(
        self,
        name: str,
        kind: bytes,
        info: os.stat_result,
        entry_type: EntryType,
        *,
        link: str = "",
        sha256: str | None = None,
        size: int = 0,
    ) -> bytes:
        self._write_index(name, entry_type, info, size=size, sha256=sha256, link=link or None)
        return self._header_bytes(name, kind, info, link=link)

    def _write_index(
        self,
        name: str,
        entry_type: EntryType,
        info: os.stat_result,
        *,
        size: int = 0,
        sha256: str | None = None,
        link: str | None = None,
    ) -> None:
        self._index.write(
            index_line(
                name,
                entry_type,
                size,
                stat.S_IMODE(info.st_mode),
                info.st_uid,
                info.st_gid,
                info.st_mtime_ns,
                sha256,
                link,
            )
        )

    def _header_bytes(
        self, name: str, kind: bytes, info: os.stat_result, *, size: int = 0, link: str = ""
    ) -> bytes:
        return member_header(
            name,
            kind,
            stat.S_IMODE(info.st_mode),
            info.st_uid,
            info.st_gid,
            size,
            info.st_mtime_ns,  # exact, in a pax record: ustar holds whole seconds
            link,
            user_name(info.st_uid),
            group_name(info.st_gid),
        )


def _read_up_to(fd: int, size: int) -> bytes:
    data = os.read(fd, size) if size else b""
    while len(data) < size:
        more = os.read(fd, size - len(data))
        if not more:
            break
        data += more
    return data
