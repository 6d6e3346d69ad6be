"""Integration tests that only make sense on some PostgreSQL majors are selected by marker.

Every test that takes ``pg_bin_dir`` (directly, or through ``pg_cluster``, ``archiving``...)
runs once per installed major. A test marked ``pg_major`` runs only on the majors it names;
its other instances are deselected at collection (counted as "deselected", never "skipped"),
and when no installed major fits, one instance is kept and fails, naming what is missing, so
a test cannot silently stop running.

    @needs_pg17              incremental backups, the builtin locale provider...
    @before_pg17             the refusals of what 17 brings
    @on_oldest_major         tests whose subject does not depend on the server: run once, on
                             the oldest installed major (the distribution's package)
    @pytest.mark.pg_major(max=15)   any other range
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from lifeboat.postgres.binaries import bin_dir_major

MARKER = "pg_major"

needs_pg17 = pytest.mark.pg_major(min=17)
before_pg17 = pytest.mark.pg_major(max=16)
on_oldest_major = pytest.mark.pg_major(oldest=True)


@dataclass(frozen=True)
class MajorRange:
    """The majors a test runs on, from its ``pg_major`` marker."""

    min: int | None = None
    max: int | None = None
    oldest: bool = False

    @classmethod
    def of(cls, marker: pytest.Mark) -> MajorRange:
        if marker.args:
            raise TypeError(f"{MARKER} takes keywords only (min=, max=, oldest=)")
        return cls(**marker.kwargs)

    def admits(self, major: int, installed: list[int]) -> bool:
        if self.oldest and major != min(installed):
            return False
        return (self.min is None or major >= self.min) and (self.max is None or major <= self.max)

    def describe(self) -> str:
        words = []
        if self.oldest:
            words.append("the oldest installed major")
        if self.min is not None:
            words.append(f"PostgreSQL >= {self.min}")
        if self.max is not None:
            words.append(f"PostgreSQL <= {self.max}")
        return " and ".join(words)


UNSATISFIED = pytest.StashKey[str]()


def select_by_major(config: pytest.Config, items: list[pytest.Item], bin_dirs: list[Path]) -> None:
    """Deselect the instances of ``pg_major`` tests for the majors they do not run on."""
    installed = [bin_dir_major(d) for d in bin_dirs]
    unfitting: list[pytest.Item] = []
    fitting: set[str] = set()
    for item in items:
        marker = item.get_closest_marker(MARKER)
        callspec = getattr(item, "callspec", None)
        bin_dir = callspec.params.get("pg_bin_dir") if callspec is not None else None
        if marker is None or not isinstance(bin_dir, Path):
            continue
        wanted = MajorRange.of(marker)
        if wanted.admits(bin_dir_major(bin_dir), installed):
            fitting.add(_function_of(item))
        else:
            unfitting.append(item)
            item.stash[UNSATISFIED] = f"needs {wanted.describe()}; installed: " + ", ".join(
                str(major) for major in installed
            )
    # a test no installed major fits keeps its first instance, which fails when it runs
    deselected: list[pytest.Item] = []
    kept_for_failing: set[str] = set()
    for item in unfitting:
        function = _function_of(item)
        if function in fitting or function in kept_for_failing:
            deselected.append(item)
        else:
            kept_for_failing.add(function)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        gone = {id(item) for item in deselected}
        items[:] = [item for item in items if id(item) not in gone]


def _function_of(item: pytest.Item) -> str:
    return item.nodeid.split("[", 1)[0]


def fail_if_unsatisfied(item: pytest.Item) -> None:
    """Fail the instance kept for a test that no installed major fits."""
    if UNSATISFIED in item.stash:
        pytest.fail(item.stash[UNSATISFIED], pytrace=False)
