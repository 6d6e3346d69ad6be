"""Exports of the jobs of Redis, files and SQLite sources and of a group: the command
lines they run, and what a systemd unit lets them write."""

from __future__ import annotations

from pathlib import Path

from lifeboat.config.load import load_config
from lifeboat.export.command import ScheduledJob, job_arguments, selected_jobs
from lifeboat.export.systemd import writable_paths
from tests.unit.helpers import AgeKey
from tests.unit.kind_backups import KIND_JOBS, mixed_config

JOBS = (
    KIND_JOBS
    + """
[schedule.cache-drill]
source = "cache"
job = "drill"
cron = "0 4 * * 1"
"""
)


def test_the_jobs_of_other_kinds_and_of_a_group_run_their_commands(
    tmp_path: Path, age_key: AgeKey
) -> None:
    config = load_config(mixed_config(tmp_path, age_key, JOBS))
    arguments = {job.name: job_arguments(job) for job in selected_jobs(config, ())}
    assert arguments == {
        "cache": ["backup", "cache"],
        "nightly": ["backup", "--group", "nightly", "--parallel", "2"],
        "cache-drill": ["drill", "cache"],
    }
    # a group's runs never overlap each other, under the group's name
    assert ScheduledJob("nightly", config.schedule["nightly"]).lock_key == "nightly"


def test_a_unit_may_write_beside_an_sqlite_database(tmp_path: Path, age_key: AgeKey) -> None:
    config = load_config(mixed_config(tmp_path, age_key))
    writable = writable_paths(config, tmp_path / "home")
    # reading a database in WAL mode writes its -shm file: its folder is writable
    assert Path("/srv/inventory") in writable
    # the files and the Redis server are only read
    assert not {Path("/srv/app/uploads"), Path("/etc/app")} & set(writable)
