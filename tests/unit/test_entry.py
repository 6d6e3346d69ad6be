"""The lean path archive_command and restore_command take through the `lifeboat` executable."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from lifeboat.entry import WalCall, plain_wal_call

from ..integration.helpers import LIFEBOAT


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["wal-push", "wms", "pg_wal/X"], (None, "wal-push", ["wms", "pg_wal/X"])),
        (
            ["--config", "/etc/l.toml", "wal-push", "wms", "p"],
            ("/etc/l.toml", "wal-push", ["wms", "p"]),
        ),
        (
            ["-c", "l.toml", "wal-fetch", "wms", "N", "D"],
            ("l.toml", "wal-fetch", ["wms", "N", "D"]),
        ),
        (
            ["--config=l.toml", "wal-fetch", "wms", "N", "D"],
            ("l.toml", "wal-fetch", ["wms", "N", "D"]),
        ),
        # as a restore from a copy target writes restore_command
        (
            ["--config", "l.toml", "wal-fetch", "--repo", "dr", "wms", "N", "D"],
            ("l.toml", "wal-fetch", ["wms", "N", "D"], "dr"),
        ),
        (["wal-fetch", "--repo=dr", "wms", "N", "D"], (None, "wal-fetch", ["wms", "N", "D"], "dr")),
    ],
)
def test_plain_calls_take_the_lean_path(args: list[str], expected: tuple[Any, ...]) -> None:
    assert plain_wal_call(args) == WalCall(*expected)


@pytest.mark.parametrize(
    "args",
    [
        ["wal-push", "wms", "p", "--json"],
        ["--debug", "wal-push", "wms", "p"],
        ["wal-push", "--help"],
        ["wal-push", "wms"],
        ["wal-fetch", "wms", "N"],
        ["wal-fetch", "--repo"],
        ["wal-fetch", "--repo", "dr", "wms", "N"],
        ["wal-push", "--repo", "dr", "wms", "p"],
        ["wal-fetch", "wms", "N", "D", "--repo", "dr"],
        ["backup", "wms"],
        ["--config"],
        [],
    ],
)
def test_anything_else_goes_to_the_full_parser(args: list[str]) -> None:
    assert plain_wal_call(args) is None


def test_the_lean_path_fails_like_the_full_one(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    for extra in ([], ["--json"]):
        result = subprocess.run(
            [LIFEBOAT, "--config", str(missing), "wal-push", "wms", "x", *extra],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 2
        assert result.stderr.startswith("lifeboat: error: ")
        assert str(missing) in result.stderr
