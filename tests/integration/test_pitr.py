"""Point-in-time recovery against real clusters: physical backups, the WAL archive, replay."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lifeboat.commands.keygen import write_identity
from lifeboat.postgres.instance import ScratchCluster

from .helpers import LIFEBOAT


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Archiving:
    """A cluster archiving into a Lifeboat repository, as the server's OS user does it."""

    cluster: ScratchCluster
    home: Path
    config: Path

    def lifeboat(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        # as the server's OS user, who owns the repository the archive_command writes
        result = subprocess.run(
            _as_postgres([LIFEBOAT, "--config", str(self.config), *args]),
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"lifeboat {' '.join(args)}: {result.stderr}")
        return result

    def switch_and_wait(self) -> None:
        segment = self.cluster.psql("SELECT pg_walfile_name(pg_current_wal_lsn())")
        self.cluster.psql("SELECT pg_switch_wal()")
        deadline = time.monotonic() + 60
        while (
            self.cluster.psql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")
            < segment
        ):
            assert time.monotonic() < deadline, "the segment was not archived in time"
            time.sleep(0.1)

    def commit(self, first: int, last: int, pause: float = 0.0) -> None:
        for i in range(first, last + 1):
            self.cluster.psql(f"INSERT INTO events VALUES ({i})")
            if pause:
                time.sleep(pause)

    def commit_time(self, event: int) -> str:
        return self.cluster.psql(
            f"SELECT pg_xact_commit_timestamp(xmin) FROM events WHERE id = {event}"
        )


@pytest.fixture
def archiving(pg_bin_dir: Path) -> Iterator[Archiving]:
    home = Path(tempfile.mkdtemp(prefix="lifeboat-pitr-"))
    home.chmod(0o755)
    owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
    if owner is not None:
        os.chown(home, owner.pw_uid, owner.pw_gid)
        if subprocess.run(_as_postgres(["test", "-x", LIFEBOAT])).returncode != 0:
            shutil.rmtree(home)
            pytest.skip(f"the postgres user cannot run {LIFEBOAT} (checkout not reachable)")
    key = home / "age.key"
    public = write_identity(key)
    config = home / "lifeboat.toml"
    command = f"{LIFEBOAT} --config {config} wal-push wms %p"
    cluster = ScratchCluster(
        pg_bin_dir,
        settings={"archive_mode": "on", "archive_command": command, "track_commit_timestamp": "on"},
    )
    cluster.init()
    config.write_text(
        f'[repositories.local]\nurl = "{home / "repo"}"\n'
        f'[encryption]\nage_recipients = ["{public}"]\nage_identity_file = "{key}"\n'
        f'[sources.wms]\ndsn = "{cluster.dsn()}"\npg_bin_dir = "{pg_bin_dir}"\n'
    )
    if owner is not None:
        for path in (key, config):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    config.chmod(0o644)
    subprocess.run(
        _as_postgres([LIFEBOAT, "--config", str(config), "init"]), check=True, capture_output=True
    )
    cluster.start()
    cluster.psql("CREATE TABLE events (id int PRIMARY KEY)")
    try:
        yield Archiving(cluster, home, config)
    finally:
        cluster.destroy()
        shutil.rmtree(home, ignore_errors=True)


def _restored(archiving: Archiving, name: str) -> Path:
    folder = archiving.home / name
    return folder


def _stop(pgdata: Path, bin_dir: Path) -> None:
    subprocess.run(
        _as_postgres([str(bin_dir / "pg_ctl"), "stop", "-D", str(pgdata), "-m", "fast"]),
        capture_output=True,
    )


def _events(port: int) -> list[int]:
    import psycopg

    with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres") as conn:
        return [r[0] for r in conn.execute("SELECT id FROM events ORDER BY id")]


def test_restore_to_a_time_yields_exactly_the_rows_committed_by_then(archiving: Archiving) -> None:
    archiving.commit(1, 5)
    made = archiving.lifeboat("backup", "wms", "--type", "physical", "--json")
    assert '"type": "physical"' in made.stdout
    archiving.commit(6, 15, pause=0.05)
    target = archiving.commit_time(10)
    archiving.commit(16, 20)
    archiving.switch_and_wait()

    pgdata = _restored(archiving, "at-time")
    port = _free_port()
    result = archiving.lifeboat(
        "restore",
        "wms",
        "--pgdata",
        str(pgdata),
        "--to-time",
        target,
        "--start",
        "--port",
        str(port),
    )
    try:
        assert "recovered to:" in result.stdout
        assert _events(port) == list(range(1, 11))
    finally:
        _stop(pgdata, archiving.cluster.bin_dir)


def test_restore_latest_after_losing_the_cluster(archiving: Archiving) -> None:
    archiving.lifeboat("backup", "wms", "--type", "physical")
    archiving.commit(1, 30)
    archiving.switch_and_wait()
    archiving.cluster.stop("immediate")
    shutil.rmtree(archiving.cluster.data_dir)

    pgdata = _restored(archiving, "latest")
    port = _free_port()
    archiving.lifeboat(
        "restore", "wms", "--pgdata", str(pgdata), "--latest", "--start", "--port", str(port)
    )
    try:
        assert _events(port) == list(range(1, 31))
    finally:
        _stop(pgdata, archiving.cluster.bin_dir)


def test_physical_backup_refuses_without_archiving(
    pg_cluster: ScratchCluster, tmp_path: Path
) -> None:
    key = tmp_path / "age.key"
    public = write_identity(key)
    config = tmp_path / "lifeboat.toml"
    config.write_text(
        f'[repositories.local]\nurl = "{tmp_path / "repo"}"\n'
        f'[encryption]\nage_recipients = ["{public}"]\n'
        f'[sources.wms]\ndsn = "{pg_cluster.dsn()}"\n'
    )
    subprocess.run([LIFEBOAT, "--config", str(config), "init"], check=True, capture_output=True)
    result = subprocess.run(
        [LIFEBOAT, "--config", str(config), "backup", "wms", "--type", "physical"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "archive_mode is off" in result.stderr
    assert "Traceback" not in result.stderr


def test_setup_archiving_and_check(archiving: Archiving) -> None:
    import json

    settings = json.loads(archiving.lifeboat("setup-archiving", "wms", "--json").stdout)
    by_name = {s["name"]: s for s in settings}
    assert by_name["archive_mode"]["ok"] and by_name["wal_level"]["ok"]
    assert "wal-push wms %p" in by_name["archive_command"]["wanted"]
    checked = json.loads(archiving.lifeboat("check", "wms", "--json").stdout)
    assert checked["segment"] and checked["seconds"] < 60

    # with archiving broken, check fails with one clear line
    archiving.cluster.psql(
        "ALTER SYSTEM SET archive_command = '/bin/false'; SELECT pg_reload_conf()"
    )
    deadline = time.monotonic() + 10
    while archiving.cluster.psql("SHOW archive_command") != "/bin/false":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(1)  # the archiver applies the reload on its own schedule
    failed = archiving.lifeboat("check", "wms", "--timeout", "3", check=False)
    assert failed.returncode == 1
    assert "did not reach repository local" in failed.stderr
    assert "Traceback" not in failed.stderr


def test_verify_reports_a_gap_in_the_wal_archive(archiving: Archiving) -> None:
    archiving.lifeboat("backup", "wms", "--type", "physical")
    for round_ in range(3):
        archiving.commit(round_ * 10 + 1, round_ * 10 + 10)
        archiving.switch_and_wait()
    assert archiving.lifeboat("verify", "wms").returncode == 0
    segments = sorted((archiving.home / "repo" / "wms" / "wal").rglob("0*-*.zst.age"))
    victim = [p for p in segments if ".backup-" not in p.name][-2]
    victim.unlink()
    failed = archiving.lifeboat("verify", "wms", check=False)
    assert failed.returncode == 1
    assert f"segment {victim.name.split('-')[0]} is missing" in failed.stderr


def test_restore_refuses_a_target_the_archive_cannot_reach(archiving: Archiving) -> None:
    archiving.lifeboat("backup", "wms", "--type", "physical")
    archiving.commit(1, 10)
    archiving.switch_and_wait()
    far = archiving.cluster.psql("SELECT pg_current_wal_lsn() + 64 * 1024 * 1024")
    pgdata = archiving.home / "unreachable"
    failed = archiving.lifeboat(
        "restore", "wms", "--pgdata", str(pgdata), "--to-lsn", far, check=False
    )
    assert failed.returncode == 1
    assert "the archive cannot reach LSN" in failed.stderr and "is missing" in failed.stderr
    assert not pgdata.exists() or not any(pgdata.iterdir())


def test_timeline_switch_then_restore_latest_on_the_new_timeline(archiving: Archiving) -> None:
    archiving.lifeboat("backup", "wms", "--type", "physical")
    archiving.commit(1, 10)
    archiving.switch_and_wait()
    archiving.cluster.stop("immediate")

    # the restored cluster is promoted onto timeline 2 and archives into the same source
    first = archiving.home / "first"
    port = _free_port()
    archiving.lifeboat(
        "restore", "wms", "--pgdata", str(first), "--latest", "--start", "--port", str(port)
    )
    try:
        promoted = ScratchClusterAt(port)
        assert promoted.sql(TIMELINE) == "00000002"
        promoted.sql("INSERT INTO events SELECT generate_series(11, 20)")
        second_config = archiving.home / "second.toml"
        second_config.write_text(
            archiving.config.read_text()
            .replace(f"port={archiving.cluster.port}", f"port={port}")
            .replace(f":{archiving.cluster.port}/", f":{port}/")
        )
        os.chmod(second_config, 0o644)
        subprocess.run(
            _as_postgres(
                [LIFEBOAT, "--config", str(second_config), "backup", "wms", "--type", "physical"]
            ),
            check=True,
            capture_output=True,
        )
        promoted.sql("INSERT INTO events SELECT generate_series(21, 25)")
        segment = promoted.sql("SELECT pg_walfile_name(pg_current_wal_lsn())")
        promoted.sql("SELECT pg_switch_wal()")
        deadline = time.monotonic() + 60
        while (
            promoted.sql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") < segment
        ):
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        _stop(first, archiving.cluster.bin_dir)

    second = archiving.home / "second"
    port2 = _free_port()
    archiving.lifeboat(
        "restore", "wms", "--pgdata", str(second), "--latest", "--start", "--port", str(port2)
    )
    try:
        assert _events(port2) == list(range(1, 26))
        assert ScratchClusterAt(port2).sql(TIMELINE) == "00000003"
    finally:
        _stop(second, archiving.cluster.bin_dir)


# the timeline new WAL is written on (pg_control's copy lags until the next checkpoint)
TIMELINE = "SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)"


@dataclass
class ScratchClusterAt:
    port: int

    def sql(self, statement: str) -> str:
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            cursor = conn.execute(statement)
            row = cursor.fetchone() if cursor.description else None
            return "" if row is None or row[0] is None else str(row[0])
