"""A stored object's plaintext as a local file, for the tools that must seek in it
(`pg_restore -j` reads a dump's table of contents, then each worker the part it restores).

Everywhere else a backup's plaintext only flows through pipes; here it lands on disk, so:
the work folder is checked for room first (one clear line rather than a full disk half-way),
the file goes into a private folder (0700, the file 0600) that is removed whatever happens,
and the folder a killed run left behind is removed by the next fetch into that work folder."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from lifeboat.errors import InsufficientSpaceError, LifeboatError
from lifeboat.pipeline.checksum import Progress
from lifeboat.pipeline.crypto import Decryptor
from lifeboat.pipeline.stream import CHUNK
from lifeboat.repo.catalog import Repository
from lifeboat.repo.manifest import Manifest, StoredObject
from lifeboat.repo.objects import read_plain
from lifeboat.util.fs import free_space
from lifeboat.util.proc import pid_alive
from lifeboat.util.progress import human_bytes

# a fetch's private folder: lifeboat-fetch-<pid of the process that made it>-<random>
FOLDER_PREFIX = "lifeboat-fetch-"


def require_free_space(folder: Path, needed: int, what: str) -> None:
    """Refuse, in one line, when folder's file system has less than `needed` bytes free
    for `what` (say "the decrypted dump of wms/20260303T020000Z")."""
    try:
        free = free_space(folder)
    except OSError as exc:
        raise LifeboatError(f"cannot use {folder} for {what}: {exc.strerror}") from None
    if free < needed:
        raise InsufficientSpaceError(
            f"not enough free space in {folder} for {what}: "
            f"{human_bytes(needed)} needed, {human_bytes(free)} free"
        )


def what_is_fetched(manifest: Manifest, obj: StoredObject) -> str:
    """How messages name obj's plaintext, e.g. "the decrypted dump of wms/20260303T020000Z"."""
    return f"the decrypted {obj.name.split('.')[0]} of {manifest.source}/{manifest.id}"


def require_room(work_dir: Path, manifest: Manifest, obj: StoredObject) -> None:
    """Refuse, in one line, when work_dir cannot take obj's plaintext."""
    require_free_space(work_dir, obj.plain_size, what_is_fetched(manifest, obj))


@contextlib.contextmanager
def fetched(
    repo: Repository,
    manifest: Manifest,
    obj: StoredObject,
    decryptor: Decryptor,
    work_dir: Path,
    advance: Progress | None = None,
) -> Iterator[Path]:
    """obj's plaintext in a file under work_dir while the block runs; the file and its
    folder are gone afterwards, whether the fetch, the block or neither failed."""
    what = what_is_fetched(manifest, obj)
    require_room(work_dir, manifest, obj)
    with private_folder(work_dir, what) as folder:
        path = folder / obj.name.split(".")[0]
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with open(fd, "wb", buffering=CHUNK) as sink:
                # the stored bytes' sha256, age's authentication and zstd's checksum already
                # prove the plaintext; hashing it again would only lengthen the restore
                read_plain(repo, manifest, obj, decryptor, sink, advance, check_plain_digest=False)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise InsufficientSpaceError(
                    f"{work_dir} filled up while writing {what} "
                    f"({human_bytes(obj.plain_size)}): free some space or use another folder"
                ) from None
            raise LifeboatError(f"cannot write {what} into {work_dir}: {exc.strerror}") from None
        yield path


@contextlib.contextmanager
def private_folder(parent: Path, what: str, prefix: str = FOLDER_PREFIX) -> Iterator[Path]:
    """A new 0700 folder <prefix><pid>-<random> in parent for the block, removed afterwards
    whatever happens; the folders with that prefix of killed runs are removed first."""
    remove_leftovers(parent, prefix)
    try:
        folder = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=parent))
    except OSError as exc:
        raise LifeboatError(f"cannot use {parent} for {what}: {exc.strerror}") from None
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove_leftovers(work_dir: Path, prefix: str = FOLDER_PREFIX) -> list[Path]:
    """Remove the fetch folders in work_dir whose process is gone (killed before it could
    clean up): they hold a backup's plaintext. Only this user's, and never a live run's.
    Another kind's private folders (see private_folder) are found with their own prefix."""
    removed = []
    with contextlib.suppress(OSError):
        for entry in work_dir.iterdir():
            pid_text = entry.name.removeprefix(prefix).split("-", 1)[0]
            if not entry.name.startswith(prefix) or not pid_text.isdigit():
                continue
            try:
                info = entry.lstat()
            except OSError:
                continue
            mine = info.st_uid == os.getuid() and stat.S_ISDIR(info.st_mode)
            if mine and not pid_alive(int(pid_text)):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    return removed
