"""Waiting for a state in tests: poll the state itself, never sleep for a guessed time.

The timeout only keeps a broken test from hanging: a state that never comes fails the test
with what was awaited, however long the machine took to get there otherwise."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_TIMEOUT = 60.0
POLL_INTERVAL = 0.1


def wait_for(
    state: Callable[[], T],
    what: str | Callable[[], str],
    timeout: float = DEFAULT_TIMEOUT,
    interval: float = POLL_INTERVAL,
) -> T:
    """Call state() until it returns something true, and return that. `what` names the
    state for the failure message; a callable is asked only then (to show what was seen)."""
    deadline = time.monotonic() + timeout
    while True:
        value = state()
        if value:
            return value
        if time.monotonic() >= deadline:
            described = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout:g} s waiting for {described}")
        time.sleep(interval)
