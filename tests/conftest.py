"""Shared pytest configuration: tests are marked by the folder they live in."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pytest

# Lifeboat caches validated configs under $XDG_CACHE_HOME; keep the suite's out of $HOME.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="lifeboat-test-cache-")
atexit.register(shutil.rmtree, os.environ["XDG_CACHE_HOME"], True)
# ... and its local state (backup_manifest copies, spools) too; the tests run Lifeboat both as
# themselves and as the server's OS user, so the folder is shared like /tmp.
os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="lifeboat-test-state-")
for _shared in ("", "lifeboat", "lifeboat/spool", "lifeboat/backup_manifests"):
    os.makedirs(os.path.join(os.environ["XDG_STATE_HOME"], _shared), exist_ok=True)
    os.chmod(os.path.join(os.environ["XDG_STATE_HOME"], _shared), 0o1777)
atexit.register(shutil.rmtree, os.environ["XDG_STATE_HOME"], True)

TESTS_DIR = Path(__file__).resolve().parent

# First path component under tests/ -> marker applied to every test collected there.
FOLDER_MARKERS = {
    "unit": "unit",
    "contract": "contract",
    "integration": "integration",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        try:
            relative = Path(item.path).resolve().relative_to(TESTS_DIR)
        except ValueError:
            continue
        marker = FOLDER_MARKERS.get(relative.parts[0]) if len(relative.parts) > 1 else None
        if marker is not None:
            item.add_marker(marker)


# --- what ran, per marker ----------------------------------------------------------------
# One line at the end of the run, e.g. `markers: unit 570 passed; contract 309 passed;
# integration 230 passed, 4 skipped`. It is written before pytest's short summary and
# closing line, so that pytest's own line stays the last one printed (CI reads it).

# the markers pyproject.toml declares (pytest's own, such as parametrize, are not counted)
SUMMARY_MARKERS = ("unit", "contract", "integration", "slow")
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
MARKERS_OF_TEST = pytest.StashKey[dict[str, frozenset[str]]]()


def pytest_collection_finish(session: pytest.Session) -> None:
    session.config.stash[MARKERS_OF_TEST] = {
        item.nodeid: frozenset(mark.name for mark in item.iter_markers()) & set(SUMMARY_MARKERS)
        for item in session.items
    }


def tally_text(tally: Counter[str]) -> str:
    """The counts in the words and order of pytest's closing line: "3 passed, 2 errors"."""
    return ", ".join(
        f"{tally[outcome]} {'errors' if outcome == 'error' and tally[outcome] > 1 else outcome}"
        for outcome in OUTCOMES
        if tally[outcome]
    )


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    markers_of_test = config.stash.get(MARKERS_OF_TEST, {})
    tallies: dict[str, Counter[str]] = {marker: Counter() for marker in SUMMARY_MARKERS}
    # pytest's own tally (a test whose teardown fails counts as passed and as an error, as
    # in its closing line); the phases that passed around a test's call are filed under ""
    for outcome in OUTCOMES:
        for report in terminalreporter.stats.get(outcome, []):
            for marker in markers_of_test.get(getattr(report, "nodeid", ""), ()):
                tallies[marker][outcome] += 1
    parts = [f"{marker} {tally_text(tally)}" for marker, tally in tallies.items() if tally]
    if parts:
        terminalreporter.write_line("markers: " + "; ".join(parts))
