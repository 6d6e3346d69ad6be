"""The typed configuration of the per-WAL-file commands, as cached and as the full context
offers it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lifeboat.config import cache
from lifeboat.config.lean import LeanConfig
from lifeboat.context import Context, LeanContext
from lifeboat.errors import NotInitialisedError, UsageError
from lifeboat.pipeline.crypto import generate_age_identity
from lifeboat.repo.catalog import Repository
from lifeboat.storage.local import LocalStorage

_, PUBLIC = generate_age_identity()


@pytest.fixture(autouse=True)
def _cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "lifeboat.toml"
    path.write_text(
        f'[repositories.main]\nurl = "file://{tmp_path / "main"}"\n'
        f'[repositories.dr]\nurl = "file://{tmp_path / "dr"}"\n'
        f'[encryption]\nage_recipients = ["{PUBLIC}"]\n'
        "[compression]\nlevel = 7\n"
        '[sources.wms]\ndsn = "postgresql://backup@db/wms"\nrepositories = ["dr"]\n'
        f'[sources.wms.archive]\nasync = true\nspool_dir = "{tmp_path / "spool"}"\n'
        '[sources.crm]\ndsn = "postgresql://backup@db/crm"\n',
        encoding="utf-8",
    )
    return path


def test_the_cached_form_is_the_validated_one(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    full = Context.load(path)  # a full validation writes the cache
    cached = cache.load(path)
    assert cached == full.lean
    assert cached.level == 7
    assert cached.sources["wms"].repositories == ("dr",)
    assert cached.sources["crm"].repositories is None
    assert cached.archive("wms").async_push
    assert cached.archive("wms").spool.parent == tmp_path / "spool"
    assert LeanConfig.from_document(json.loads(json.dumps(cached.to_document()))) == cached


def test_which_repositories_the_wal_goes_to(tmp_path: Path) -> None:
    lean = Context.load(write_config(tmp_path)).lean
    assert [t.name for t in lean.targets("wms")] == ["dr"]
    assert [t.name for t in lean.targets("crm")] == ["main", "dr"]
    assert [t.name for t in lean.targets("wms", "main")] == ["main"]
    # a spool per source and set of repositories
    assert lean.archive("wms").spool != lean.archive("wms", "main").spool
    with pytest.raises(UsageError, match="unknown source 'nope'"):
        lean.targets("nope")
    with pytest.raises(UsageError, match="unknown repository 'nope'"):
        lean.archive("wms", "nope")


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d.pop("level"),
        lambda d: d.update(level="7"),
        lambda d: d["archive"]["wms"].update(workers=True),
        lambda d: d["repositories"]["main"]["options"].update(no_such_option=1),
        lambda d: d["encryption"].update(age_recipients="age1x"),
    ],
)
def test_a_cache_of_another_shape_counts_as_missing(tmp_path: Path, damage: Any) -> None:
    path = write_config(tmp_path)
    Context.load(path)
    stored = cache.cache_file(path)
    document = json.loads(stored.read_text())
    damage(document["config"])
    stored.write_text(json.dumps(document))
    assert cache.load(path) is None
    # and the per-WAL-file commands then validate afresh
    assert LeanContext.load(path).lean.level == 7


def test_both_contexts_open_the_same_initialised_storages(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    full = Context.load(path)
    lean = LeanContext.load(path)
    for ctx in (full, lean):
        with pytest.raises(NotInitialisedError, match=r"repository dr .* is not initialised"):
            ctx.storages("wms")
    Repository("dr", LocalStorage(tmp_path / "dr")).init()
    assert [s.url for s in full.storages("wms")] == [s.url for s in lean.storages("wms")]
    # the full context hands out the storages it opened for the run
    assert full.storages("wms")[0] is full.repository("dr").storage


def test_a_cache_written_before_the_lean_config_is_still_read(tmp_path: Path) -> None:
    """Cache format 5 as wal/settings.py's untyped dict wrote it: the same document."""
    from lifeboat import __version__

    path = write_config(tmp_path)
    options = {"part_size": 8 * 1024 * 1024, "max_attempts": 3}
    kept: dict[str, Any] = {
        "repositories": {"main": {"url": "file:///srv/main", "options": options}},
        "sources": {"wms": ["main"], "crm": None},
        "encryption": {
            "age_recipients": [PUBLIC],
            "age_identity_file": "/etc/lifeboat/age.key",
            "gpg_recipients": [],
            "gpg_homedir": None,
        },
        "level": 5,
        "archive": {
            name: {
                "async": False,
                "spool_dir": None,
                "spool_max_segments": 256,
                "workers": 2,
                "prefetch": 0,
            }
            for name in ("wms", "crm")
        },
    }
    document = {
        "format": cache.CACHE_FORMAT,
        "lifeboat": __version__,
        "fingerprint": cache.fingerprint(path.read_bytes()),
        "config": kept,
    }
    cache.cache_file(path).parent.mkdir(parents=True)
    cache.cache_file(path).write_text(json.dumps(document))
    lean = cache.load(path)
    assert lean is not None
    assert lean.level == 5
    assert lean.repositories["main"].options.part_size == 8 * 1024 * 1024
    assert lean.repositories["main"].options.max_attempts == 3
    assert lean.encryption.age_identity_file == Path("/etc/lifeboat/age.key")
    assert [t.name for t in lean.targets("crm")] == ["main"]
    assert lean.to_document() == {
        **kept,
        "repositories": {
            "main": {
                "url": "file:///srv/main",
                "options": lean.repositories["main"].options._asdict(),
            }
        },
    }
