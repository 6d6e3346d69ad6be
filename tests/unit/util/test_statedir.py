"""Where local state lives: the variable, root's system folder, a user's home."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lifeboat.util.statedir import SYSTEM_STATE_DIR, state_dir


def test_the_variable_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LIFEBOAT_STATE_DIR", str(tmp_path))
    assert state_dir() == tmp_path


def test_root_uses_the_system_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIFEBOAT_STATE_DIR", raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert state_dir() == SYSTEM_STATE_DIR == Path("/var/lib/lifeboat")


def test_a_user_gets_the_xdg_state_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LIFEBOAT_STATE_DIR", raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert state_dir() == tmp_path / "lifeboat"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert state_dir() == tmp_path / "home" / ".local" / "state" / "lifeboat"
