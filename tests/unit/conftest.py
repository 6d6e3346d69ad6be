"""Fixtures shared by the unit tests (helpers to call are in tests/unit/helpers.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.helpers import AgeKey, new_age_key


@pytest.fixture(autouse=True)
def _restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A command run in-process configures the 'lifeboat' logger: leave it as it was for the
    next test; and no LIFEBOAT_CONFIG of the environment running the tests reaches one."""
    logger = logging.getLogger("lifeboat")
    saved = (list(logger.handlers), logger.propagate, logger.level)
    monkeypatch.delenv("LIFEBOAT_CONFIG", raising=False)
    yield
    logger.handlers[:] = saved[0]
    logger.propagate = saved[1]
    logger.setLevel(saved[2])


@pytest.fixture
def age_key(tmp_path: Path) -> AgeKey:
    """A new age key, its identity file at tmp_path/age.key."""
    return new_age_key(tmp_path)
