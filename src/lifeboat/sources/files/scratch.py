"""The private folder (mode 0700) where a files backup keeps its index while the archive is
written, and where a restore, verify or drill keeps the index it read back.

It is removed when the work ends, whatever happens. A process killed with SIGKILL cannot
remove it: its name carries the pid, and the next one removes the folders of processes
that are gone (a reused pid only keeps a folder until its new owner ends)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from lifeboat.util.proc import pid_alive

PREFIX = "lifeboat-files-"


@contextlib.contextmanager
def private_folder() -> Iterator[Path]:
    root = Path(tempfile.gettempdir())
    remove_leftovers(root)
    folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=root))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove_leftovers(root: Path) -> list[Path]:
    """The folders of processes that are gone, removed."""
    removed = []
    for folder in root.glob(f"{PREFIX}*-*"):
        pid = folder.name.removeprefix(PREFIX).split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)) and not folder.is_symlink():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed
