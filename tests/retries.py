"""Retries in tests: the attempts are real, the waits between them are recorded instead of
slept, so a test sees the backoff it would have waited without waiting for it."""

from __future__ import annotations

from typing import Protocol, TypeVar

from lifeboat.storage.retry import Retry


class Retrying(Protocol):
    retry: Retry


R = TypeVar("R", bound=Retrying)


class RecordedWaits(list[float]):
    """A sleep that remembers how long it was asked to wait, and returns at once."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def without_waits(storage: R) -> R:
    """storage, retrying as configured but never waiting; its waits are in
    storage.retry.sleep (a RecordedWaits)."""
    storage.retry.sleep = RecordedWaits()
    return storage


def waits_of(storage: Retrying) -> RecordedWaits:
    recorded = storage.retry.sleep
    assert isinstance(recorded, RecordedWaits), "made without without_waits()"
    return recorded
