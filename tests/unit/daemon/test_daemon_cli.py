"""`lifeboat daemon` and `lifeboat schedule` from the command line: bad input is one line
and exit 2, a second daemon on one configuration refuses, the schedule is shown in each
job's time zone and in UTC."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lifeboat.daemon.state import config_key, lock_file
from lifeboat.util.singleton import held_or_none
from lifeboat.util.statedir import STATE_DIR_VARIABLE
from tests.unit.helpers import one_error_line, run, write_config

HOURLY_BACKUP = '[schedule.wms-hourly]\nsource = "wms"\njob = "backup"\ncron = "0 * * * *"\n'


@pytest.fixture
def state_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "state"
    monkeypatch.setenv(STATE_DIR_VARIABLE, str(folder))
    return folder


def config_with(tmp_path: Path, schedule: str) -> Path:
    config = write_config(tmp_path)
    config.write_text(config.read_text() + schedule)
    return config


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            '[schedule.x]\njob = "prune"\ncron = "0 25 * * *"\n',
            "schedule.x.cron: not a five-field cron expression: '0 25 * * *'",
        ),
        (
            '[schedule.x]\njob = "prune"\ncron = "0 * * * *"\ntimezone = "Europe/Berlni"\n',
            "schedule.x.timezone: unknown time zone 'Europe/Berlni'",
        ),
        (
            '[schedule.x]\njob = "backup"\nsource = "erp"\ndaily_at = "02:00"\n',
            "schedule.x.source names unknown source 'erp'",
        ),
        (
            '[schedule.x]\njob = "prune"\ndaily_at = "2am"\n',
            "schedule.x.daily_at: not a time of day as HH:MM: '2am'",
        ),
        (
            '[schedule.x]\njob = "prune"\nevery = "0s"\n',
            "schedule.x.every: every must be above 0s",
        ),
    ],
)
@pytest.mark.parametrize("command", ["daemon", "schedule"])
def test_bad_schedule_is_one_line_and_exit_2(
    tmp_path: Path,
    state_folder: Path,
    capsys: pytest.CaptureFixture[str],
    table: str,
    message: str,
    command: str,
) -> None:
    config = config_with(tmp_path, table)
    assert run(["--config", str(config), command]) == 2
    assert message in one_error_line(capsys.readouterr().err)
    assert not state_folder.exists()


def test_daemon_without_a_schedule_is_a_usage_error(
    tmp_path: Path, state_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path)
    assert run(["--config", str(config), "daemon", "--once"]) == 2
    assert "no [schedule.NAME] table" in one_error_line(capsys.readouterr().err)


def test_a_bad_grace_is_a_usage_error(
    tmp_path: Path, state_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_with(tmp_path, HOURLY_BACKUP)
    assert run(["--config", str(config), "daemon", "--grace", "soon"]) == 2
    assert "--grace: not a duration" in one_error_line(capsys.readouterr().err)


def test_a_second_daemon_on_the_same_config_refuses(
    tmp_path: Path, state_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_with(tmp_path, HOURLY_BACKUP)
    state_folder.mkdir()
    # a lock on another open file of the same path conflicts, as another process's would
    with held_or_none(lock_file(state_folder, config)) as held:
        assert held
        assert run(["--config", str(config), "daemon", "--once"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line == (
        f"lifeboat: error: another lifeboat daemon runs with {config} "
        f"(it holds {lock_file(state_folder, config)})"
    )


def test_schedule_shows_next_runs_in_the_zone_and_in_utc(
    tmp_path: Path, state_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_with(
        tmp_path,
        HOURLY_BACKUP
        + '[schedule.nightly]\njob = "prune"\ndaily_at = "02:00"\n'
        + 'timezone = "America/New_York"\njitter = "5m"\n',
    )
    assert run(["--config", str(config), "schedule", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    nightly = rows["nightly"]
    assert nightly["schedule"] == "daily at 02:00"
    assert nightly["next_run"][11:16] == f"02:0{nightly['jitter_seconds'] // 60}"
    assert nightly["next_run"][-6:] in ("-05:00", "-04:00")
    assert nightly["next_run_utc"].endswith("+00:00")
    assert nightly["last_result"] is None and nightly["last_started"] is None
    assert rows["wms-hourly"]["next_run"].endswith(":00:00+00:00")
    # shown as a table too
    assert run(["--config", str(config), "schedule"]) == 0
    out = capsys.readouterr().out
    assert "nightly" in out and "daily at 02:00 America/New_York" in out


def test_each_config_file_has_its_own_state_and_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    assert config_key(a) != config_key(b)
    assert config_key(Path("a.toml")) == config_key(a)  # relative or not, the same file
    assert lock_file(tmp_path, a).name == f"daemon-{config_key(a)}.lock"
