"""How PostgreSQL should call this Lifeboat (archive_command, restore_command)."""

from __future__ import annotations

import sys
from pathlib import Path


def lifeboat_executable() -> str:
    """The console script of this installation, else `lifeboat` on the server's PATH."""
    beside = Path(sys.executable).with_name("lifeboat")
    return str(beside) if beside.exists() else "lifeboat"
