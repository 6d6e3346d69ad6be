"""Small filesystem helpers: Lifeboat's local state folder, private folders, writes that
leave a file whole or absent, and how much room a folder has left."""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_DIR_MODE = 0o700


def make_private_dirs(folder: Path) -> None:
    """Create folder and its missing parents with mode 0700 (mkdir's mode only covers the
    last component, and the umask would loosen it)."""
    missing = []
    while not folder.is_dir():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(path, PRIVATE_DIR_MODE)


def free_space(folder: Path) -> int:
    """Bytes an unprivileged user can still write into folder's file system (the blocks
    kept for root do not count: Lifeboat should not fill a disk up to them). Raises
    OSError (FileNotFoundError for a missing folder)."""
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def state_home() -> Path:
    """Where Lifeboat keeps local state: $XDG_STATE_HOME/lifeboat, else
    ~/.local/state/lifeboat of the user running it."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return Path(base) / "lifeboat"


def _replace_with(path: Path, data: bytes, sync: bool, mode: int = 0o600) -> None:
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            if mode & ~0o600:
                os.fchmod(fd, mode)  # past the umask: others are meant to read it
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    if sync:
        fsync_dir(path.parent)


def write_atomically(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Readers see the old file or the new one, never half of one; not synced (for files a
    crash may lose). Mode 0600 unless told. Raises OSError."""
    _replace_with(path, data, sync=False, mode=mode)


def write_durably(path: Path, data: bytes) -> None:
    """path holds data, or what it held before, even after a crash: temp file, fsync,
    rename, fsync the folder. Mode 0600. Raises OSError."""
    _replace_with(path, data, sync=True)
