"""Fixtures for tests against real PostgreSQL clusters (every available major version)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifeboat.postgres.binaries import BIN_DIRS_ENV, bin_dir_major, find_bin_dirs
from lifeboat.postgres.instance import ScratchCluster

from .archiving import Archiving, archiving_cluster
from .versions import fail_if_unsatisfied, select_by_major

BIN_DIRS: list[Path] = find_bin_dirs()
# the lifeboat processes under test look for client tools of the server's version here
os.environ[BIN_DIRS_ENV] = os.pathsep.join(str(d) for d in BIN_DIRS)
BIN_DIR_IDS: list[str] = [f"pg{bin_dir_major(d)}" for d in BIN_DIRS]
# With nothing found, a single placeholder parameter makes every test fail (not skip).
_PARAMS: list[Path | None] = [*BIN_DIRS] if BIN_DIRS else [None]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    select_by_major(config, items, BIN_DIRS)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    fail_if_unsatisfied(item)


@pytest.fixture(
    scope="session",
    params=_PARAMS,
    ids=BIN_DIR_IDS or ["no-postgresql"],
)
def pg_bin_dir(request: pytest.FixtureRequest) -> Path:
    """One PostgreSQL bin directory per available major version."""
    bin_dir: Path | None = request.param
    if bin_dir is None:
        pytest.fail(
            "no PostgreSQL binaries found: expected /usr/lib/postgresql/<major>/bin, "
            f".cache/pg17 (run ./scripts/setup.sh) or directories in ${BIN_DIRS_ENV}",
            pytrace=False,
        )
    return bin_dir


@pytest.fixture(scope="session")
def pg_cluster(pg_bin_dir: Path) -> Iterator[ScratchCluster]:
    """A started scratch cluster, shared by the whole session, per major version."""
    with ScratchCluster(pg_bin_dir) as cluster:
        yield cluster


@pytest.fixture
def fresh_db(pg_cluster: ScratchCluster) -> Iterator[str]:
    """A new, empty database in ``pg_cluster``; dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    pg_cluster.psql(f'CREATE DATABASE "{name}"')
    yield name
    force = " WITH (FORCE)" if pg_cluster.major >= 13 else ""
    pg_cluster.psql(f'DROP DATABASE IF EXISTS "{name}"{force}')


@pytest.fixture
def archiving(pg_bin_dir: Path) -> Iterator[Archiving]:
    """A cluster archiving its WAL into a Lifeboat repository, as its OS user does."""
    with archiving_cluster(pg_bin_dir) as made:
        yield made
