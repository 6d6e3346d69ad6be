"""How often `lifeboat heartbeat` beats, and the refusals that come before any connection."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from lifeboat.context import Context
from lifeboat.errors import UsageError
from lifeboat.ops.heartbeat import interval
from tests.unit.helpers import one_error_line, run, write_config


def _with_heartbeat(tmp_path: Path, every: str | None) -> Path:
    config = write_config(tmp_path)
    if every is not None:
        with config.open("a", encoding="utf-8") as fh:
            fh.write(f'[sources.wms.objectives]\nheartbeat = "{every}"\n')
    return config


def test_the_configured_interval_is_the_default(tmp_path: Path) -> None:
    ctx = Context.load(_with_heartbeat(tmp_path, "2m"))
    assert interval(ctx, "wms", None) == timedelta(minutes=2)


def test_every_wins_over_the_configured_interval(tmp_path: Path) -> None:
    ctx = Context.load(_with_heartbeat(tmp_path, "2m"))
    assert interval(ctx, "wms", "30s") == timedelta(seconds=30)


def test_no_interval_anywhere_is_refused(tmp_path: Path) -> None:
    ctx = Context.load(_with_heartbeat(tmp_path, None))
    with pytest.raises(UsageError, match=r"--every .*\[sources\.wms\.objectives\]"):
        interval(ctx, "wms", None)


@pytest.mark.parametrize("every", ["soon", "0s", "1x"])
def test_a_bad_every_is_refused(tmp_path: Path, every: str) -> None:
    ctx = Context.load(_with_heartbeat(tmp_path, None))
    with pytest.raises(UsageError, match="--every"):
        interval(ctx, "wms", every)


def test_the_command_refuses_before_connecting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the source's host (db.internal) does not resolve: a refusal that came after trying
    # to connect would say so instead
    config = str(_with_heartbeat(tmp_path, None))
    assert run(["--config", config, "heartbeat", "wms"]) == 2
    assert "--every" in one_error_line(capsys.readouterr().err)
    assert run(["--config", config, "heartbeat", "wms", "--once", "--every", "1m"]) == 2
    assert "--once" in one_error_line(capsys.readouterr().err)
    assert run(["--config", config, "heartbeat", "nosuch", "--once"]) == 2
    assert "unknown source 'nosuch'" in one_error_line(capsys.readouterr().err)
