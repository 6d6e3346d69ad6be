"""restore's role, ownership and parallelism options: refused where they mean nothing (exit 2,
one line)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.helpers import one_error_line, run, write_config

# each option, with the value it takes ("{tmp}": the test's folder)
LOGICAL_ONLY = [
    ["--create-roles"],
    ["--no-owner"],
    ["--no-privileges"],
    ["--jobs", "2"],
    ["--work-dir", "{tmp}"],
]


def _given(option: list[str], tmp_path: Path) -> list[str]:
    return [part.replace("{tmp}", str(tmp_path)) for part in option]


@pytest.mark.parametrize("option", LOGICAL_ONLY, ids=lambda option: option[0])
def test_logical_options_are_refused_with_pgdata(
    option: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    code = run(
        [
            "--config",
            str(config),
            "restore",
            "wms",
            "--pgdata",
            str(tmp_path / "pg"),
            *_given(option, tmp_path),
        ]
    )
    assert code == 2
    assert "are for a logical restore, not with --pgdata" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("option", LOGICAL_ONLY, ids=lambda option: option[0])
def test_full_restore_options_are_refused_with_table(
    option: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    code = run(
        ["--config", str(config), "restore", "wms", "--table", "lots", *_given(option, tmp_path)]
    )
    assert code == 2
    assert "are for a full restore" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    ("option", "complaint"),
    [
        (["--jobs", "0"], "0 is not in the range x>=1"),
        (["--work-dir", "{tmp}/missing"], "does not exist"),
    ],
)
def test_bad_jobs_and_work_dir_are_usage_errors(
    option: list[str], complaint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    code = run(["--config", str(config), "restore", "wms", *_given(option, tmp_path)])
    assert code == 2
    assert complaint in capsys.readouterr().err
