"""Which repositories a command looks in: where the source writes, and where reading goes."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifeboat.context import Context
from lifeboat.errors import UsageError
from lifeboat.pipeline.crypto import generate_age_identity
from lifeboat.repo.catalog import Repository


def context(tmp_path: Path) -> Context:
    _, public = generate_age_identity()
    config = tmp_path / "lifeboat.toml"
    config.write_text(
        "".join(f'[repositories.{n}]\nurl = "file://{tmp_path / n}"\n' for n in ("a", "b", "c"))
        + f'[encryption]\nage_recipients = ["{public}"]\n'
        + '[sources.wms]\ndsn = "postgresql://backup@db.internal/wms"\nrepositories = ["c"]\n',
        encoding="utf-8",
    )
    return Context.load(config)


def names(repos: list[Repository]) -> list[str]:
    return [repo.name for repo in repos]


def test_reading_looks_in_the_source_s_repositories_first_then_the_others(
    tmp_path: Path,
) -> None:
    ctx = context(tmp_path)
    assert names(ctx.repositories_for("wms")) == ["c"]
    assert names(ctx.repositories_to_read("wms")) == ["c", "a", "b"]
    assert names(ctx.repositories_to_read(None)) == ["a", "b", "c"]
    # a named repository is the only one, whether the source writes there or not
    assert names(ctx.repositories_to_read("wms", "a")) == ["a"]
    assert names(ctx.repositories_for("wms", "b")) == ["b"]
    assert ctx.is_own_repository("wms", ctx.repository("c"))
    assert not ctx.is_own_repository("wms", ctx.repository("a"))


def test_an_unknown_repository_names_the_configured_ones(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    with pytest.raises(UsageError, match=r"unknown repository 'd' .*\(repositories: a, b, c\)"):
        ctx.repositories_to_read("wms", "d")
    with pytest.raises(UsageError, match="unknown source 'nope'"):
        ctx.repositories_to_read("nope")
