"""A DSN given on the command line: ${NAME} expanded, a written-out password warned about
and never shown, and options that do not go together refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifeboat.config.variables import written_password
from tests.unit.helpers import run, write_config

SECRET = "hunter2-on-argv"
WARNING = "is visible to every user of this host"


@pytest.mark.parametrize(
    ("dsn", "written"),
    [
        (f"postgresql://backup:{SECRET}@db/wms", True),
        (f"host=db user=backup password={SECRET} dbname=wms", True),
        (f"postgresql://backup@db/wms?password={SECRET}", True),
        ("postgresql://backup:${DB_PASSWORD}@db/wms", False),
        ("host=db password=${DB_PASSWORD}", False),
        ("host=db password=x${DB_PASSWORD}", True),  # part of it is on the command line
        ("postgresql://backup@db/wms", False),
        ("postgresql://backup:@db/wms", False),
        ("host=db password='' dbname=wms", False),
        ("not a = valid = dsn", False),  # using it reports why
    ],
)
def test_written_password(dsn: str, written: bool) -> None:
    assert written_password(dsn) is written


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config with one initialised, empty repository."""
    monkeypatch.delenv("LB_TARGET_PASSWORD", raising=False)
    path = write_config(tmp_path)
    assert run(["--config", str(path), "init"]) == 0
    return path


def test_a_written_password_draws_one_warning_and_is_never_shown(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    dsn = f"postgresql://backup:{SECRET}@127.0.0.1:1/wms"
    # the repository holds no backup: the restore fails after the options are read
    code = run(["--config", str(config), "restore", "wms", "--target-dsn", dsn])
    out, err = capsys.readouterr()
    assert code == 1
    warnings = [line for line in err.splitlines() if WARNING in line]
    assert len(warnings) == 1, err
    assert "--target-dsn" in warnings[0] and "--target-password-file" in warnings[0]
    assert err.endswith("lifeboat: error: no logical backup of wms in repository local\n")
    assert SECRET not in out + err


def test_a_password_from_the_environment_draws_no_warning(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    capsys.readouterr()
    monkeypatch.setenv("LB_TARGET_PASSWORD", SECRET)
    dsn = "postgresql://backup:${LB_TARGET_PASSWORD}@127.0.0.1:1/wms"
    assert run(["--config", str(config), "restore", "wms", "--target-dsn", dsn]) == 1
    out, err = capsys.readouterr()
    assert WARNING not in err
    assert SECRET not in out + err


def test_an_unset_variable_in_target_dsn_is_a_usage_error(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    dsn = "postgresql://backup:${LB_TARGET_PASSWORD}@db/wms"
    assert run(["--config", str(config), "restore", "wms", "--target-dsn", dsn]) == 2
    assert capsys.readouterr().err == (
        "lifeboat: error: --target-dsn: environment variable LB_TARGET_PASSWORD is not set\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target-password-file", "/run/pw"], "--target-password-file goes with --target-dsn"),
        (
            ["--pgdata", "/srv/pgdata", "--target-dsn", "host=db"],
            "--target-dsn, --target-password-file, --target-db and --table are for a logical "
            "restore, not with --pgdata",
        ),
        (
            ["--pgdata", "/srv/pgdata", "--table", "lots"],
            "--target-dsn, --target-password-file, --target-db and --table are for a logical "
            "restore, not with --pgdata",
        ),
    ],
)
def test_options_that_do_not_go_together(
    config: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    capsys.readouterr()
    assert run(["--config", str(config), "restore", "wms", *args]) == 2
    assert capsys.readouterr().err == f"lifeboat: error: {message}\n"
    assert not Path("/srv/pgdata").exists()
