"""The unit tests mirror the packages they test, so a package's tests are found in one place:
tests/unit/<package>/ for each package of src/lifeboat, tests/unit/project/ for the checks of
the project itself, and tests/unit/ for the top-level modules (entry, context, errors).

A test file's name is unique among the unit tests, and not used by another test folder:
pytest imports each file as a module of its package, so two of a name would work, but a
name in a failure report or after -k would no longer say which one it is."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import lifeboat

UNIT = Path(__file__).resolve().parents[1]
PACKAGES = {path.parent.name for path in Path(lifeboat.__file__).parent.glob("*/__init__.py")}
OUTSIDE_THE_CODE = {"project"}


def folders() -> set[str]:
    return {path.name for path in UNIT.iterdir() if path.is_dir() and path.name != "__pycache__"}


def test_each_folder_is_a_package_of_the_code_or_the_project() -> None:
    assert folders() - PACKAGES - OUTSIDE_THE_CODE == set()


def test_each_folder_is_a_package_of_the_tests() -> None:
    """Without __init__.py pytest would import its files as top-level modules, and one
    named like a file elsewhere would not import at all."""
    assert {name for name in folders() if not (UNIT / name / "__init__.py").is_file()} == set()


def test_test_file_names_are_unique() -> None:
    names = Counter(path.name for path in UNIT.rglob("test_*.py"))
    assert {name for name, count in names.items() if count > 1} == set()


# unit test files named like a file of another test folder, from before the rule; may only
# shrink (rename one side to what it tests when you touch it)
KNOWN_SHARED_NAMES = {
    "test_prune.py",
    "test_unfinished_uploads.py",
    "test_wal_archive.py",
    "test_wal_stream.py",
}


def test_unit_test_file_names_are_not_used_by_other_test_folders() -> None:
    """-k and a failure report name the file alone: a unit test named like an integration
    or contract test makes both ambiguous."""
    elsewhere = {path.name for path in UNIT.parent.rglob("test_*.py") if UNIT not in path.parents}
    shared = {path.name for path in UNIT.rglob("test_*.py")} & elsewhere
    assert shared - KNOWN_SHARED_NAMES == set()
    assert KNOWN_SHARED_NAMES - shared == set(), "a name is unique now: drop it from the list"
