"""Redis's programs are found on PATH or in redis_bin_dir; a missing one is one line naming
what to install."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifeboat.errors import ToolError
from lifeboat.sources.redis.programs import find_program


def test_a_missing_program_names_its_debian_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolError, match="install the Debian package redis-tools"):
        find_program("redis-check-rdb", None)
    with pytest.raises(ToolError, match="install the Debian package redis-server"):
        find_program("redis-server", None)


def test_redis_bin_dir_is_the_only_place_looked_in_when_set(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match=f"redis-server is not in redis_bin_dir {tmp_path}"):
        find_program("redis-server", tmp_path)
    program = tmp_path / "redis-server"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    assert find_program("redis-server", tmp_path) == program
