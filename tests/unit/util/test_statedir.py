"""Where the daemon (and later the notifications) keep their state."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lifeboat.util.statedir import STATE_DIR_ENV, config_key, ensure_state_dir, state_dir


def test_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / "state"))
    assert state_dir() == tmp_path / "state"


def test_root_uses_var_lib_and_others_xdg_state_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(STATE_DIR_ENV, raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert state_dir() == Path("/var/lib/lifeboat")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert state_dir() == tmp_path / "xdg" / "lifeboat"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert state_dir() == tmp_path / "home" / ".local" / "state" / "lifeboat"


def test_each_config_file_has_its_own_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    assert config_key(a) != config_key(b)
    assert config_key(Path("a.toml")) == config_key(a)  # relative or not, the same file


def test_the_folder_is_created_for_its_owner_only(tmp_path: Path) -> None:
    folder = ensure_state_dir(tmp_path / "x" / "state")
    assert folder.is_dir() and folder.stat().st_mode & 0o777 == 0o700
