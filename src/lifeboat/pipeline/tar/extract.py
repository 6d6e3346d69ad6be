"""Extract a tar stream into a folder as it arrives, writing on several threads.

Writing the files is most of a physical restore's work, and tar(1) does it on one core after
one more copy through a pipe. Here each file is written with pwrite from a small thread pool
(the GIL is released while the kernel copies), straight from the decompressed buffers.

With delta, the folder may already hold an earlier copy of the cluster: each chunk is first
compared with what the file holds at that offset and written only when it differs, so an
unchanged file costs a read and no write; entries the archive does not name are removed."""

from __future__ import annotations

import os
import shutil
import stat
import threading
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

from lifeboat.errors import LifeboatError
from lifeboat.pipeline.tar.parser import DIRECTORY, SYMLINK, TarMember, TarParser

MAX_CHUNKS_IN_FLIGHT = 64  # of the decompressor's output chunks (1 MiB each)
MAX_FILES_TO_SYNC = 256  # open files waiting for their fsync


class ExtractError(LifeboatError):
    """The archive could not be written out."""


class _OpenFile:
    """A file being written: complete once its last write and its end are done."""

    def __init__(self, fd: int, path: str) -> None:
        self.fd = fd
        self.path = path
        self.pending = 1  # the member itself, released at member_end
        self.lock = threading.Lock()

    def release(self) -> bool:
        """True for the caller that completed the file."""
        with self.lock:
            self.pending -= 1
            return self.pending == 0


class TarExtractor(TarParser):
    """A writable sink: everything written to it is a tar stream extracted under root."""

    def __init__(
        self,
        root: Path,
        *,
        delta: bool = False,
        owner: tuple[int, int] | None = None,
        workers: int = 2,
        keep: Collection[str] = (),
    ) -> None:
        super().__init__()
        self.root = root
        self.delta = delta
        self.keep = frozenset(keep)  # top-level entries delta leaves alone
        self.owner = owner
        self.files = 0
        self.bytes_written = 0
        self.bytes_unchanged = 0
        self._seen: set[str] = set()
        self._current: _OpenFile | None = None
        self._offset = 0
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="untar")
        # Completed files are synced on a thread of their own, while the writers go on: the
        # data reaches the disk during the extraction instead of all at once when
        # PostgreSQL syncs the data directory at start.
        self._syncer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="untar-sync")
        self._files_to_sync = threading.BoundedSemaphore(MAX_FILES_TO_SYNC)
        self._room = threading.BoundedSemaphore(MAX_CHUNKS_IN_FLIGHT)
        self._counters = threading.Lock()
        self._error: BaseException | None = None

    # --- the sink ------------------------------------------------------------------------------

    def write(self, data: bytes) -> int:
        if self._error is not None:
            raise self._failure()
        # the writes run after this returns: they need bytes nobody will reuse
        self.feed(memoryview(data if isinstance(data, bytes) else bytes(data)))
        return len(data)

    def finish(self) -> None:
        """Wait for every write; check the archive was complete; remove what it did not name."""
        self._pool.shutdown(wait=True)
        self._syncer.shutdown(wait=True)
        if self._error is not None:
            raise self._failure()
        if not self.ended:
            raise ExtractError("the archive ended before its end marker: it is truncated")
        if self.delta:
            self._remove_unlisted()

    def abort(self) -> None:
        """Stop writing and close every file (what was written stays: the caller decides)."""
        self._error = self._error or ExtractError("aborted")  # queued writes skip their work
        self._pool.shutdown(wait=True)  # every queued job still closes its file
        current, self._current = self._current, None
        if current is not None and current.release():
            os.close(current.fd)  # not worth syncing: the extraction failed
        self._syncer.shutdown(wait=True)

    def _failure(self) -> ExtractError:
        error = self._error
        if isinstance(error, OSError):
            where = f" {error.filename}" if error.filename else ""
            return ExtractError(f"cannot write{where}: {error.strerror}")
        return ExtractError(f"extracting failed: {error}")

    # --- parser callbacks ------------------------------------------------------------------

    def member(self, member: TarMember) -> None:
        relative = self._safe(member.name)
        path = self.root / relative
        self._seen.add(str(relative))
        for parent in relative.parents:
            self._seen.add(str(parent))
        try:
            if member.kind == DIRECTORY:
                self._make_dir(path, member.mode)
            elif member.kind == SYMLINK:
                self._make_symlink(path, member.linkname)
            elif member.is_file:
                self._open(path, member)
            else:
                raise ExtractError(f"{member.name}: unsupported tar entry type {member.kind!r}")
        except OSError as exc:
            self._error = exc
            raise self._failure() from None

    def data(self, piece: memoryview) -> None:
        current = self._current
        if current is None:
            return
        if self._error is not None:
            raise self._failure()
        self._room.acquire()
        with current.lock:
            current.pending += 1
        self._pool.submit(self._write, current, piece, self._offset)
        self._offset += len(piece)

    def member_end(self) -> None:
        if self._current is not None:
            self._room.acquire()
            self._pool.submit(self._finish_file, self._current)
            self._current = None

    # --- work --------------------------------------------------------------------------------

    def _safe(self, name: str) -> PurePosixPath:
        relative = PurePosixPath(name.removeprefix("./").rstrip("/") or ".")
        if relative.is_absolute() or ".." in relative.parts or str(relative) == ".":
            raise ExtractError(f"the archive names {name!r}, outside the target folder")
        return relative

    def _clear(self, path: Path, keep_dir: bool) -> None:
        """Make room for a new entry at path (delta: something else may be there)."""
        try:
            info = path.lstat()
        except FileNotFoundError:
            return
        if stat.S_ISDIR(info.st_mode):
            if not keep_dir:
                shutil.rmtree(path)
        elif keep_dir or stat.S_ISLNK(info.st_mode):
            path.unlink()

    def _make_dir(self, path: Path, mode: int) -> None:
        self._clear(path, keep_dir=True)
        path.mkdir(mode=mode or 0o700, parents=True, exist_ok=True)
        os.chmod(path, mode or 0o700)
        if self.owner:
            os.chown(path, *self.owner)

    def _make_symlink(self, path: Path, target: str) -> None:
        if path.is_symlink() and os.readlink(path) == target:
            return
        self._clear(path, keep_dir=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, path)
        if self.owner:
            os.chown(path, *self.owner, follow_symlinks=False)

    def _open(self, path: Path, member: TarMember) -> None:
        self._clear(path, keep_dir=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_CREAT | (0 if self.delta else os.O_TRUNC)
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0), member.mode or 0o600)
        try:
            os.fchmod(fd, member.mode or 0o600)
            if self.owner:
                os.fchown(fd, *self.owner)
            if self.delta and os.fstat(fd).st_size != member.size:
                os.ftruncate(fd, member.size)
        except OSError:
            os.close(fd)
            raise
        self.files += 1
        self._current = _OpenFile(fd, str(path))
        self._offset = 0

    def _write(self, target: _OpenFile, piece: memoryview, offset: int) -> None:
        try:
            if self._error is None:
                if self.delta and os.pread(target.fd, len(piece), offset) == piece.tobytes():
                    with self._counters:
                        self.bytes_unchanged += len(piece)
                else:
                    written = 0
                    while written < len(piece):
                        written += os.pwrite(target.fd, piece[written:], offset + written)
                    with self._counters:
                        self.bytes_written += len(piece)
        except OSError as exc:
            if exc.filename is None:
                exc.filename = target.path
            self._error = self._error or exc
        except BaseException as exc:
            self._error = self._error or exc
        finally:
            if target.release():
                self._completed(target)
            self._room.release()

    def _finish_file(self, target: _OpenFile) -> None:
        try:
            if target.release():
                self._completed(target)
        finally:
            self._room.release()

    def _completed(self, target: _OpenFile) -> None:
        self._files_to_sync.acquire()
        self._syncer.submit(self._sync_and_close, target)

    def _sync_and_close(self, target: _OpenFile) -> None:
        try:
            if self._error is None:
                os.fsync(target.fd)
        except OSError as exc:
            if exc.filename is None:
                exc.filename = target.path
            self._error = self._error or exc
        finally:
            os.close(target.fd)
            self._files_to_sync.release()

    def _remove_unlisted(self) -> None:
        for folder, dirs, files in os.walk(self.root, topdown=True):
            relative_folder = os.path.relpath(folder, self.root)
            for name in files:
                relative = os.path.normpath(os.path.join(relative_folder, name))
                if relative not in self._seen:
                    os.unlink(os.path.join(folder, name))
            for name in list(dirs):
                relative = os.path.normpath(os.path.join(relative_folder, name))
                if relative in self.keep:
                    dirs.remove(name)
                elif relative not in self._seen:
                    full = os.path.join(folder, name)
                    if os.path.islink(full):
                        os.unlink(full)
                    else:
                        shutil.rmtree(full)
                    dirs.remove(name)
