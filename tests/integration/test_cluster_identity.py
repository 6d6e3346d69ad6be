"""A source holds one cluster: WAL, backups and `check` of another one are refused, until a
backup accepts the new cluster on purpose. Two real clusters (every initdb gives a new
system identifier), Lifeboat run as the server's OS user as archive_command runs it."""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifeboat.postgres.binaries import bin_dir_major
from lifeboat.postgres.instance import ScratchCluster
from lifeboat.postgres.walheader import parse_long_header

from .archiving import Archiving, as_postgres
from .helpers import LIFEBOAT, error_line
from .versions import on_oldest_major

SEGMENT_SIZE = 16 * 1024 * 1024


@pytest.fixture
def other_cluster(pg_bin_dir: Path) -> Iterator[ScratchCluster]:
    """Another cluster of the same version, not archiving anywhere."""
    with ScratchCluster(pg_bin_dir) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def foreign_cluster(pg_bin_dir: Path) -> Iterator[ScratchCluster]:
    """Another cluster of the same version, not archiving anywhere, that tests take a WAL
    segment or a history file from without moving it on: one per module, as starting one
    costs more than those tests."""
    with ScratchCluster(pg_bin_dir) as cluster:
        yield cluster


def system_identifier(cluster: ScratchCluster) -> str:
    return cluster.psql("SELECT system_identifier FROM pg_control_system()")


def live_segment(cluster: ScratchCluster, folder: Path) -> Path:
    """A copy of the segment the cluster writes now, readable by the server's OS user."""
    # a commit that wrote something flushes WAL, so the segment holding the flushed end
    # exists (right after a switch, the next one may not be created yet)
    cluster.psql("CREATE TABLE IF NOT EXISTS copied (at timestamptz)")
    cluster.psql("INSERT INTO copied VALUES (now())")
    name = cluster.psql("SELECT pg_walfile_name(pg_current_wal_flush_lsn())")
    folder.mkdir(mode=0o755)
    copy = folder / name
    shutil.copyfile(cluster.data_dir / "pg_wal" / name, copy)
    copy.chmod(0o644)
    return copy


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        as_postgres([LIFEBOAT, "--config", str(config), *args]),
        capture_output=True,
        text=True,
        timeout=300,
    )


def records(archiving: Archiving) -> list[dict[str, object]]:
    folder = archiving.home / "repo" / "wms" / "cluster"
    return [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]


def stored(archiving: Archiving) -> set[Path]:
    """Every file in the repository."""
    return {p for p in (archiving.home / "repo").rglob("*") if p.is_file()}


def backup_ids(archiving: Archiving) -> list[str]:
    backups = archiving.home / "repo" / "wms" / "backups"
    return sorted(p.name for p in backups.iterdir()) if backups.exists() else []


def pointed_at(archiving: Archiving, cluster: ScratchCluster) -> Path:
    """The same configuration, with the source's DSN pointed at another server."""
    config = archiving.home / "pointed-elsewhere.toml"
    text = archiving.config.read_text()
    config.write_text(text.replace(archiving.cluster.dsn(), cluster.dsn()))
    config.chmod(0o644)
    return config


# Lifeboat's refusals; reading each major's segments and pg_control runs on every major below
@on_oldest_major
def test_wal_of_another_cluster_or_cut_short_is_refused_and_nothing_is_written(
    archiving: Archiving, foreign_cluster: ScratchCluster
) -> None:
    archiving.switch_and_wait()  # the first push records the cluster
    own = system_identifier(archiving.cluster)
    [record] = records(archiving)
    assert record["system_identifier"] == own
    assert record["pg_major"] == archiving.cluster.major
    assert record["wal_segment_size"] == SEGMENT_SIZE

    foreign = live_segment(foreign_cluster, archiving.home / "foreign")
    before = stored(archiving)
    refused = archiving.lifeboat("wal-push", "wms", str(foreign), check=False)
    assert refused.returncode == 1
    line = error_line(refused)
    foreign_id = system_identifier(foreign_cluster)
    assert f"belongs to the cluster with system identifier {foreign_id}" in line
    assert f"holds the cluster with system identifier {own} (recorded " in line
    assert stored(archiving) == before

    cut = live_segment(archiving.cluster, archiving.home / "cut")
    cut.write_bytes(cut.read_bytes()[:8192])
    refused = archiving.lifeboat("wal-push", "wms", str(cut), check=False)
    assert refused.returncode == 1
    assert "is 8192 bytes, but its page header gives the segment size 16777216" in error_line(
        refused
    )
    assert stored(archiving) == before

    # the cluster's own WAL still goes, through PostgreSQL's archive_command
    archiving.switch_and_wait()
    assert archiving.cluster.psql("SELECT failed_count FROM pg_stat_archiver") == "0"
    assert len(records(archiving)) == 1


def history_file(cluster: ScratchCluster, timeline: int, switched_at: str) -> str:
    """A timeline history file in the cluster's pg_wal, as promoting it writes one; its
    path relative to the data directory, as archive_command's %p gives it."""
    relative = f"pg_wal/{timeline:08X}.history"
    path = cluster.data_dir / relative
    path.write_text(f"{timeline - 1}\t{switched_at}\tno recovery target specified\n")
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(path, owner.pw_uid, owner.pw_gid)
    return relative


def push_as_archive_command(
    config: Path, cluster: ScratchCluster, relative: str
) -> subprocess.CompletedProcess[str]:
    """wal-push as the server's archive_command runs it: in the data directory."""
    return subprocess.run(
        as_postgres([LIFEBOAT, "--config", str(config), "wal-push", "wms", relative]),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cluster.data_dir,
    )


def test_another_cluster_s_history_file_is_refused_by_its_pg_control(
    archiving: Archiving, foreign_cluster: ScratchCluster
) -> None:
    archiving.switch_and_wait()  # the first push records the cluster
    own, foreign = system_identifier(archiving.cluster), system_identifier(foreign_cluster)
    before = stored(archiving)
    refused = push_as_archive_command(
        archiving.config, foreign_cluster, history_file(foreign_cluster, 2, "0/3000000")
    )
    assert refused.returncode == 1
    line = error_line(refused)
    assert f"00000002.history belongs to the cluster with system identifier {foreign}" in line
    assert f"holds the cluster with system identifier {own} (recorded " in line
    assert stored(archiving) == before

    # the source's own history file is not blocked by the other one's
    pushed = push_as_archive_command(
        archiving.config, archiving.cluster, history_file(archiving.cluster, 2, "0/5000000")
    )
    assert pushed.returncode == 0, pushed.stderr
    histories = archiving.home / "repo" / "wms" / "wal" / "history"
    assert len(list(histories.glob("00000002.history-*"))) == 1
    assert len(records(archiving)) == 1


@on_oldest_major  # the system identifiers compared are Lifeboat's records
def test_another_server_is_refused_until_a_backup_accepts_it(
    archiving: Archiving, other_cluster: ScratchCluster
) -> None:
    archiving.switch_and_wait()
    old_id, new_id = system_identifier(archiving.cluster), system_identifier(other_cluster)
    old_backup = archiving.lifeboat("backup", "wms").stdout.strip()
    elsewhere = pointed_at(archiving, other_cluster)

    checked = run(elsewhere, "check", "wms")
    assert checked.returncode == 1
    assert f"system identifier {new_id}, but source wms holds" in error_line(checked)
    assert f"system identifier {old_id} (recorded" in error_line(checked)
    for kind in ("logical", "physical"):
        refused = run(elsewhere, "backup", "wms", "--type", kind)
        assert refused.returncode == 1
        line = error_line(refused)
        assert f"{new_id}, but source wms holds the cluster with system identifier {old_id}" in (
            line
        )
        assert "run `lifeboat backup wms --accept-new-cluster`" in line
    assert backup_ids(archiving) == [old_backup]

    # a fresh cluster writes segment names the archive holds for the old one: refused too
    colliding = run(elsewhere, "backup", "wms", "--accept-new-cluster")
    assert colliding.returncode == 1
    assert "would take names repository local holds for the old cluster" in error_line(colliding)
    assert len(records(archiving)) == 1

    # once its WAL is past the old cluster's (as after pg_upgrade), the move is accepted
    wal = archiving.home / "repo" / "wms" / "wal"
    newest = max(p.name.split("-")[0] for p in wal.rglob("*.zst.age"))
    for _ in range(32):
        if other_cluster.psql("SELECT pg_walfile_name(pg_current_wal_lsn())")[8:] > newest[8:]:
            break
        other_cluster.psql("SELECT pg_create_restore_point('ahead')")
        other_cluster.psql("SELECT pg_switch_wal()")
    else:
        raise AssertionError(f"the other cluster's WAL did not get past {newest}")
    accepted = run(elsewhere, "backup", "wms", "--accept-new-cluster")
    assert accepted.returncode == 0, accepted.stderr
    first, second = records(archiving)
    assert first["system_identifier"] == old_id  # kept, for history
    assert second["system_identifier"] == new_id and second["replaces"] == old_id
    assert second["recorded_from"] == "backup --accept-new-cluster"
    assert run(elsewhere, "backup", "wms").returncode == 0  # from now on, plainly

    # the new cluster's WAL goes, the old one's is refused
    new_segment = live_segment(other_cluster, archiving.home / "new")
    pushed = run(elsewhere, "wal-push", "wms", str(new_segment))
    assert pushed.returncode == 0, pushed.stderr
    old_segment = live_segment(archiving.cluster, archiving.home / "old")
    refused = archiving.lifeboat("wal-push", "wms", str(old_segment), check=False)
    assert f"holds the cluster with system identifier {new_id}" in error_line(refused)

    # a backup of the old cluster still restores
    restored = archiving.lifeboat(
        "--json", "restore", "wms", "--backup", old_backup, "--target-db", "restored_old"
    )
    assert json.loads(restored.stdout)["verified"] is True


def controldata(output: str, field: str) -> int:
    found = re.search(rf"^{field}:\s+(\d+)$", output, re.MULTILINE)
    assert found is not None, output
    return int(found[1])


def test_real_segments_of_every_size_give_their_cluster(pg_bin_dir: Path) -> None:
    """initdb writes WAL, long headers included: the segment of its last checkpoint parsed
    as pg_controldata reads pg_control, for the default size and two others."""
    base = Path(tempfile.mkdtemp(prefix="lifeboat-walsize-"))
    base.chmod(0o755)
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(base, owner.pw_uid, owner.pw_gid)
    try:
        for megabytes in (1, 16, 64):
            data = base / f"data-{megabytes}"
            subprocess.run(
                as_postgres(
                    [
                        str(pg_bin_dir / "initdb"),
                        "-D",
                        str(data),
                        "-U",
                        "postgres",
                        "--no-locale",
                        "--auth=trust",
                        f"--wal-segsize={megabytes}",
                    ]
                ),
                check=True,
                capture_output=True,
            )
            control = subprocess.run(
                as_postgres([str(pg_bin_dir / "pg_controldata"), "-D", str(data)]),
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            redo = re.search(r"^Latest checkpoint's REDO WAL file:\s+(\w+)$", control, re.M)
            assert redo is not None, control
            segment = data / "pg_wal" / redo[1]
            header = parse_long_header(segment.read_bytes()[:40])
            assert header.segment_size == megabytes << 20 == segment.stat().st_size
            assert header.segment_size == controldata(control, "Bytes per WAL segment")
            assert header.system_identifier == controldata(control, "Database system identifier")
            assert header.major == bin_dir_major(pg_bin_dir)
    finally:
        shutil.rmtree(base, ignore_errors=True)
