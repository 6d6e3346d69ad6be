"""Physical restore drills against real PostgreSQL: the base backup (an incremental chain on
17) and the WAL archive recovered on a scratch server, promoted, read and checked, with the
data-loss window measured from the last replayed commit."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .archiving import Archiving
from .test_incremental import summarizing  # noqa: F401  (the fixture)
from .versions import needs_pg17, on_oldest_major

DRILL = """
[sources.wms.objectives]
rpo = "1h"
[sources.wms.drill]
work_dir = "{work}"
[[sources.wms.drill.checks]]
name = "events survived"
sql = "SELECT count(*) = {events} FROM events"
"""


def _configure(archiving: Archiving, events: int) -> Path:
    work = archiving.home / "drills"
    work.mkdir(exist_ok=True)
    shutil.chown(work, *_owner_of(archiving.home))
    text = archiving.config.read_text().split("\n[sources.wms.objectives]")[0]
    archiving.config.write_text(text + DRILL.format(work=work, events=events))
    return work


def _owner_of(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_uid, stat.st_gid


def _drill(archiving: Archiving, *args: str) -> tuple[int, dict[str, Any]]:
    done = archiving.lifeboat("drill", "wms", *args, "--json", check=False)
    report = json.loads(done.stdout) if done.stdout.strip() else {}
    return done.returncode, {**report, "stderr": done.stderr}


def test_a_physical_drill_recovers_to_the_latest_commit(archiving: Archiving) -> None:
    archiving.commit(1, 5)
    backup = json.loads(archiving.lifeboat("backup", "wms", "--type", "physical", "--json").stdout)
    archiving.commit(6, 20)
    last_commit = datetime.fromisoformat(archiving.commit_time(20))
    # the heartbeat is the last write: the restored cluster's newest moment
    archiving.lifeboat("heartbeat", "wms", "--once")
    beat = datetime.fromisoformat(archiving.cluster.psql("SELECT beat_at FROM lifeboat.heartbeat"))
    archiving.switch_and_wait()
    work = _configure(archiving, 20)

    code, report = _drill(archiving, "--depth", "full")
    assert code == 0, report["stderr"]
    (record,) = report["drills"]
    assert record["verdict"] == "pass", record["reasons"]
    assert record["backup"] == backup["id"] and record["kind"] == "physical"
    assert [p["name"] for p in record["phases"]] == ["prepare", "restore", "replay", "checks"]
    checks = {c["name"]: c for c in record["checks"]}
    assert checks["events survived"]["ok"]
    assert all(c["ok"] for c in checks.values()), checks
    assert {c["database"] for c in record["checks"] if c["name"] == "read every table"} >= {
        "postgres"
    }
    assert checks["amcheck"]["message"].startswith("heap and B-tree indexes")
    # the data-loss window runs from the last beat the archive held to the drill's start
    assert record["rpo_method"] == "heartbeat"
    recovered_to = datetime.fromisoformat(record["recovered_to"])
    assert recovered_to >= beat > last_commit
    started = datetime.fromisoformat(record["started_at"])
    assert record["rpo_seconds"] == round((started - recovered_to).total_seconds(), 3)
    assert list(work.iterdir()) == []
    records = list((archiving.home / "repo" / "wms" / "drills" / backup["id"]).glob("*-pass.json"))
    assert len(records) == 1
    # the source kept running and archiving on its own timeline, untouched
    assert archiving.cluster.psql("SELECT count(*) FROM events") == "20"
    assert archiving.cluster.psql("SELECT timeline_id FROM pg_control_checkpoint()") == "1"
    assert datetime.now(UTC) > started


SOURCE_ONLY = """
[[sources.wms.drill.checks]]
name = "scratch settings"
sql = \"\"\"SELECT current_setting('external_pid_file') = ''
  AND current_setting('synchronous_standby_names') = ''
  AND current_setting('max_logical_replication_workers') = '0'\"\"\"
"""


@on_oldest_major
def test_the_restored_copy_keeps_away_from_the_source_host(archiving: Archiving) -> None:
    # settings that travel with the backup and, in a copy started on the source's host,
    # would reach the source: its pid file, its synchronous standbys (depth full commits
    # CREATE EXTENSION amcheck), its subscriptions; or stop the copy's recovery. Written,
    # not reloaded: the source itself goes on without them.
    pid_file = archiving.home / "source.pid"
    pid_file.write_text("the source's\n")
    shutil.chown(pid_file, *_owner_of(archiving.home))  # as the server could write it
    archiving.cluster.psql(f"ALTER SYSTEM SET external_pid_file = '{pid_file}'")
    archiving.cluster.psql("ALTER SYSTEM SET synchronous_standby_names = 'no_such_standby'")
    # what a cluster once restored to a point keeps: it would stop this recovery before
    # the backup's end
    archiving.cluster.psql("ALTER SYSTEM SET recovery_target_time = '2001-01-01 00:00:00+00'")
    archiving.commit(1, 3)
    backup = json.loads(archiving.lifeboat("backup", "wms", "--type", "physical", "--json").stdout)
    archiving.switch_and_wait()
    _configure(archiving, 3)
    archiving.config.write_text(archiving.config.read_text() + SOURCE_ONLY)

    code, report = _drill(archiving, "--depth", "full")
    assert code == 0, report["stderr"]
    (record,) = report["drills"]
    assert record["verdict"] == "pass", record["reasons"]
    assert pid_file.read_text() == "the source's\n"
    # nothing committed since the backup: the window is measured from its start, and judged
    assert record["rpo_method"] == "backup start (no commit replayed)"
    shown = json.loads(archiving.lifeboat("show", backup["id"], "--json").stdout)
    lost = datetime.fromisoformat(record["started_at"]) - datetime.fromisoformat(
        shown["started_at"]
    )
    assert record["rpo_seconds"] == round(lost.total_seconds(), 3)


@on_oldest_major
def test_a_drill_with_a_missing_wal_segment_fails_and_says_which(archiving: Archiving) -> None:
    archiving.lifeboat("backup", "wms", "--type", "physical")
    archiving.commit(1, 5)
    lost = archiving.cluster.psql("SELECT pg_walfile_name(pg_current_wal_lsn())")
    archiving.switch_and_wait()
    archiving.commit(6, 10)
    archiving.switch_and_wait()
    for copy in (archiving.home / "repo" / "wms" / "wal").rglob(f"{lost}-*"):
        copy.unlink()
    _configure(archiving, 10)

    code, report = _drill(archiving, "--depth", "quick")
    assert code == 1
    (record,) = report["drills"]
    assert record["verdict"] == "fail"
    assert any(lost in reason for reason in record["reasons"]), record["reasons"]
    assert record["rto_seconds"] is None


@needs_pg17
def test_a_drill_walks_an_incremental_chain(summarizing: Archiving) -> None:  # noqa: F811
    archiving = summarizing
    archiving.commit(1, 5)
    archiving.lifeboat("backup", "wms", "--type", "physical")
    archiving.commit(6, 10)
    incremental = json.loads(
        archiving.lifeboat("backup", "wms", "--type", "physical", "--incremental", "--json").stdout
    )
    archiving.commit(11, 12)
    last_commit = datetime.fromisoformat(archiving.commit_time(12))
    archiving.switch_and_wait()
    _configure(archiving, 12)

    code, report = _drill(archiving, "--depth", "quick")
    assert code == 0, report["stderr"]
    (record,) = report["drills"]
    assert record["backup"] == incremental["id"] and record["verdict"] == "pass"
    # no heartbeat here: the newest moment is the last replayed commit
    assert record["rpo_method"] == "last replayed commit"
    assert datetime.fromisoformat(record["recovered_to"]) == last_commit
