"""Environment variables changed for a block of a test and put back as they were after it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping


def _put(name: str, value: str | None) -> None:
    """os.environ[name] = value; None unsets it."""
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


@contextlib.contextmanager
def changed_environment(values: Mapping[str, str | None]) -> Iterator[None]:
    """os.environ with each name set to its value (None: unset) for the block; each
    name's value before it (or its absence) back afterwards."""
    before = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            _put(name, value)
        yield
    finally:
        for name, value in before.items():
            _put(name, value)
