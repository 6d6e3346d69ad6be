"""Logical restore drills against real PostgreSQL: a scratch instance Lifeboat starts
itself (or a staging server), the evidence compared, the user's checks run, RTO and RPO
measured, and the record written into every repository that holds the backup."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lifeboat.pipeline.crypto import write_identity
from lifeboat.policy.drill import seconds_text
from lifeboat.postgres.instance import ScratchCluster
from lifeboat.repo.manifest import decode, encode
from tests.processes import running
from tests.waiting import wait_for

from .helpers import LIFEBOAT, Workspace, error_line
from .production import TABLES, create_production_db
from .versions import on_oldest_major

GOOD_CHECK = '''
[[sources.wms.drill.checks]]
name = "every film has a language"
sql = """SELECT count(*) = 0 FROM film f
  WHERE NOT EXISTS (SELECT 1 FROM language l WHERE l.language_id = f.language_id)"""
'''


@pytest.fixture
def work_dir() -> Iterator[Path]:
    """Where drills put their scratch folders: reachable by the server's OS user."""
    folder = Path(tempfile.mkdtemp(prefix="lifeboat-drills-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def production(pg_cluster: ScratchCluster) -> Iterator[str]:
    """The production-like database, shared: drills only read it, each test backs it up
    into a workspace of its own."""
    name = f"wms drill.{os.getpid()}"
    create_production_db(pg_cluster, name)
    try:
        yield name
    finally:
        pg_cluster.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class DrillSetup:
    """A workspace with two repositories, the source's objectives, drill table and checks."""

    def __init__(self, root: Path, dsn: str, work_dir: Path) -> None:
        self.ws = Workspace(root, write_identity(root / "age.key"), in_process=True)
        self.dsn = dsn
        self.work_dir = work_dir
        self.configure()
        self.ws.run("init", check=True)

    def configure(
        self,
        *,
        objectives: str = 'rto = "4h"\nrpo = "1h"\n',
        drill: str = "",
        checks: str = GOOD_CHECK,
        identity: bool = True,
        work_dir: Path | None = None,
    ) -> None:
        root = self.ws.root
        identity_line = f'age_identity_file = "{self.ws.identity}"\n' if identity else ""
        # two jobs whatever the host's cores: how the dump is loaded depends on them
        jobs = "" if "jobs" in drill else "jobs = 2\n"
        self.ws.config.write_text(
            f'[repositories.local]\nurl = "file://{self.ws.repo}"\n'
            f'[repositories.second]\nurl = "file://{root / "second"}"\n'
            f'[encryption]\nage_recipients = ["{self.ws.public_key}"]\n{identity_line}'
            f'[sources.wms]\ndsn = "{self.dsn}"\n'
            f"[sources.wms.objectives]\n{objectives}"
            f'[sources.wms.drill]\nwork_dir = "{work_dir or self.work_dir}"\n{drill}'
            f"{jobs}"
            f"{checks}"
        )

    def drill(self, *args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
        done = self.ws.run("drill", "wms", *args, "--json", timeout=600, own_process=True)
        return done, json.loads(done.stdout) if done.stdout.strip() else {}

    def records(self, repository: str, backup: str) -> list[Path]:
        folder = self.ws.root / ("repo" if repository == "local" else repository)
        return sorted((folder / "wms" / "drills" / backup).glob("*.json"))

    def drill_command(self, *args: str) -> list[str]:
        return [LIFEBOAT, "--config", str(self.ws.config), "drill", "wms", *args]

    def leftovers(self) -> list[Path]:
        return sorted(self.work_dir.glob("lifeboat-drill-*"))


def test_a_logical_drill_restores_compares_measures_and_records(
    pg_cluster: ScratchCluster, production: str, tmp_path: Path, work_dir: Path
) -> None:
    setup = DrillSetup(tmp_path, pg_cluster.dsn(production), work_dir)
    backup = setup.ws.run_json("backup", "wms")["id"]

    done, report = setup.drill("--depth", "standard")
    assert done.returncode == 0, done.stderr
    (record,) = report["drills"]
    assert record["verdict"] == "pass", record["reasons"]
    assert record["backup"] == backup and record["kind"] == "logical"
    assert record["target"] == f"scratch PostgreSQL {pg_cluster.major}"
    assert record["postgres_version"].startswith(f"PostgreSQL {pg_cluster.major}")
    # every table of the production schema compared with the backup's evidence
    compared = {t["table"] for t in record["tables"]}
    assert all(t["expected"] == t["actual"] for t in record["tables"])
    # the partitioned parent holds no rows of its own: its partitions are counted
    assert set(TABLES) - {"public.payment"} <= compared
    names = [p["name"] for p in record["phases"]]
    assert names == ["prepare", "start+fetch", "restore", "verify", "checks"]
    phases_to_ready = sum(p["seconds"] for p in record["phases"] if p["name"] != "checks")
    assert phases_to_ready <= record["rto_seconds"]
    assert {c["name"]: c["ok"] for c in record["checks"]} == {
        "read every table": True,
        "every film has a language": True,
    }
    assert record["rpo_method"] == "snapshot" and record["rpo_seconds"] >= 0
    assert record["objectives"] == {"rto_seconds": 14400.0, "rpo_seconds": 3600.0}
    assert record["restore_proved"] is True
    # the proof is in both repositories, the scratch instance and its folder are gone
    assert sorted(record["repositories"]) == ["local", "second"]
    for repository in ("local", "second"):
        (key,) = setup.records(repository, backup)
        assert key.name.endswith("-pass.json")
        assert json.loads(key.read_text())["drill_id"] == record["drill_id"]
    assert setup.leftovers() == []


@on_oldest_major
def test_a_drill_fails_with_every_reason_and_records_it(
    pg_cluster: ScratchCluster, production: str, tmp_path: Path, work_dir: Path
) -> None:
    setup = DrillSetup(tmp_path, pg_cluster.dsn(production), work_dir)
    backup = setup.ws.run_json("backup", "wms")["id"]
    # the evidence says one more film than the backup holds (its checksum made to match)
    for name in ("manifest.json", "manifest.copy.json"):
        path = setup.ws.repo / "wms" / "backups" / backup / name
        manifest = decode(path.read_bytes(), name)
        assert manifest.logical is not None and manifest.logical.evidence is not None
        counts = dict(manifest.logical.evidence.row_counts)
        counts["public.film"] += 1
        evidence = manifest.logical.evidence.model_copy(update={"row_counts": counts})
        details = manifest.logical.model_copy(update={"evidence": evidence})
        path.write_bytes(encode(manifest.model_copy(update={"details": details})))
    checks = GOOD_CHECK + "".join(
        f'[[sources.wms.drill.checks]]\nname = "{name}"\nsql = "{sql}"\n'
        for name, sql in (
            ("false", "SELECT false"),
            ("error", "SELECT * FROM no_such_table"),
            ("not boolean", "SELECT 42"),
            ("no row", "SELECT true WHERE false"),
            ("two statements", "SELECT true; SELECT false"),
            ("null", "SELECT max(1) > 0 WHERE false"),
        )
    )
    setup.configure(objectives='rto = "1s"\n', checks=checks)

    done, report = setup.drill("--depth", "quick")
    assert done.returncode == 1
    assert "drill(s) failed" in error_line(done)
    (record,) = report["drills"]
    assert record["verdict"] == "fail"
    reasons = record["reasons"]
    assert f"public.film: {_films(pg_cluster, production)} rows, backup has" in (" ".join(reasons))
    assert "check 'false' failed: returned false" in reasons
    assert any(r.startswith("check 'error' failed: error: relation") for r in reasons)
    assert "check 'not boolean' failed: returned 42, not a boolean" in reasons
    assert "check 'no row' failed: returned no row" in reasons
    assert (
        "check 'two statements' failed: holds more than one statement; a check is one query"
        in reasons
    )
    assert "check 'null' failed: returned NULL" in reasons
    assert reasons[-1].startswith("no recovery time measured")
    assert record["restore_proved"] is False
    # the one check that holds still passed
    assert {c["name"] for c in record["checks"] if c["ok"]} == {"every film has a language"}
    (key,) = setup.records("local", backup)
    assert key.name.endswith("-fail.json")
    assert setup.leftovers() == []


@on_oldest_major
def test_a_damaged_dump_is_a_failed_drill_on_record(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path, work_dir: Path
) -> None:
    pg_cluster.psql(
        "CREATE TABLE lots AS SELECT g AS id, md5(g::text) AS code"
        " FROM generate_series(1, 50000) g",
        fresh_db,
    )
    setup = DrillSetup(tmp_path, pg_cluster.dsn(fresh_db), work_dir)
    setup.configure(checks="")
    backup = setup.ws.run_json("backup", "wms")["id"]
    # one table holds all the data: the dump streams into pg_restore, nothing is fetched
    done, report = setup.drill()
    assert done.returncode == 0, done.stderr
    (record,) = report["drills"]
    assert [p["name"] for p in record["phases"]] == [
        "prepare",
        "start",
        "restore",
        "verify",
        "checks",
    ]
    for repository in ("repo", "second"):
        (dump,) = (setup.ws.root / repository / "wms" / "backups" / backup).glob("dump.*")
        data = bytearray(dump.read_bytes())
        data[len(data) // 2] ^= 0xFF  # one flipped byte in the stored dump
        dump.write_bytes(bytes(data))

    done, report = setup.drill()
    assert done.returncode == 1
    (record,) = report["drills"]
    assert record["verdict"] == "fail"
    assert record["restore_proved"] is False
    assert any("corrupt" in reason for reason in record["reasons"]), record["reasons"]
    for repository in ("local", "second"):
        passed, failed = setup.records(repository, backup)
        assert passed.name.endswith("-pass.json") and failed.name.endswith("-fail.json")
    assert setup.leftovers() == []

    # two tables alike: the dump is fetched into a file while the instance starts, and
    # that fetch finds the damage
    pg_cluster.psql("CREATE TABLE lots_copy AS SELECT * FROM lots", fresh_db)
    second = setup.ws.run_json("backup", "wms")["id"]
    for repository in ("repo", "second"):
        (dump,) = (setup.ws.root / repository / "wms" / "backups" / second).glob("dump.*")
        data = bytearray(dump.read_bytes())
        data[len(data) // 2] ^= 0xFF
        dump.write_bytes(bytes(data))
    done, report = setup.drill("--backup", second)
    assert done.returncode == 1
    (record,) = report["drills"]
    assert record["verdict"] == "fail"
    assert any("corrupt" in reason for reason in record["reasons"]), record["reasons"]
    assert [p["name"] for p in record["phases"]] == ["prepare", "start+fetch"]
    assert setup.leftovers() == []


def _films(cluster: ScratchCluster, db: str) -> int:
    return int(cluster.psql("SELECT count(*) FROM film", db))


@on_oldest_major
def test_pick_oldest_and_random_and_a_staging_server(
    pg_cluster: ScratchCluster, production: str, tmp_path: Path, work_dir: Path
) -> None:
    setup = DrillSetup(tmp_path, pg_cluster.dsn(production), work_dir)
    first = setup.ws.run_json("backup", "wms")["id"]
    second = setup.ws.run_json("backup", "wms")["id"]

    _, oldest = setup.drill("--pick", "oldest", "--depth", "quick")
    assert [d["backup"] for d in oldest["drills"]] == [first]
    assert oldest["drills"][0]["picked"] == "oldest"
    # an RTO objective below what a restore takes fails the drill, naming both
    setup.configure(objectives='rto = "1s"\n')
    done, chosen = setup.drill("--pick", "random", "--within", "30d", "--depth", "quick")
    assert done.returncode == 1
    (record,) = chosen["drills"]
    assert record["backup"] in {first, second} and record["picked"] == "random (within 30d)"
    assert record["reasons"] == [
        f"recovery took {seconds_text(record['rto_seconds'])}, over the RTO objective of 1s"
    ]
    # only the objective was missed: the backup restored, and retention still counts it
    assert record["restore_proved"] is True
    setup.configure()

    # the same server as a staging server: a throw-away database, dropped afterwards
    setup.configure(drill=f'target_dsn = "{pg_cluster.dsn()}"\n')
    done, staged = setup.drill("--backup", second, "--depth", "full")
    assert done.returncode == 0, done.stderr
    (record,) = staged["drills"]
    assert record["verdict"] == "pass", record["reasons"]
    assert record["target"].startswith("staging server")
    # nothing to start: the fetch alone
    assert [p["name"] for p in record["phases"]] == [
        "prepare",
        "fetch",
        "restore",
        "verify",
        "checks",
    ]
    left = pg_cluster.psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'lifeboat_drill%'")
    assert left == "0"

    recorded = setup.records("local", second)
    setup.configure(drill='target_dsn = "postgresql://nobody@127.0.0.1:1/postgres"\n')
    done, _ = setup.drill("--backup", second)
    assert done.returncode == 1
    assert "cannot reach database" in error_line(done)
    assert setup.records("local", second) == recorded, "no record of a drill that could not run"


@on_oldest_major
def test_what_keeps_a_drill_from_running_is_one_line_and_no_record(
    pg_cluster: ScratchCluster, production: str, tmp_path: Path, work_dir: Path
) -> None:
    setup = DrillSetup(tmp_path, pg_cluster.dsn(production), work_dir)
    backup = setup.ws.run_json("backup", "wms")["id"]

    setup.configure(identity=False)
    done, _ = setup.drill()
    assert done.returncode == 1
    assert "needs the identity" in error_line(done)

    tiny = work_dir / "tiny"
    tiny.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(tiny)])
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here to fill the disk for real")
    try:
        tiny.chmod(0o755)
        setup.configure(work_dir=tiny)
        done, _ = setup.drill()
        assert done.returncode == 1
        assert "not enough free space" in error_line(done)
    finally:
        subprocess.run(["umount", str(tiny)], check=True)
    assert setup.records("local", backup) == []
    assert setup.leftovers() == []


@on_oldest_major
def test_a_killed_drill_leaves_no_record_and_the_next_one_cleans_up(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path, work_dir: Path
) -> None:
    setup, backup = _backed_up_with_a_slow_check(pg_cluster.dsn(fresh_db), tmp_path, work_dir)
    drill = subprocess.Popen(
        setup.drill_command("--depth", "quick"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        # the slow check runs: the scratch server is up with the restored database
        port = wait_for(lambda: _scratch_port_running_check(work_dir), "the slow check", 300)
    finally:
        drill.send_signal(signal.SIGKILL)
        drill.wait()
    (leftover,) = setup.leftovers()

    setup.configure(checks="")  # the database is empty: no film to check
    done, report = setup.drill("--depth", "quick")
    assert done.returncode == 0, done.stderr
    assert report["drills"][0]["verdict"] == "pass"
    assert not leftover.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(f"host=127.0.0.1 port={port} user=postgres connect_timeout=5").close()
    # only the drill that finished left a record
    (key,) = setup.records("local", backup)
    assert json.loads(key.read_text())["drill_id"] == report["drills"][0]["drill_id"]


@on_oldest_major
def test_a_drill_stopped_with_sigterm_cleans_up_before_it_exits(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path, work_dir: Path
) -> None:
    # a service manager's stop or `timeout`: the drill's scratch server must not run on
    # until the next drill, perhaps months later
    setup, backup = _backed_up_with_a_slow_check(pg_cluster.dsn(fresh_db), tmp_path, work_dir)
    with running(
        setup.drill_command("--depth", "quick"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as drill:
        port = wait_for(lambda: _scratch_port_running_check(work_dir), "the slow check", 300)
        drill.send_signal(signal.SIGTERM)
        _, stderr = drill.communicate(timeout=120)
    assert drill.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "lifeboat: error: aborted"  # as Ctrl-C
    assert setup.leftovers() == []
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(f"host=127.0.0.1 port={port} user=postgres connect_timeout=5").close()
    assert setup.records("local", backup) == []


def _backed_up_with_a_slow_check(
    dsn: str, tmp_path: Path, work_dir: Path
) -> tuple[DrillSetup, str]:
    """A backup, and a drill check that runs for ten minutes: time to stop the drill while
    its scratch server serves the restored database. What these tests prove is the cleanup
    of the scratch server and its folder: a small database does, restored twice as fast."""
    slow = '[[sources.wms.drill.checks]]\nname = "slow"\nsql = "SELECT true FROM pg_sleep(600)"\n'
    setup = DrillSetup(tmp_path, dsn, work_dir)
    setup.configure(checks=slow)
    return setup, setup.ws.run_json("backup", "wms")["id"]


def _scratch_port_running_check(work_dir: Path) -> int | None:
    for pid_file in work_dir.glob("lifeboat-drill-*/pg/data/postmaster.pid"):
        lines = pid_file.read_text().splitlines()
        if len(lines) < 4:
            continue
        port = int(lines[3])
        try:
            with psycopg.connect(
                f"host=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout=5",
                autocommit=True,
            ) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(600)%' "
                    "AND pid <> pg_backend_pid()"
                ).fetchone()
        except psycopg.OperationalError:
            continue
        if row and row[0]:
            return port
    return None
