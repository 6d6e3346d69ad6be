"""Point-in-time recovery against real clusters: physical base backups, the WAL archive, replay."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from lifeboat.pipeline.crypto import write_identity
from lifeboat.postgres.instance import ScratchCluster
from tests.waiting import wait_for

from .archiving import (
    TIMELINE,
    Archiving,
    ScratchClusterAt,
    as_postgres,
    events,
    set_and_reload,
    stop_cluster,
    switch_wal_and_wait,
)
from .helpers import LIFEBOAT
from .versions import on_oldest_major


def archived(archiving: Archiving, segment: str) -> Iterator[Path]:
    """The repository's copies of a WAL segment."""
    return (archiving.home / "repo" / "wms" / "wal").rglob(f"{segment}-*")


@on_oldest_major  # Lifeboat reads archive_mode before it starts a backup
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


@on_oldest_major  # the settings Lifeboat asks for and its check are the same on every major
def test_setup_archiving_and_check(archiving: Archiving) -> None:
    import json

    settings = json.loads(archiving.lifeboat("setup-archiving", "wms", "--json").stdout)
    by_name = {s["name"]: s for s in settings}
    assert by_name["archive_mode"]["ok"] and by_name["wal_level"]["ok"]
    assert "wal-push wms %p" in by_name["archive_command"]["wanted"]
    checked = json.loads(archiving.lifeboat("check", "wms", "--json").stdout)
    assert list(archived(archiving, checked["segment"]))
    assert checked["seconds"] >= 0

    # with archiving broken, check fails with one clear line
    failures = int(archiving.cluster.psql("SELECT failed_count FROM pg_stat_archiver"))
    set_and_reload(archiving.cluster, "archive_command", "/bin/false")
    # the segment never arrives: check fails at its timeout, whatever its length
    failed = archiving.lifeboat("check", "wms", "--timeout", "1", check=False)
    assert failed.returncode == 1
    assert "did not reach repository local" in failed.stderr
    assert "Traceback" not in failed.stderr
    # it was the broken command that ran: the archiver counts its failures
    wait_for(
        lambda: int(archiving.cluster.psql("SELECT failed_count FROM pg_stat_archiver")) > failures,
        "the archiver to fail with /bin/false",
    )


# recovery to the latest point runs on each major in the physical drill and the
# incremental chain's tests; following a new timeline's history file is the same on each
@on_oldest_major
def test_restore_latest_after_losing_the_cluster_then_on_the_new_timelines(
    archiving: Archiving,
) -> None:
    """The lost cluster restored to the latest point and promoted onto timeline 2, which
    archives into the same source and is backed up: the timeline 1 backup restored to
    the latest point follows the history file to timeline 2's end, and refuses, naming
    it, once a segment of timeline 2 is missing; the timeline 2 backup restores to the
    latest point too, and promotes onto timeline 3."""
    made = json.loads(archiving.lifeboat("backup", "wms", "--type", "physical", "--json").stdout)
    with archiving.promoted_after_loss() as promoted:
        port = promoted.port
        assert events(port) == list(range(1, 11))  # every row the lost cluster archived
        assert promoted.sql(TIMELINE) == "00000002"
        promoted.sql("INSERT INTO events SELECT generate_series(11, 20)")
        on_new_timeline = switch_wal_and_wait(promoted.sql)
        second_config = archiving.home / "second.toml"
        second_config.write_text(
            archiving.config.read_text()
            .replace(f"port={archiving.cluster.port}", f"port={port}")
            .replace(f":{archiving.cluster.port}/", f":{port}/")
        )
        os.chmod(second_config, 0o644)
        subprocess.run(
            as_postgres(
                [LIFEBOAT, "--config", str(second_config), "backup", "wms", "--type", "physical"]
            ),
            check=True,
            capture_output=True,
        )
        promoted.sql("INSERT INTO events SELECT generate_series(21, 25)")
        switch_wal_and_wait(promoted.sql)
    assert on_new_timeline.startswith("00000002")

    # the timeline 1 backup again: recovery follows 00000002.history to its end
    followed = archiving.home / "followed"
    again = ("--backup", made["id"], "--latest")
    port1, _ = archiving.restore_started(followed, *again, "--archive-mode", "off")
    try:
        assert events(port1) == list(range(1, 26))
    finally:
        stop_cluster(followed, archiving.cluster.bin_dir)

    (segment,) = archived(archiving, on_new_timeline)
    segment.unlink()
    refused_in = archiving.home / "refused"
    refused = archiving.lifeboat("restore", "wms", "--pgdata", str(refused_in), *again, check=False)
    assert refused.returncode == 1
    assert f"segment {on_new_timeline} is missing" in refused.stderr
    assert not refused_in.exists() or not any(refused_in.iterdir())

    # the newest backup, timeline 2's, taken after that segment: the latest point again
    second = archiving.home / "second"
    port2, _ = archiving.restore_started(second, "--latest")
    try:
        assert events(port2) == list(range(1, 26))
        assert ScratchClusterAt(port2).sql(TIMELINE) == "00000003"
    finally:
        stop_cluster(second, archiving.cluster.bin_dir)


@on_oldest_major  # the delta compares files; recovery itself runs on each major above
def test_delta_restore_over_an_earlier_restore(archiving: Archiving) -> None:
    archiving.lifeboat("backup", "wms", "--type", "physical")
    archiving.commit(1, 10)
    archiving.switch_and_wait()
    pgdata = archiving.home / "delta"
    archiving.restore_started(pgdata, "--latest", "--archive-mode", "off")
    # the promoted copy did not archive its new timeline into the source
    assert not list((archiving.home / "repo" / "wms" / "wal").rglob("00000002*"))
    try:
        refused = archiving.lifeboat(
            "restore", "wms", "--pgdata", str(pgdata), "--latest", "--delta", check=False
        )
        assert refused.returncode == 1
        assert "is running in" in refused.stderr
    finally:
        # the delta restore below goes on with this data directory: stopped cleanly
        stop_cluster(pgdata, archiving.cluster.bin_dir, mode="fast")
    plain = archiving.lifeboat("restore", "wms", "--pgdata", str(pgdata), check=False)
    assert plain.returncode == 1 and "pass --delta" in plain.stderr

    archiving.commit(11, 20)
    archiving.switch_and_wait()
    (pgdata / "base" / "stray-file").write_text("not part of any backup")
    import json

    port, result = archiving.restore_started(
        pgdata, "--latest", "--delta", before=("--log-format", "json")
    )
    try:
        assert events(port) == list(range(1, 21))
        assert not (pgdata / "base" / "stray-file").exists()
        counts = [
            json.loads(line)["message"]
            for line in result.stderr.splitlines()
            if "bytes written" in line
        ]
        written, unchanged = (int(n) for n in re.findall(r"(\d+) bytes", counts[0]))
        assert unchanged > 10 * written  # most of the cluster was left as it was
    finally:
        stop_cluster(pgdata, archiving.cluster.bin_dir)


@on_oldest_major  # pg_basebackup's tablespace map is the same on every major
def test_extra_tablespaces_are_backed_up_and_restored_where_asked(archiving: Archiving) -> None:
    original = archiving.home / "fast-disk"
    original.mkdir(mode=0o700)
    if os.geteuid() == 0:
        shutil.chown(original, "postgres")
    archiving.cluster.psql(f"CREATE TABLESPACE fast LOCATION '{original}'")
    archiving.cluster.psql(
        "CREATE TABLE moved TABLESPACE fast AS SELECT g AS id FROM generate_series(1, 5000) g"
    )
    oid = archiving.cluster.psql("SELECT oid FROM pg_tablespace WHERE spcname = 'fast'")
    made = archiving.lifeboat("backup", "wms", "--type", "physical", "--json")
    import json

    backup = json.loads(made.stdout)["id"]
    stored = sorted(
        p.name for p in (archiving.home / "repo" / "wms" / "backups" / backup).iterdir()
    )
    assert f"tablespace-{oid}.tar.zst.age" in stored
    assert archiving.lifeboat("verify", "wms", "--deep").returncode == 0
    archiving.cluster.psql("INSERT INTO moved SELECT g FROM generate_series(5001, 6000) g")
    archiving.commit(1, 10)
    archiving.switch_and_wait()

    # the original folder still holds the live tablespace: restoring over it is refused
    pgdata = archiving.home / "with-tablespace"
    refused = archiving.lifeboat("restore", "wms", "--pgdata", str(pgdata), check=False)
    assert refused.returncode == 1
    assert f"the folder of tablespace fast {original} is not empty" in refused.stderr

    archiving.cluster.stop("immediate")
    moved_to = archiving.home / "new-disk"
    port, _ = archiving.restore_started(pgdata, "--tablespace-map", f"fast={moved_to}", "--latest")
    try:
        assert os.readlink(pgdata / "pg_tblspc" / oid) == str(moved_to)
        assert ScratchClusterAt(port).sql("SELECT count(*) FROM moved WHERE id <= 6000") == "6000"
        assert events(port) == list(range(1, 11))
    finally:
        stop_cluster(pgdata, archiving.cluster.bin_dir)


def test_restore_to_a_time_a_named_point_an_xid_and_an_lsn(archiving: Archiving) -> None:
    """Each target yields exactly the rows committed by then; one archive serves them all."""
    made = archiving.lifeboat("backup", "wms", "--type", "physical", "--json")
    assert '"type": "physical"' in made.stdout
    archiving.commit(1, 5)
    archiving.cluster.psql("SELECT pg_create_restore_point('before-batch-2')")
    archiving.commit(6, 10)
    xid = archiving.cluster.psql("SELECT xmin::text FROM events WHERE id = 8")
    lsn = archiving.cluster.psql("SELECT pg_current_wal_insert_lsn()")
    archiving.commit(11, 15, apart=True)
    target = archiving.commit_time(12)
    archiving.commit(16, 20)
    archiving.switch_and_wait()

    for option, value, expected, action in [
        ("--to-name", "before-batch-2", list(range(1, 6)), "promote"),
        ("--to-xid", xid, list(range(1, 9)), "pause"),
        ("--to-lsn", lsn, list(range(1, 11)), "promote"),
    ]:
        restore = (option, value, "--target-action", action)
        with archiving.started_copy(option.strip("-"), *restore) as port:
            assert events(port) == expected, option
            paused = ScratchClusterAt(port).sql("SELECT pg_is_in_recovery()")
            assert paused == ("True" if action == "pause" else "False")

    # last: this copy keeps archiving, and its new timeline goes into the same archive
    pgdata = archiving.home / "at-time"
    port, result = archiving.restore_started(pgdata, "--to-time", target)
    try:
        assert "recovered to:" in result.stdout
        assert events(port) == list(range(1, 13))
    finally:
        stop_cluster(pgdata, archiving.cluster.bin_dir)
