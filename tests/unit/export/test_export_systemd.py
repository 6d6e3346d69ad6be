"""`lifeboat export systemd`: the units read back, checked by the real `systemd-analyze
verify`, and their OnCalendar= timing compared with croniter's by `systemd-analyze
calendar`."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from lifeboat.config.model import ScheduleConfig
from lifeboat.errors import EXIT_USAGE
from lifeboat.export.schedule import on_calendar
from tests.unit.export.configs import JOBS, LIFEBOAT, USER, write_export_config
from tests.unit.helpers import one_error_line, run

Unit = dict[str, list[tuple[str, str]]]


def read_unit(path: Path) -> Unit:
    """section -> its (key, value) lines in order (a key may come back, as ReadWritePaths=)."""
    sections: Unit = {}
    current: list[tuple[str, str]] = []
    for line in path.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
        else:
            key, _, value = line.partition("=")
            current.append((key, value))
    return sections


def values(unit: Unit, section: str, key: str) -> list[str]:
    return [v for k, v in unit[section] if k == key]


def exec_argv(unit: Unit) -> list[str]:
    (line,) = values(unit, "Service", "ExecStart")
    return [word.replace("%%", "%") for word in shlex.split(line)]


def export(config: Path, output: Path, *extra: str) -> int:
    return run(
        ["--config", str(config), "export", "systemd", "--output", str(output),
         "--lifeboat", str(LIFEBOAT), "--user", USER, *extra]
    )  # fmt: skip


def systemd_analyze(*args: str) -> subprocess.CompletedProcess[str]:
    """The real systemd-analyze, its times shown in UTC."""
    return subprocess.run(
        ["systemd-analyze", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, "TZ": "UTC"},
    )


def verify(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    return systemd_analyze("verify", *map(str, paths))


def security_review(unit: Path) -> subprocess.CompletedProcess[str]:
    return systemd_analyze("security", "--offline=yes", "--threshold=35", str(unit))


def test_every_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    # a space and a % in the config's path: ExecStart= must quote and escape them
    folder = tmp_path / "etc 100%"
    folder.mkdir()
    config = write_export_config(folder)
    assert export(config, tmp_path / "units") == 0
    units = sorted((tmp_path / "units").iterdir())
    assert [u.name for u in units] == sorted(
        [f"lifeboat-{name}.{kind}" for name in
         ("wms-hourly", "wms-drill", "verify-deep", "prune", "offsite")
         for kind in ("service", "timer")] + ["lifeboat-daemon.service"]
    )  # fmt: skip
    checked = verify(units)
    assert (checked.returncode, checked.stderr) == (0, "")
    # systemd's own review of the sandboxing: exposure 3.5 of 10 at most ("OK")
    for path in [u for u in units if u.suffix == ".service"]:
        reviewed = security_review(path)
        assert reviewed.returncode == 0, reviewed.stdout
    service = read_unit(tmp_path / "units" / "lifeboat-wms-hourly.service")
    assert exec_argv(service) == [
        str(LIFEBOAT), "--config", str(config), "backup", "wms", "--type", "logical"
    ]  # fmt: skip


def test_the_security_review_fails_an_unhardened_unit(tmp_path: Path) -> None:
    """The review above can fail: a service with the same command and no sandboxing."""
    plain = tmp_path / "plain.service"
    plain.write_text(f"[Service]\nType=oneshot\nExecStart={LIFEBOAT} --help\n")
    assert security_review(plain).returncode != 0


def test_verify_fails_on_a_unit_whose_program_is_missing(tmp_path: Path) -> None:
    """The check above can fail: the same units naming a lifeboat that does not exist."""
    config = write_export_config(tmp_path)
    assert export(config, tmp_path / "units", "--lifeboat", str(tmp_path / "no-lifeboat")) == 0
    checked = verify([tmp_path / "units" / "lifeboat-prune.service"])
    assert checked.returncode != 0
    assert "no-lifeboat" in checked.stderr


def test_the_units_say_what_the_jobs_run_and_may_write(tmp_path: Path) -> None:
    config = write_export_config(tmp_path)
    assert export(config, tmp_path / "units", "--protect-home", "tmpfs") == 0
    unit = {p.name: read_unit(p) for p in (tmp_path / "units").iterdir()}
    commands = {name: exec_argv(u)[3:] for name, u in unit.items() if name.endswith(".service")}
    assert commands == {
        "lifeboat-wms-hourly.service": ["backup", "wms", "--type", "logical"],
        "lifeboat-wms-drill.service": ["drill", "wms"],
        "lifeboat-verify-deep.service": ["verify", "wms", "--deep", "--repo", "local"],
        "lifeboat-prune.service": ["prune"],
        "lifeboat-offsite.service": [
            "copy", "--from", "local", "--to", "offsite", "--source", "wms"
        ],
        "lifeboat-daemon.service": ["daemon"],
    }  # fmt: skip
    backup = unit["lifeboat-wms-hourly.service"]
    assert values(backup, "Service", "Type") == ["oneshot"]
    assert values(backup, "Service", "User") == [USER]
    assert values(backup, "Service", "ProtectSystem") == ["strict"]
    assert values(backup, "Service", "ProtectHome") == ["tmpfs"]
    assert values(backup, "Service", "CapabilityBoundingSet") == [""]
    assert values(backup, "Service", "StateDirectory") == ["lifeboat"]
    assert values(backup, "Service", "TimeoutStartSec") == ["infinity"]
    assert values(backup, "Service", "MemoryDenyWriteExecute") == ["true"]
    writable = values(backup, "Service", "ReadWritePaths")
    for folder in (tmp_path / "repo", tmp_path / "spool", tmp_path / "textfile"):
        assert f"-{folder}" in writable
    # a drill's scratch PostgreSQL may JIT-compile: no MemoryDenyWriteExecute there
    assert values(unit["lifeboat-wms-drill.service"], "Service", "MemoryDenyWriteExecute") == []
    assert values(unit["lifeboat-prune.service"], "Service", "TimeoutStartSec") == ["7200s"]
    timer = unit["lifeboat-wms-hourly.timer"]
    assert values(timer, "Timer", "OnCalendar") == ["*-*-* *:00:00 Europe/Berlin"]
    assert values(timer, "Timer", "Persistent") == ["true"]
    assert values(timer, "Timer", "RandomizedDelaySec") == ["300s"]
    assert values(timer, "Install", "WantedBy") == ["timers.target"]
    assert values(unit["lifeboat-prune.timer"], "Timer", "RandomizedDelaySec") == []
    daemon = unit["lifeboat-daemon.service"]
    assert values(daemon, "Service", "Type") == ["simple"]
    assert values(daemon, "Service", "Restart") == ["on-failure"]


# expressions and zones whose next runs systemd and croniter must agree on
CALENDARS = [
    ("0 * * * *", "UTC"),
    ("*/15 * * * *", "Europe/Berlin"),
    ("5 2 * * *", "America/New_York"),
    ("30 1 * * 1-5", "Asia/Kolkata"),
    ("0 4 1 */3 *", "Europe/Berlin"),
    ("0 0,12 1,15 * *", "Australia/Sydney"),
    ("10-40/10 8-18 * jan,jul *", "UTC"),
    ("0 6 * * 6,0", "Pacific/Auckland"),
    ("0 0 29 2 *", "UTC"),
]
ITERATIONS = 12
_ELAPSE = re.compile(r"(?:Next elapse|Iter\. #\d+): \w{3} (\S+ \S+) UTC$")


def systemd_instants(spec: str) -> list[datetime]:
    shown = systemd_analyze("calendar", f"--iterations={ITERATIONS}", spec)
    assert shown.returncode == 0, shown.stderr
    found = [_ELAPSE.search(line.strip()) for line in shown.stdout.splitlines()]
    return [datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC) for m in found if m]


@pytest.mark.parametrize(("cron", "zone"), CALENDARS)
def test_systemd_runs_the_job_when_croniter_does(cron: str, zone: str) -> None:
    job = ScheduleConfig(job="prune", cron=cron, timezone=zone)
    spec = on_calendar(job, "schedule.x")
    before = datetime.now(UTC)
    instants = systemd_instants(spec)
    after = datetime.now(UTC)
    assert len(instants) == ITERATIONS
    # croniter counted from just before systemd's first run: the same instants
    start = (instants[0] - timedelta(seconds=1)).astimezone(ZoneInfo(zone))
    expected = croniter(cron, start)
    assert instants == [expected.get_next(datetime).astimezone(UTC) for _ in instants]
    # and that first run is croniter's first after systemd looked (somewhen between
    # before and after): the first after before, or the next if that one was passing
    upcoming = croniter(cron, before.astimezone(ZoneInfo(zone)))
    first = upcoming.get_next(datetime).astimezone(UTC)
    assert instants[0] == (first if first > after else upcoming.get_next(datetime))


def test_an_existing_unit_is_replaced_only_with_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_export_config(tmp_path)
    units = tmp_path / "units"
    assert export(config, units) == 0
    timer = units / "lifeboat-prune.timer"
    timer.write_text("edited by hand\n")
    capsys.readouterr()
    assert export(config, units) == EXIT_USAGE
    assert "exists: give --force to replace it" in one_error_line(capsys.readouterr().err)
    assert timer.read_text() == "edited by hand\n"
    assert export(config, units, "--force") == 0
    assert "OnCalendar=" in timer.read_text()


@pytest.mark.parametrize(
    ("jobs", "message"),
    [
        (
            '[schedule.monthly-or-monday]\njob = "prune"\ncron = "0 4 1 * 1"\n',
            "schedule.monthly-or-monday: cron = '0 4 1 * 1' restricts both the day of month",
        ),
        (
            '[schedule.last-day]\njob = "prune"\ncron = "0 4 L * *"\n',
            "schedule.last-day: cron = '0 4 L * *' uses 'L'",
        ),
        (
            '[schedule.seven]\njob = "prune"\nevery = "7h"\n',
            "schedule.seven: every = '7h' cannot be written as a cron schedule",
        ),
        (
            '[schedule.quarterly]\njob = "report"\ncron = "0 6 1 1,4,7,10 *"\n',
            "schedule.quarterly: a report job is not exported",
        ),
        (
            '[schedule."wms hourly"]\njob = "prune"\ncron = "0 * * * *"\n',
            "schedule.wms hourly: the name cannot be part of a unit name",
        ),
    ],
)
def test_a_job_systemd_cannot_run_is_one_line_exit_2_and_nothing_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], jobs: str, message: str
) -> None:
    config = write_export_config(tmp_path, JOBS + jobs)
    assert export(config, tmp_path / "units") == EXIT_USAGE
    assert message in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "units").exists()


def test_job_exports_only_the_jobs_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = '[schedule.quarterly]\njob = "report"\ncron = "0 6 1 1,4,7,10 *"\n'
    config = write_export_config(tmp_path, JOBS + report)
    units = tmp_path / "units"
    capsys.readouterr()
    assert export(config, units, "--job", "prune", "--job", "wms-drill", "--json") == 0
    written = json.loads(capsys.readouterr().out)["written"]
    assert sorted(written) == sorted(str(p) for p in units.iterdir())
    assert sorted(p.name for p in units.iterdir()) == [
        "lifeboat-daemon.service",
        "lifeboat-prune.service",
        "lifeboat-prune.timer",
        "lifeboat-wms-drill.service",
        "lifeboat-wms-drill.timer",
    ]


def test_an_unknown_job_or_user_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_export_config(tmp_path)
    assert export(config, tmp_path / "units", "--job", "nightly") == EXIT_USAGE
    assert "no scheduled job 'nightly' (configured: wms-hourly," in one_error_line(
        capsys.readouterr().err
    )
    assert export(config, tmp_path / "units", "--user", "no-such-user-here") == EXIT_USAGE
    assert "user 'no-such-user-here' does not exist on this host" in one_error_line(
        capsys.readouterr().err
    )
    assert not (tmp_path / "units").exists()


def test_a_relative_local_repository_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the units run from /, not from where the config was written
    config = write_export_config(tmp_path, repository="backups/repo")
    assert export(config, tmp_path / "units") == EXIT_USAGE
    assert "repositories.local.url = 'backups/repo' is a relative path" in one_error_line(
        capsys.readouterr().err
    )


def test_a_jobs_ping_url_is_pinged_by_the_command_the_unit_and_the_line_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a % in the check's URL: ExecStart= escapes it, cron's line too
    url = "https://hc-ping.example/ab%2Fcd"
    jobs = JOBS.replace("[schedule.prune]\n", f'[schedule.prune]\nping_url = "{url}"\n')
    config = write_export_config(tmp_path, jobs)
    assert export(config, tmp_path / "units") == 0
    prune = read_unit(tmp_path / "units" / "lifeboat-prune.service")
    assert exec_argv(prune)[-2:] == ["--ping", url]
    drill = read_unit(tmp_path / "units" / "lifeboat-wms-drill.service")
    assert "--ping" not in exec_argv(drill)
    checked = verify(sorted((tmp_path / "units").iterdir()))
    assert (checked.returncode, checked.stderr) == (0, "")

    assert run(["--config", str(config), "export", "cron", "--lifeboat", str(LIFEBOAT)]) == 0
    (line,) = [line for line in capsys.readouterr().out.splitlines() if " prune --ping" in line]
    assert "--ping https://hc-ping.example/ab\\%2Fcd" in line
