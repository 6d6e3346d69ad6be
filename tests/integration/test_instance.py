"""The scratch-cluster helper itself: start, query, authenticate, fail loudly."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from lifeboat.errors import DatabaseError, ToolError, UsageError
from lifeboat.postgres.binaries import bin_dir_major, find_bin_dirs
from lifeboat.postgres.instance import ScratchCluster

from .archiving import Archiving, events
from .versions import on_oldest_major


def test_find_bin_dirs_one_per_major_sorted() -> None:
    dirs = find_bin_dirs()
    majors = [bin_dir_major(d) for d in dirs]
    assert majors == sorted(set(majors))
    for d in dirs:
        assert (d / "initdb").exists() and (d / "pg_ctl").exists()


def test_cluster_reports_its_version(pg_cluster: ScratchCluster) -> None:
    version_num = int(pg_cluster.psql("SHOW server_version_num"))
    assert version_num // 10000 == pg_cluster.major
    assert pg_cluster.psql("SHOW port") == str(pg_cluster.port)


def test_cluster_is_ready_for_physical_backups(pg_cluster: ScratchCluster) -> None:
    out = pg_cluster.psql(
        "SHOW wal_level; SHOW max_wal_senders; SHOW data_checksums; SHOW listen_addresses"
    )
    assert out.splitlines() == ["replica", "10", "on", "127.0.0.1"]


def test_fresh_db_is_usable_over_psycopg(pg_cluster: ScratchCluster, fresh_db: str) -> None:
    pg_cluster.psql("CREATE TABLE t (id int PRIMARY KEY, v text)", dbname=fresh_db)
    with psycopg.connect(pg_cluster.dsn(fresh_db), autocommit=True) as conn:
        conn.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
        row = conn.execute("SELECT current_database(), count(*) FROM t").fetchone()
    assert row == (fresh_db, 2)


def test_psql_raises_with_server_error(pg_cluster: ScratchCluster) -> None:
    with pytest.raises(DatabaseError, match="no_such_table") as failed:
        pg_cluster.psql("SELECT * FROM no_such_table")
    assert "\n" not in str(failed.value)


@on_oldest_major  # the helper's own handling: the same on every major
def test_password_cluster_rejects_wrong_password(pg_bin_dir: Path) -> None:
    secret = "s3cret:with/odd@chars'"
    with ScratchCluster(pg_bin_dir, password=secret) as cluster:
        with psycopg.connect(cluster.dsn()) as conn:
            row = conn.execute("SELECT current_user").fetchone()
        assert row == ("postgres",)
        assert cluster.psql("SELECT 1") == "1"

        wrong = f"postgresql://postgres:wrong@127.0.0.1:{cluster.port}/postgres"
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(wrong, connect_timeout=10)
        base_dir = cluster.base_dir
    assert not base_dir.exists()


@on_oldest_major
def test_start_failure_reports_log_tail(pg_bin_dir: Path) -> None:
    cluster = ScratchCluster(pg_bin_dir, settings={"shared_buffers": "not-a-size"})
    try:
        cluster.init()
        with pytest.raises(ToolError, match="shared_buffers") as failed:
            cluster.start()
        assert "\n" not in str(failed.value)
    finally:
        cluster.destroy()
    assert not cluster.base_dir.exists()


@on_oldest_major
def test_stop_is_idempotent_and_restart_works(pg_bin_dir: Path) -> None:
    with ScratchCluster(pg_bin_dir) as cluster:
        cluster.psql("CREATE TABLE keep (x int); INSERT INTO keep VALUES (42)")
        cluster.stop()
        cluster.stop()
        assert not cluster.is_running()
        cluster.start()
        assert cluster.psql("SELECT x FROM keep") == "42"


# the wait for recovery's end it shares with `restore --start` and the physical drill runs
# on every major in test_pitr and test_drills_physical; the helper's own part is the same
@on_oldest_major
def test_a_restored_data_directory_recovers_in_a_scratch_instance(archiving: Archiving) -> None:
    """What a restore drill does: restore without starting, then let a scratch instance
    start the data directory on its own port and wait for recovery to end."""
    archiving.lifeboat("backup", "wms", "--type", "physical")
    archiving.commit(1, 12)
    archiving.switch_and_wait()
    drill = ScratchCluster(archiving.cluster.bin_dir, archiving.home / "drill")
    try:
        archiving.lifeboat(
            "restore", "wms", "--pgdata", str(drill.data_dir), "--latest", "--archive-mode", "off"
        )
        _, replayed_lsn = drill.recover()
        assert replayed_lsn is not None
        assert drill.psql("SELECT pg_is_in_recovery()") == "f"
        assert events(drill.port) == list(range(1, 13))
        assert drill.port != archiving.cluster.port
    finally:
        drill.destroy()


@on_oldest_major  # refused before any server starts
def test_recover_refuses_a_data_directory_no_restore_prepared(pg_bin_dir: Path) -> None:
    with ScratchCluster(pg_bin_dir) as cluster:
        cluster.stop()
        with pytest.raises(UsageError, match="no restored cluster waiting for recovery"):
            cluster.recover()
        assert not cluster.is_running()
