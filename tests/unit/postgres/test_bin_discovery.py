"""postgres/binaries.py finding server programs without a developer checkout: a folder of
links on PATH names the installation's own folder, one per major version."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lifeboat.errors import ToolError
from lifeboat.postgres.binaries import (
    BIN_DIRS_ENV,
    bin_dir_major,
    candidate_dirs,
    checkout_root,
    find_bin_dirs,
)

FIND = (
    "import json\n"
    "from lifeboat.postgres.binaries import find_bin_dirs\n"
    "print(json.dumps([str(d) for d in find_bin_dirs(checkout_cache=False)]))\n"
)


def fake_install(root: Path, version: str) -> Path:
    """A folder with initdb, pg_ctl and a postgres that answers --version like the real one."""
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True)
    for program in ("initdb", "pg_ctl", "postgres"):
        script = bin_dir / program
        script.write_text(f"#!/bin/sh\necho '{program} (PostgreSQL) {version}'\n")
        script.chmod(0o755)
    return bin_dir


def found_with(path: list[Path], extra: list[Path]) -> list[str]:
    """find_bin_dirs in a fresh process (its version cache empty) with this PATH."""
    env = {
        **os.environ,
        "PATH": os.pathsep.join(str(p) for p in path) + os.pathsep + "/usr/bin:/bin",
        BIN_DIRS_ENV: os.pathsep.join(str(p) for p in extra),
    }
    done = subprocess.run(
        [sys.executable, "-c", FIND], env=env, capture_output=True, text=True, check=True
    )
    found: list[str] = json.loads(done.stdout)
    return found


def test_a_path_folder_of_links_gives_the_installations_folder(tmp_path: Path) -> None:
    real = fake_install(tmp_path / "pg98", "98.1")
    links = tmp_path / "links"
    links.mkdir()
    for program in ("initdb", "pg_ctl", "postgres"):
        (links / program).symlink_to(real / program)
    assert str(real) in found_with([links], [])


def test_one_folder_per_major_the_first_found_winning(tmp_path: Path) -> None:
    first = fake_install(tmp_path / "a", "98.1")
    second = fake_install(tmp_path / "b", "98.2")
    other = fake_install(tmp_path / "c", "97.5")
    found = found_with([second], [first, other])
    assert str(first) in found and str(other) in found
    assert str(second) not in found
    ours = [d for d in found if d.startswith(str(tmp_path))]
    assert ours == [str(other), str(first)]  # sorted by major


def test_a_folder_without_a_readable_version_is_left_out(tmp_path: Path) -> None:
    broken = fake_install(tmp_path / "x", "unknown")
    assert str(broken) not in found_with([], [broken])
    with pytest.raises(ToolError, match="cannot tell the PostgreSQL version"):
        bin_dir_major(broken)


def test_the_checkout_cache_is_only_a_last_candidate_that_can_be_left_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = checkout_root()
    if root is None:
        pytest.skip("installed, not a checkout: there is no checkout cache")
    # the integration tests' conftest lists the cache in this variable for the whole run
    monkeypatch.delenv(BIN_DIRS_ENV, raising=False)
    cache = root / ".cache" / "pg17"
    with_cache = candidate_dirs(checkout_cache=True)
    assert with_cache[-1].is_relative_to(cache)
    assert not any(d.is_relative_to(cache) for d in candidate_dirs())
    assert not any(d.is_relative_to(cache.resolve()) for d in find_bin_dirs(checkout_cache=False))
