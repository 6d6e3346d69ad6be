"""Shared pytest configuration: tests are marked by the folder they live in."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
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
    "contract": "unit",
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
