"""Fixtures of the WAL archiving tests."""

from __future__ import annotations

import pytest

from lifeboat.pipeline.crypto import AgeDecryptor, AgeEncryptor
from tests.unit.helpers import AgeKey


@pytest.fixture
def keys(age_key: AgeKey) -> tuple[AgeEncryptor, AgeDecryptor]:
    """What pushes WAL to a repository and what fetches it back, with one age key."""
    return age_key.encryptor(), age_key.decryptor()
