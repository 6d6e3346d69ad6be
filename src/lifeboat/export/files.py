"""Writing what an export produced: all of it, or, when a file exists and may not be
replaced, nothing."""

from __future__ import annotations

from pathlib import Path

from lifeboat.errors import LifeboatError, UsageError
from lifeboat.util.fs import write_atomically


def write_files(files: dict[Path, str], force: bool) -> None:
    """Write each file (atomically: a reader never sees half of one). An existing file is
    replaced only with force, and is checked for before anything is written, so a refused
    export leaves the folder as it was."""
    if not force:
        existing = [path for path in files if path.exists()]
        if existing:
            raise UsageError(f"{existing[0]} exists: give --force to replace it")
    for path, text in files.items():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, text.encode())
        except OSError as exc:
            raise LifeboatError(f"cannot write {path}: {exc.strerror or exc}") from None
