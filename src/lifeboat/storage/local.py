"""Local filesystem backend: temp name + fsync + rename, files 0600, folders 0700."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from lifeboat.errors import DiskFullError
from lifeboat.storage.base import (
    TEMP_MARKER,
    AlreadyExists,
    Capabilities,
    NotFound,
    ObjectInfo,
    PermanentError,
    temporary_target,
    validate_key,
)
from lifeboat.storage.capabilities import (
    ExclusiveCreate,
    PendingUpload,
    UploadJanitor,
    holding,
)
from lifeboat.storage.direct import AlignedWriter
from lifeboat.util.fs import fsync_dir, make_private_dirs

FILE_MODE = 0o600
DIR_MODE = 0o700


class _RangeReader:
    """A file object limited to `length` bytes from its current position."""

    def __init__(self, handle: BinaryIO, length: int) -> None:
        self._handle = handle
        self._left = length

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        size = self._left if size < 0 else min(size, self._left)
        data = self._handle.read(size)
        self._left -= len(data)
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> _RangeReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _os_error(exc: OSError, what: str) -> Exception:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(f"{what}: no space left on device")
    return PermanentError(f"{what}: {exc.strerror or exc}")


class _ProducerFailed(Exception):
    def __init__(self, error: BaseException) -> None:
        self.error = error


class _ProducerErrors:
    """Wraps the chunk iterator so its errors are not mistaken for the file system's."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)

    def __iter__(self) -> _ProducerErrors:
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._chunks)
        except StopIteration:
            raise
        except Exception as exc:
            raise _ProducerFailed(exc) from exc


def _may_hold(folder: str, prefix: str) -> bool:
    """Whether keys under folder (ending in /) can start with prefix."""
    return folder.startswith(prefix) or prefix.startswith(folder)


class LocalStorage(ExclusiveCreate, UploadJanitor):
    capabilities = Capabilities(atomic_rename=True, max_parallelism=4)

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = f"file://{root}"

    def _path(self, key: str) -> Path:
        return self.root / validate_key(key)

    def write(self, key: str, chunks: Iterable[bytes]) -> ObjectInfo:
        final = self._path(key)
        temp, size = self._write_temp(final, chunks)
        try:
            os.replace(temp, final)
            fsync_dir(final.parent)
        except OSError as exc:
            raise _os_error(exc, f"cannot write {final}") from exc
        finally:
            temp.unlink(missing_ok=True)  # gone already once renamed
        return ObjectInfo(key=key, size=size, modified=datetime.now(UTC))

    def create_exclusive(self, key: str, data: bytes) -> ObjectInfo:
        """link(2) of a complete temporary file: the kernel refuses an existing name, and a
        reader never sees the object before all of it is there."""
        final = self._path(key)
        temp, size = self._write_temp(final, [data])
        try:
            os.link(temp, final)
            fsync_dir(final.parent)
        except FileExistsError:
            mine = holding(self, key, data)
            if mine is None:
                raise AlreadyExists(f"{self.url}/{key} exists already") from None
            return mine
        except OSError as exc:
            raise _os_error(exc, f"cannot create {final}") from exc
        finally:
            temp.unlink(missing_ok=True)
        return ObjectInfo(key=key, size=size, modified=datetime.now(UTC))

    def _write_temp(self, final: Path, chunks: Iterable[bytes]) -> tuple[Path, int]:
        """The chunks in a new, fsynced `<final>.tmp-<hex>` next to final: (its path, size).
        On any failure nothing is left."""
        temp, fd = self._create_temp(final)
        size = 0
        try:
            with os.fdopen(fd, "wb", buffering=0) as handle:
                writer = AlignedWriter(handle)
                try:
                    for chunk in _ProducerErrors(chunks):
                        writer.write(chunk)
                        size += len(chunk)
                    writer.finish()
                finally:
                    writer.close()
                os.fsync(handle.fileno())
        except _ProducerFailed as failed:
            temp.unlink(missing_ok=True)
            raise failed.error from None
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise _os_error(exc, f"cannot write {final}") from exc
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return temp, size

    def _create_temp(self, final: Path) -> tuple[Path, int]:
        """A new `<final>.tmp-<hex>` open for writing, its folders made as needed."""
        temp = final.with_name(f"{final.name}{TEMP_MARKER}{os.urandom(4).hex()}")
        for attempt in range(1, 4):
            try:
                make_private_dirs(final.parent)
                return temp, os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            except FileNotFoundError as exc:
                # another process deleted the last file of a folder on the way and removed
                # the emptied folder meanwhile (see delete): make it again
                if attempt == 3:
                    raise _os_error(exc, f"cannot write {final}") from exc
            except OSError as exc:
                raise _os_error(exc, f"cannot write {final}") from exc
        raise AssertionError("unreachable")

    def read(self, key: str, offset: int = 0, length: int | None = None) -> BinaryIO:
        path = self._path(key)
        try:
            handle = open(path, "rb")  # noqa: SIM115 - the caller closes the stream
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFound(f"{self.url}/{key} does not exist") from None
        except OSError as exc:
            raise _os_error(exc, f"cannot read {path}") from exc
        if offset:
            handle.seek(offset)
        if length is not None:
            return _RangeReader(handle, length)  # type: ignore[return-value]
        return handle

    def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"{self.url}/{key} does not exist") from None
        return ObjectInfo(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Objects under prefix in key order. A write in progress (or killed) shows as its
        temporary `<key>.tmp-<hex>` name, never under its key, so cleanup can find it."""
        base = self.root
        # walk only the folder the prefix names, not the whole repository
        folder = prefix.rpartition("/")[0]
        start = base / folder if folder else base
        try:
            if not start.is_dir():
                return
        except OSError as exc:
            raise _os_error(exc, f"cannot list {start}") from exc

        def refuse(exc: OSError) -> None:
            if isinstance(exc, FileNotFoundError):
                return  # a folder a delete emptied and removed meanwhile: no keys in it
            raise _os_error(exc, f"cannot list {exc.filename}") from exc

        found: list[tuple[str, Path]] = []
        for dirpath, dirnames, filenames in os.walk(start, onerror=refuse):
            here = Path(dirpath).relative_to(base).as_posix()
            here = "" if here == "." else here + "/"
            # into the folders only where a key can start with the prefix
            dirnames[:] = [d for d in dirnames if _may_hold(f"{here}{d}/", prefix)]
            for name in filenames:
                full = Path(dirpath) / name
                key = full.relative_to(base).as_posix()
                if key.startswith(prefix):
                    found.append((key, full))
        for key, full in sorted(found):
            try:
                st = full.stat()
            except FileNotFoundError:
                continue
            yield ObjectInfo(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise _os_error(exc, f"cannot delete {path}") from exc
        self._prune_empty_dirs(path.parent)

    # -- pending uploads: the temporary files of killed writers --

    def pending_uploads(self, prefix: str) -> Iterator[PendingUpload]:
        """Temporary files under prefix; a file's age is that of its last write, so a slow
        writer that is still writing stays young."""
        for info in self.list(prefix):
            target = temporary_target(info.key)
            if target is not None and info.modified is not None:
                yield PendingUpload(target, info.modified, info.key, info.size)

    def remove_pending_upload(self, upload: PendingUpload) -> None:
        if temporary_target(upload.handle) != upload.key:
            raise ValueError(f"{upload.handle!r} is not a temporary file of {upload.key!r}")
        self.delete(upload.handle)

    def _prune_empty_dirs(self, directory: Path) -> None:
        while directory != self.root and self.root in directory.parents:
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent
