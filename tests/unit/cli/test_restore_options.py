"""restore's role and ownership options: refused where they mean nothing (exit 2, one line)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.helpers import one_error_line, run, write_config


@pytest.mark.parametrize("option", ["--create-roles", "--no-owner", "--no-privileges"])
def test_role_options_are_refused_with_pgdata(
    option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    code = run(
        ["--config", str(config), "restore", "wms", "--pgdata", str(tmp_path / "pg"), option]
    )
    assert code == 2
    assert "are for a logical restore, not with --pgdata" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("option", ["--create-roles", "--no-owner", "--no-privileges"])
def test_role_options_are_refused_with_table(
    option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    code = run(["--config", str(config), "restore", "wms", "--table", "lots", option])
    assert code == 2
    assert "are for a full restore" in one_error_line(capsys.readouterr().err)
