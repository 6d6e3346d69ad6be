"""Finding PostgreSQL client tools."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CHECK = (
    "from lifeboat.errors import ToolError\n"
    "from lifeboat.postgres.binaries import find_tools\n"
    "try:\n"
    "    find_tools(99)\n"
    "except ToolError as exc:\n"
    "    print('clear:', exc)\n"
)


def test_a_path_entry_this_user_cannot_enter_is_skipped(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    (closed / "bin").mkdir(parents=True)
    closed.chmod(0o700)
    env = {**os.environ, "PATH": f"{closed / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("LIFEBOAT_PG_BIN_DIRS", None)
    command = [sys.executable, "-c", CHECK]
    if os.geteuid() == 0:
        # root enters every folder; the server's OS user, who runs wal-push, does not
        tmp_path.chmod(0o755)
        command = ["runuser", "-u", "postgres", "--", *command]
    else:
        closed.chmod(0)
    try:
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    finally:
        closed.chmod(0o700)
    assert result.returncode == 0, result.stderr
    assert "clear: no pg_dump of PostgreSQL 99" in result.stdout
