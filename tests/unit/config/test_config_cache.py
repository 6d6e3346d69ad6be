"""The validated-config cache that keeps wal-push fast: reused only for the same file and
environment, never holding a DSN."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lifeboat.config import cache
from lifeboat.config.load import load_config
from lifeboat.context import LeanContext
from lifeboat.errors import ConfigError
from lifeboat.pipeline.crypto import generate_age_identity

_, PUBLIC = generate_age_identity()
CONFIG = f"""
[repositories.local]
url = "${{LB_REPO}}"
[encryption]
age_recipients = ["{PUBLIC}"]
[compression]
level = 4
[sources.wms]
dsn = "postgresql://backup:very-secret@db/wms"
"""


@pytest.fixture(autouse=True)
def _cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("LB_REPO", str(tmp_path / "repo"))


def test_full_validation_fills_the_cache_without_secrets(tmp_path: Path) -> None:
    path = tmp_path / "lifeboat.toml"
    path.write_text(CONFIG)
    assert cache.load(path) is None
    load_config(path)
    stored = cache.cache_file(path)
    assert stored.stat().st_mode & 0o777 == 0o600
    assert "very-secret" not in stored.read_text() and "dsn" not in stored.read_text()
    lean = cache.load(path)
    assert lean is not None
    assert lean.level == 4
    assert lean.repositories["local"].url == str(tmp_path / "repo")
    assert lean.repositories["local"].options.part_size == 16 * 1024 * 1024


def test_cache_is_ignored_when_the_file_or_its_environment_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "lifeboat.toml"
    path.write_text(CONFIG)
    load_config(path)
    assert cache.load(path) is not None
    monkeypatch.setenv("LB_REPO", str(tmp_path / "elsewhere"))
    assert cache.load(path) is None  # the variable the file names changed
    monkeypatch.setenv("LB_REPO", str(tmp_path / "repo"))
    assert cache.load(path) is not None
    path.write_text(CONFIG.replace("level = 4", "level = 5"))
    assert cache.load(path) is None


def test_an_invalid_file_is_never_served_from_the_cache(tmp_path: Path) -> None:
    path = tmp_path / "lifeboat.toml"
    path.write_text(CONFIG)
    load_config(path)
    path.write_text(CONFIG + "\nbogus = 1\n")
    with pytest.raises(ConfigError):
        LeanContext.load(path)


def test_an_unwritable_cache_only_costs_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    path = tmp_path / "lifeboat.toml"
    path.write_text(CONFIG)
    assert LeanContext.load(path).lean.level == 4
    assert cache.load(path) is None


def test_a_tampered_cache_document_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "lifeboat.toml"
    path.write_text(CONFIG)
    load_config(path)
    stored = cache.cache_file(path)
    document = json.loads(stored.read_text())
    document["format"] = 99
    stored.write_text(json.dumps(document))
    assert cache.load(path) is None
