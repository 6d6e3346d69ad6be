"""`lifeboat export cron`: the crontab read back, and one of its lines run by /bin/sh as
cron runs it: the environment file read, flock keeping a second run out, the real
lifeboat doing the job (a prune), also under the kernel's memory-deny-write-execute."""

from __future__ import annotations

import fcntl
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from lifeboat.config.load import load_config
from lifeboat.export.command import selected_jobs
from lifeboat.export.crontab import CrontabOptions, crontab, host_zone
from lifeboat.storage.local import LocalStorage
from tests.cronlines import (
    deny_write_execute,
    entries,
    kernel_denies_write_execute,
    run_as_cron,
)
from tests.unit.backups import commit_physical
from tests.unit.export.configs import JOBS, LIFEBOAT, write_export_config
from tests.unit.helpers import initialised, one_error_line, run


def export(config: Path, *extra: str) -> int:
    return run(["--config", str(config), "export", "cron", "--lifeboat", str(LIFEBOAT), *extra])


def test_each_job_is_one_line_in_its_zone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the jobs are in two zones: one of them is not the host's, whichever that is
    config = write_export_config(tmp_path)
    assert export(config) == 0
    crontab = capsys.readouterr().out
    lines = crontab.splitlines()
    assert [line for line in lines if line.startswith("CRON_TZ=")] == [
        "CRON_TZ=Europe/Berlin", "CRON_TZ=UTC", "CRON_TZ=UTC", "CRON_TZ=UTC", "CRON_TZ=UTC"
    ]  # fmt: skip
    schedules = [schedule for schedule, _ in entries(crontab)]
    assert schedules == ["0 * * * *", "0 4 1 */3 *", "15 5 * * *", "0 */6 * * *", "30 2 * * 1-5"]
    commands = [shlex.split(command) for _, command in entries(crontab)]
    backup = commands[0]
    # the jitter (5m) as a fixed sleep, the lock of the source, the command, syslog
    sleep = backup.index("sleep")
    assert 0 <= int(backup[sleep + 1].rstrip(";")) < 300
    assert backup[backup.index("flock") : backup.index("flock") + 3] == [
        "flock", "-n", "/run/lock/lifeboat-wms.lock"
    ]  # fmt: skip
    assert backup[-3:] == ["logger", "-t", "lifeboat-wms-hourly"]
    assert f"{LIFEBOAT} --config {config} backup wms --type logical 2>&1" in " ".join(backup)
    # the drill shares the source's lock; prune (no source) has its own
    assert "/run/lock/lifeboat-wms.lock" in commands[1]
    assert "/run/lock/lifeboat-prune.lock" in commands[3]
    # prune's timeout (2h): SIGTERM then, SIGKILL a minute later
    assert " ".join(commands[3]).count("flock -n /run/lock/lifeboat-prune.lock timeout ") == 1
    assert commands[3][commands[3].index("timeout") : commands[3].index("timeout") + 4] == [
        "timeout", "--kill-after=60", "7200", str(LIFEBOAT)
    ]  # fmt: skip
    assert "timeout" not in commands[0]


def test_no_cron_tz_when_every_job_is_in_the_hosts_zone(tmp_path: Path) -> None:
    jobs = '[schedule.nightly]\njob = "prune"\ndaily_at = "02:00"\ntimezone = "Europe/Berlin"\n'
    config = load_config(write_export_config(tmp_path, jobs))
    options = CrontabOptions(LIFEBOAT, tmp_path / "lifeboat.toml")
    in_berlin = crontab(selected_jobs(config, ()), options, host="Europe/Berlin")
    assert "CRON_TZ" not in in_berlin
    assert [s for s, _ in entries(in_berlin)] == ["0 2 * * *"]
    # the same job on a host in UTC is read in Berlin's zone where cron can
    in_utc = crontab(selected_jobs(config, ()), options, host="Etc/UTC")
    assert "CRON_TZ=Europe/Berlin\n0 2 * * * " in in_utc


def test_the_hosts_zone_is_the_one_cron_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Pacific/Chatham")  # the exporting shell's: cron does not see it
    found = host_zone()
    assert found != "Pacific/Chatham"
    localtime = Path("/etc/localtime")
    if localtime.is_symlink():
        assert found is not None and os.readlink(localtime).endswith(f"zoneinfo/{found}")


def test_the_crontab_file_is_replaced_only_with_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_export_config(tmp_path)
    target = tmp_path / "lifeboat.cron"
    assert export(config, "--output", str(target)) == 0
    target.write_text("# mine\n")
    assert export(config, "--output", str(target)) == 2
    assert f"{target} exists: give --force" in one_error_line(capsys.readouterr().err)
    assert target.read_text() == "# mine\n"
    assert export(config, "--output", str(target), "--force") == 0
    assert "lifeboat-prune" in target.read_text()


def test_an_interval_cron_cannot_run_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_export_config(tmp_path, JOBS + '[schedule.odd]\njob = "prune"\nevery = "7h"\n')
    assert export(config) == 2
    out, err = capsys.readouterr()
    assert "schedule.odd: every = '7h' cannot be written as a cron schedule" in one_error_line(err)
    assert out == ""


PRUNE_JOB = """
[schedule.prune-local]
job = "prune"
repository = "local"
cron = "0 3 * * *"

[notifications.pager]
type = "webhook"
url = "${PAGER_URL}"
# the receiver is never there: one refused attempt, no retries' backoff to wait out
retries = 0

[retention]
keep_last = 1
"""


@pytest.mark.parametrize("deny_wx", [False, True], ids=["plain", "mdwe"])
def test_the_line_runs_the_job_once_and_never_beside_itself(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    deny_wx: bool,
) -> None:
    if deny_wx and not kernel_denies_write_execute():
        pytest.skip("this kernel has no PR_SET_MDWE (Linux < 6.3)")
    # a space and a % in the paths: quoted for sh, % escaped for cron
    folder = tmp_path / "etc 100%"
    folder.mkdir()
    repository = initialised("local", LocalStorage(folder / "repo"))
    for hours in (1, 2, 3):
        commit_physical(repository, hours)
    config = write_export_config(folder, PRUNE_JOB)
    environment = tmp_path / "lifeboat.env"
    locks = tmp_path / "locks"
    locks.mkdir()
    # exporting validates the config as the jobs will: its variables must be set
    monkeypatch.setenv("PAGER_URL", "http://127.0.0.1:9/unused")
    assert (
        export(
            config, "--job", "prune-local", "--lock-dir", str(locks),
            "--environment-file", str(environment),
        )
        == 0
    )  # fmt: skip
    ((_, command),) = entries(capsys.readouterr().out)

    def backups() -> int:
        return len(repository.list_backups("wms"))

    # without the environment file PAGER_URL is unset: lifeboat refuses the config
    run_as_cron(command, tmp_path, deny_wx)
    assert backups() == 3
    environment.write_text("PAGER_URL='http://127.0.0.1:9/never-called'\n")
    # another run of the source holds its lock: this one does not start
    with (locks / "lifeboat-prune-local.lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        run_as_cron(command, tmp_path, deny_wx)
        assert backups() == 3
    run_as_cron(command, tmp_path, deny_wx)
    assert backups() == 1
    if deny_wx:
        # what a backup adds to a prune: age keys and encryption, zstd on threads, libpq
        keys = tmp_path / "keys"
        subprocess.run(
            [str(LIFEBOAT), "keygen", "--output", str(keys)],
            preexec_fn=deny_write_execute,
            check=True,
            capture_output=True,
            timeout=60,
        )
        script = (
            "import psycopg, pyrage, zstandard, google_crc32c\n"
            "from pyrage import x25519\n"
            "key = x25519.Identity.generate()\n"
            "data = zstandard.ZstdCompressor(level=1, threads=2).compress(b'wms' * 100000)\n"
            "box = pyrage.encrypt(data, [key.to_public()])\n"
            "assert zstandard.ZstdDecompressor().decompress(pyrage.decrypt(box, [key]))"
            " == b'wms' * 100000\n"
            "google_crc32c.value(data)\n"
        )
        subprocess.run(
            [sys.executable, "-c", script],
            preexec_fn=deny_write_execute,
            check=True,
            timeout=60,
        )


def test_the_lines_name_the_lifeboat_that_exported_them(tmp_path: Path) -> None:
    """Started as a program (not in-process), the export names its own executable."""
    config = write_export_config(tmp_path)
    printed = subprocess.run(
        [str(LIFEBOAT), "--config", str(config), "export", "cron", "--job", "prune"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    ((_, command),) = entries(printed)
    assert f" {LIFEBOAT} --config {config} prune 2>&1 " in command


def test_a_config_without_jobs_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_export_config(tmp_path, jobs="")
    assert export(config) == 2
    assert "the config has no [schedule.NAME] job to export" in one_error_line(
        capsys.readouterr().err
    )
