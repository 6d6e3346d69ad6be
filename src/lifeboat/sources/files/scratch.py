"""The private folder (mode 0700) where a files backup keeps its index while the archive is
written, and where a restore, verify or drill keeps the index it read back.

It is removed when the work ends, whatever happens. A process killed with SIGKILL cannot
remove it: its name carries the pid, and the next one removes the folders of processes
that are gone (a reused pid only keeps a folder until its new owner ends)."""

from __future__ import annotations

import tempfile
from contextlib import AbstractContextManager
from pathlib import Path

from lifeboat.repo import fetch

PREFIX = "lifeboat-files-"


def private_folder() -> AbstractContextManager[Path]:
    return fetch.private_folder(Path(tempfile.gettempdir()), "a files backup's index", PREFIX)


def remove_leftovers(root: Path) -> list[Path]:
    """The folders of processes that are gone, removed."""
    return fetch.remove_leftovers(root, PREFIX)
