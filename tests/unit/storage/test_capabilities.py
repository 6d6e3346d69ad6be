"""How a backend declares an extra, and how callers reach it (storage/capabilities.py).

Each backend's own declarations are checked by the contract suite (tests/contract/)."""

from __future__ import annotations

import pytest

from lifeboat.storage.capabilities import Tiering, tiering
from lifeboat.storage.memory import MemoryStorage
from tests.forwarding import FiveOperations, Wrapping


class HalfTiering(MemoryStorage, Tiering):
    """Declares Tiering but forgets set_tier."""

    def tier(self, key: str) -> str | None:
        return None


class Tagged(MemoryStorage, Tiering):
    def __init__(self) -> None:
        super().__init__("tagged")
        self.tags: dict[str, str] = {}

    def tier(self, key: str) -> str | None:
        return self.tags.get(key)

    def set_tier(self, key: str, tier: str) -> None:
        self.tags[key] = tier


def test_a_backend_that_declares_an_extra_without_all_of_it_cannot_be_built() -> None:
    with pytest.raises(TypeError, match="set_tier"):
        HalfTiering()  # type: ignore[abstract]


def test_an_extra_is_reached_through_any_number_of_wrappers() -> None:
    tagged = Tagged()
    assert tiering(Wrapping(Wrapping(tagged))) is tagged


class DryRunTiering(Wrapping, Tiering):
    """A wrapper whose behaviour covers an extra: it implements it, and changes nothing."""

    def tier(self, key: str) -> str | None:
        found = tiering(self.inner)
        return found.tier(key) if found is not None else None

    def set_tier(self, key: str, tier: str) -> None:
        return None


def test_a_wrapper_that_implements_an_extra_itself_is_the_one_reached() -> None:
    tagged = Tagged()
    tagged.set_tier("k", "daily")
    dry_run = DryRunTiering(tagged)
    found = tiering(Wrapping(dry_run))
    assert found is dry_run
    found.set_tier("k", "weekly")
    assert found.tier("k") == "daily"
    assert tagged.tags == {"k": "daily"}


def test_a_store_in_front_that_does_not_declare_what_it_wraps_hides_its_extras() -> None:
    assert tiering(FiveOperations(Tagged())) is None
    assert tiering(Wrapping(FiveOperations(Tagged()))) is None


def test_a_backend_without_the_extra_answers_none() -> None:
    assert tiering(MemoryStorage()) is None
    assert tiering(Wrapping(MemoryStorage())) is None
