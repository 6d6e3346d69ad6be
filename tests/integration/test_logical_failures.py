"""Every failure a user will meet: one readable line, a non-zero exit, nothing lost."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifeboat.pipeline.crypto import write_identity
from lifeboat.postgres.instance import ScratchCluster
from tests.inprocess import run_lifeboat
from tests.mounts import small_tmpfs
from tests.waiting import wait_for

from .helpers import LIFEBOAT, Workspace, error_line, fill_rich, make_workspace, table_digests
from .versions import needs_pg17, on_oldest_major

# damaged objects, a wrong key, a killed backup and a full disk are the repository's and the
# pipeline's failures, whatever the server's version: those tests run on one major


@pytest.fixture(scope="module")
def big_db(pg_cluster: ScratchCluster) -> Iterator[str]:
    """About 150 MB of poorly compressible rows: a backup that takes long enough to interrupt."""
    name = "big_for_failures"
    pg_cluster.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    pg_cluster.psql(f"CREATE DATABASE {name}")
    pg_cluster.psql(
        "CREATE TABLE noise AS SELECT g AS id, md5(random()::text) || md5(random()::text) "
        "|| md5(random()::text) AS a FROM generate_series(1, 1500000) g",
        name,
    )
    yield name
    pg_cluster.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def backed_up(pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path) -> tuple[Workspace, str]:
    fill_rich(pg_cluster, fresh_db)
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db), in_process=True)
    return ws, ws.run_json("backup", "wms")["id"]


def _object(ws: Workspace, backup: str) -> Path:
    return ws.repo / "wms" / "backups" / backup / "dump.zst.age"


@on_oldest_major
def test_verify_catches_one_flipped_byte_and_restore_leaves_target_untouched(
    pg_cluster: ScratchCluster, fresh_db: str, backed_up: tuple[Workspace, str]
) -> None:
    ws, backup = backed_up
    assert ws.run("verify").returncode == 0
    stored = _object(ws, backup)
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x01
    stored.write_bytes(bytes(data))

    shallow = ws.run("verify")
    assert shallow.returncode == 1
    assert f"wms/backups/{backup}/dump.zst.age" in error_line(shallow)
    assert "sha256 mismatch" in shallow.stderr
    deep = ws.run("verify", "--deep")
    assert deep.returncode == 1 and "dump.zst.age" in error_line(deep)

    pg_cluster.psql("INSERT INTO other.lots VALUES (777, 'written after the backup')", fresh_db)
    before = table_digests(pg_cluster, fresh_db)
    failed = ws.run("restore", "wms", "--yes")
    assert failed.returncode == 1
    assert "corrupted" in error_line(failed)
    assert table_digests(pg_cluster, fresh_db) == before
    leftovers = pg_cluster.psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'lifeboat_%'")
    assert leftovers == "0"


@on_oldest_major
def test_truncated_object_is_reported(backed_up: tuple[Workspace, str]) -> None:
    ws, backup = backed_up
    stored = _object(ws, backup)
    data = stored.read_bytes()
    stored.write_bytes(data[: len(data) // 3])
    result = ws.run("verify")
    assert result.returncode == 1 and "truncated" in error_line(result)
    failed = ws.run("restore", "wms", "--target-db", "never_created")
    assert failed.returncode == 1
    assert "corrupted" in error_line(failed) or "truncated" in error_line(failed)


@on_oldest_major
def test_wrong_identity_fails_clearly_before_touching_anything(
    pg_cluster: ScratchCluster, fresh_db: str, backed_up: tuple[Workspace, str], tmp_path: Path
) -> None:
    ws, _ = backed_up
    other = tmp_path / "other.key"
    write_identity(other)
    text = ws.config.read_text().replace(str(ws.identity), str(other))
    ws.config.write_text(text)
    before = table_digests(pg_cluster, fresh_db)

    failed = ws.run("restore", "wms", "--yes")
    assert failed.returncode == 1
    assert "is not one this backup was encrypted to" in error_line(failed)
    assert table_digests(pg_cluster, fresh_db) == before
    # no safety backup either: the key is checked first
    assert len(ws.run_json("list")) == 1
    deep = ws.run("verify", "--deep")
    assert deep.returncode == 1 and "not one this backup was encrypted to" in deep.stderr
    # without a key at all, the stored-checksum verify still works
    assert ws.run("verify").returncode == 0

    (tmp_path / "other.key").unlink()
    missing = ws.run("restore", "wms", "--yes")
    assert missing.returncode == 1 and "not found" in error_line(missing)


@on_oldest_major
def test_kill_9_during_backup_leaves_nothing_listed_and_next_run_cleans_up(
    pg_cluster: ScratchCluster, big_db: str, tmp_path: Path
) -> None:
    ws = make_workspace(tmp_path, pg_cluster.dsn(big_db), in_process=True)
    process = subprocess.Popen(
        [LIFEBOAT, "--config", str(ws.config), "backup", "wms"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def written_a_megabyte() -> list[Path]:
        assert process.poll() is None, "the backup ended before it could be interrupted"
        return [p for p in ws.repo.rglob("dump.zst.age.tmp-*") if size_of(p) > 1 << 20]

    # killed once it has written that much, not after some time
    partial = wait_for(written_a_megabyte, "the backup to write its first megabyte")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()

    assert ws.run_json("list") == []
    assert ws.run("verify").returncode == 0
    leftover = partial[0].parent
    assert leftover.exists()  # what the killed run left behind ...

    again = ws.run_json("backup", "wms")
    assert again["removed_leftovers"] == [leftover.name]
    assert not leftover.exists()  # ... is gone after the next run
    assert [b["id"] for b in ws.run_json("list")] == [again["id"]]
    # the killed run's pg_dump ends at its next write into the pipe nobody reads any more
    wait_for(
        lambda: (
            pg_cluster.psql(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump'"
            )
            == "0"
        ),
        "no pg_dump session left",
    )


def size_of(path: Path) -> int:
    """0 once the file is gone (a temporary file renamed meanwhile)."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


@on_oldest_major
def test_full_disk_fails_cleanly(pg_cluster: ScratchCluster, big_db: str, tmp_path: Path) -> None:
    ws = make_workspace(tmp_path, pg_cluster.dsn(big_db), in_process=True)
    with small_tmpfs(tmp_path / "small", "4m") as small:
        text = ws.config.read_text().replace(f"file://{ws.repo}", f"file://{small}/repo")
        ws.config.write_text(text)
        ws.run("init", check=True)
        failed = ws.run("backup", "wms")
        assert failed.returncode == 1
        assert "no space left on device" in error_line(failed)
        assert ws.run_json("list") == []
        assert not list(small.rglob("*.tmp-*"))
        assert not list(small.rglob("*.lock"))


def test_unreachable_server(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path, "postgresql://backup:s3cret@127.0.0.1:1/wms", in_process=True)
    failed = ws.run("backup", "wms")
    assert failed.returncode == 1
    line = error_line(failed)
    assert "cannot reach database backup@127.0.0.1:1/wms" in line
    assert "s3cret" not in failed.stderr + failed.stdout


@on_oldest_major  # the refusal's one line is Lifeboat's; test_passwords runs the newest
def test_authentication_failed(pg_bin_dir: Path, tmp_path: Path) -> None:
    with ScratchCluster(pg_bin_dir, password="right-password") as cluster:
        wrong = cluster.dsn("postgres").replace("right-password", "wrong-password")
        ws = make_workspace(tmp_path, wrong, in_process=True)
        failed = ws.run("backup", "wms")
        assert failed.returncode == 1
        assert "authentication failed" in error_line(failed)
        assert "wrong-password" not in failed.stderr
        # the password may come from password_file instead of the DSN
        secret = tmp_path / "pw"
        secret.write_text("right-password\n")
        ws.write_config(
            cluster.dsn("postgres").replace(":right-password", ""),
            extra_source=f'password_file = "{secret}"',
        )
        assert ws.run("backup", "wms").returncode == 0


@on_oldest_major
def test_missing_database(pg_cluster: ScratchCluster, tmp_path: Path) -> None:
    ws = make_workspace(tmp_path, pg_cluster.dsn("no_such_db"), in_process=True)
    failed = ws.run("backup", "wms")
    assert failed.returncode == 1 and "does not exist" in error_line(failed)


@on_oldest_major  # refused from the repository, whatever the server
def test_repository_not_initialised(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path
) -> None:
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db), in_process=True)
    text = ws.config.read_text().replace(f"file://{ws.repo}", f"file://{tmp_path}/elsewhere")
    ws.config.write_text(text)
    for command in (["backup", "wms"], ["list"], ["verify"], ["restore", "wms"]):
        failed = ws.run(*command)
        assert failed.returncode == 1, command
        assert "not initialised: run `lifeboat init`" in error_line(failed)


@needs_pg17
def test_pg_dump_older_than_server_is_refused(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path
) -> None:
    from lifeboat.postgres.binaries import find_bin_dirs

    older = [d for d in find_bin_dirs() if d != pg_cluster.bin_dir]
    if not older:
        pytest.skip("needs another, older PostgreSQL installed for its client")
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db), in_process=True)
    ws.write_config(pg_cluster.dsn(fresh_db), extra_source=f'pg_bin_dir = "{older[0]}"')
    failed = ws.run("backup", "wms")
    assert failed.returncode == 1
    assert "too old for PostgreSQL 17" in error_line(failed)
    assert ws.run_json("list") == []
    assert not list((ws.repo).rglob("dump*"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[repositories.local]\nurl = 'x'\n"
            "[encryption]\nage_recipients = ['age1x']\nbogus = 1\n",
            "encryption.bogus: unknown key",
        ),
        (
            "[repositories.local]\nurl = 5\n[encryption]\nage_recipients = ['age1x']\n",
            "repositories.local.url: Input should be a valid string",
        ),
        ("[repositories.local]\nurl = 'x'\n", "encryption: missing required key"),
        ("[repositories.local\n", "not valid TOML"),
        (
            "[repositories.local]\nurl = '${LIFEBOAT_TEST_UNSET}'\n"
            "[encryption]\nage_recipients=['age1x']\n",
            "repositories.local.url: environment variable LIFEBOAT_TEST_UNSET is not set",
        ),
    ],
)
def test_config_errors_exit_2_with_one_line(tmp_path: Path, text: str, expected: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    result = run_lifeboat(LIFEBOAT, ["--config", str(config), "list"])
    assert result.returncode == 2
    line = error_line(result)
    assert str(config) in line and expected in line


def test_missing_config_file(tmp_path: Path) -> None:
    result = subprocess.run(
        [LIFEBOAT, "list"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "LIFEBOAT_CONFIG"},
    )
    assert result.returncode == 2
    assert "lifeboat.toml: config file not found" in error_line(result)
