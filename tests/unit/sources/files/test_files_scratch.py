"""The private folders of files backups: removed when done, and after a kill by the next."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from lifeboat.sources.files import scratch


def test_a_folder_is_private_and_gone_afterwards_even_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)  # read TMPDIR again
    with pytest.raises(RuntimeError), scratch.private_folder() as folder:
        assert folder.parent == tmp_path
        assert folder.stat().st_mode & 0o777 == 0o700
        (folder / "index.jsonl").write_text("x")
        raise RuntimeError("the backup failed")
    assert list(tmp_path.iterdir()) == []


def test_the_folders_of_processes_that_are_gone_are_removed(tmp_path: Path) -> None:
    ended = subprocess.run(["sh", "-c", "echo $$"], capture_output=True, text=True, check=True)
    dead = tmp_path / f"{scratch.PREFIX}{ended.stdout.strip()}-abc"
    alive = tmp_path / f"{scratch.PREFIX}{os.getpid()}-def"
    for folder in (dead, alive):
        folder.mkdir()
        (folder / "index.jsonl").write_text("x")
    assert scratch.remove_leftovers(tmp_path) == [dead]
    assert not dead.exists() and alive.exists()
