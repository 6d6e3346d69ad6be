"""A cluster archiving into a Lifeboat repository, as PostgreSQL's OS user runs Lifeboat."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from lifeboat.commands.keygen import write_identity
from lifeboat.postgres.instance import ScratchCluster

from .helpers import LIFEBOAT


def as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def free_port() -> int:
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
            as_postgres([LIFEBOAT, "--config", str(self.config), *args]),
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"lifeboat {' '.join(args)}: {result.stderr}")
        return result

    @contextmanager
    def started_copy(self, name: str, *restore_options: str) -> Iterator[int]:
        """`restore` into home/name, started on a free port (yielded) and stopped after.
        Archiving is off: a copy must not archive its new timeline into the source's WAL."""
        pgdata = self.home / name
        port = free_port()
        self.lifeboat(
            "restore",
            "wms",
            "--pgdata",
            str(pgdata),
            *restore_options,
            "--archive-mode",
            "off",
            "--start",
            "--port",
            str(port),
        )
        try:
            yield port
        finally:
            stop_cluster(pgdata, self.cluster.bin_dir)

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


@contextmanager
def archiving_cluster(
    pg_bin_dir: Path,
    source_extra: str = "",
    settings: dict[str, str] | None = None,
) -> Iterator[Archiving]:
    """source_extra: TOML lines appended to [sources.wms] (e.g. an archive table)."""
    home = Path(tempfile.mkdtemp(prefix="lifeboat-pitr-"))
    home.chmod(0o755)
    owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
    if owner is not None:
        os.chown(home, owner.pw_uid, owner.pw_gid)
        if subprocess.run(as_postgres(["test", "-x", LIFEBOAT])).returncode != 0:
            shutil.rmtree(home)
            pytest.skip(f"the postgres user cannot run {LIFEBOAT} (checkout not reachable)")
    key = home / "age.key"
    public = write_identity(key)
    config = home / "lifeboat.toml"
    command = f"{LIFEBOAT} --config {config} wal-push wms %p"
    cluster = ScratchCluster(
        pg_bin_dir,
        settings={
            "archive_mode": "on",
            "archive_command": command,
            "track_commit_timestamp": "on",
            **(settings or {}),
        },
    )
    cluster.init()
    config.write_text(
        f'[repositories.local]\nurl = "{home / "repo"}"\n'
        f'[encryption]\nage_recipients = ["{public}"]\nage_identity_file = "{key}"\n'
        f'[sources.wms]\ndsn = "{cluster.dsn()}"\npg_bin_dir = "{pg_bin_dir}"\n'
        f"{source_extra}"
    )
    if owner is not None:
        for path in (key, config):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    config.chmod(0o644)
    subprocess.run(
        as_postgres([LIFEBOAT, "--config", str(config), "init"]), check=True, capture_output=True
    )
    cluster.start()
    cluster.psql("CREATE TABLE events (id int PRIMARY KEY)")
    try:
        yield Archiving(cluster, home, config)
    finally:
        cluster.destroy()
        shutil.rmtree(home, ignore_errors=True)


def stop_cluster(pgdata: Path, bin_dir: Path) -> None:
    subprocess.run(
        as_postgres([str(bin_dir / "pg_ctl"), "stop", "-D", str(pgdata), "-m", "fast"]),
        capture_output=True,
    )


def events(port: int) -> list[int]:
    import psycopg

    with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres") as conn:
        return [r[0] for r in conn.execute("SELECT id FROM events ORDER BY id")]


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
