"""[groups] of sources, and scheduled jobs that name a group or a backup type: each
mistake is one error naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifeboat.config.load import load_config
from lifeboat.errors import ConfigError
from tests.unit.config.test_source_types import EVERY_KIND, HEAD


def _load(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lifeboat.toml"
    path.write_text(HEAD + EVERY_KIND + text, encoding="utf-8")
    return path


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(_load(tmp_path, text))
    return caught.value.message


def test_a_groups_table_of_lists_is_read(tmp_path: Path) -> None:
    config = load_config(
        _load(tmp_path, '[groups]\nnightly = ["wms", "media"]\nhourly = ["cache"]\n')
    )
    assert config.groups == {"nightly": ["wms", "media"], "hourly": ["cache"]}


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ('nightly = ["wms", "ghost"]', "groups.nightly names unknown source 'ghost'"),
        ('media = ["wms"]', "groups.media: a source has that name already"),
        ("nightly = []", "groups.nightly: a group needs at least one source"),
        ('nightly = ["wms", "wms"]', "groups.nightly names a source twice"),
    ],
)
def test_bad_groups_are_refused_naming_the_group(tmp_path: Path, groups: str, message: str) -> None:
    assert message in _error(tmp_path, f"[groups]\n{groups}\n")


def test_a_backup_job_of_a_group(tmp_path: Path) -> None:
    config = load_config(
        _load(
            tmp_path,
            '[groups]\nnightly = ["media", "cache"]\n'
            '[schedule.nightly]\njob = "backup"\ngroup = "nightly"\nparallel = 2\n'
            'daily_at = "02:00"\n',
        )
    )
    job = config.schedule["nightly"]
    assert config.job_sources(job) == ["media", "cache"]
    assert job.parallel == 2


@pytest.mark.parametrize(
    ("job", "message"),
    [
        ('job = "backup"\ngroup = "weekly"', "schedule.j.group names unknown group 'weekly'"),
        ('job = "drill"\ngroup = "nightly"', "group is for backup jobs"),
        ('job = "backup"\ngroup = "nightly"\nsource = "wms"', "give source or group, not both"),
        ('job = "backup"', "a backup job needs a source (or a group)"),
        (
            'job = "backup"\nsource = "cache"\ntype = "physical"',
            "schedule.j.type: source 'cache' is a redis source, type (logical, physical) is "
            "for PostgreSQL sources",
        ),
        (
            'job = "backup"\ngroup = "nightly"\ntype = "logical"',
            "schedule.j.type: source 'media' is a files source",
        ),
    ],
)
def test_bad_jobs_are_refused_naming_the_job(tmp_path: Path, job: str, message: str) -> None:
    text = f'[groups]\nnightly = ["wms", "media"]\n[schedule.j]\n{job}\nevery = "1h"\n'
    assert message in _error(tmp_path, text)


def test_a_postgres_job_keeps_its_type(tmp_path: Path) -> None:
    text = '[schedule.j]\njob = "backup"\nsource = "wms"\ntype = "physical"\nevery = "1h"\n'
    assert load_config(_load(tmp_path, text)).schedule["j"].type == "physical"
