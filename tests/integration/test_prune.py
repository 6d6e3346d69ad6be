"""`lifeboat prune`, `hold` and `release` against real backups of a real cluster: the
decisions and their explanation, the audit trail, holds, failed verifications, and a
prune killed half-way (on S3, through a proxy that slows deletions down) then run again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lifeboat.postgres.instance import ScratchCluster
from tests.servers import s3 as s3_servers
from tests.servers.s3 import SLOW_DOWN, Exchange, FaultProxy, repository_url, shared_moto
from tests.waiting import wait_for

from .archiving import Archiving, events
from .helpers import LIFEBOAT, Workspace, error_line, make_workspace
from .versions import on_oldest_major

pytestmark = pytest.mark.integration

s3_endpoint = s3_servers.s3_endpoint
s3_storage_factory = s3_servers.s3_storage_factory


# Prune works on the repository, whatever the server's version: every test runs on one
# cluster. WAL expiry too: it is reckoned from the backups' records and the segments'
# names, which every major writes alike (recovery itself runs on each major in test_pitr).


def backups(ws: Workspace, count: int) -> list[str]:
    """count logical backups, oldest first."""
    return [ws.run_json("backup", "wms")["id"] for _ in range(count)]


def with_retention(ws: Workspace, table: str) -> None:
    ws.config.write_text(ws.config.read_text() + f"\n[retention]\n{table}\n")


def pruning(
    cluster: ScratchCluster, db: str, root: Path, count: int, policy: str
) -> tuple[Workspace, list[str]]:
    """A workspace with count backups of db, then the retention policy."""
    ws = make_workspace(root, cluster.dsn(db), in_process=True)
    made = backups(ws, count)
    with_retention(ws, policy)
    return ws, made


def listed(ws: Workspace) -> list[str]:
    return [b["id"] for b in ws.run_json("list", "wms")]


def audit_records(repo: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((repo / "audit").glob("*.json"))]


@on_oldest_major
def test_prune_explains_applies_and_audits(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path
) -> None:
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db), in_process=True)
    pg_cluster.psql("CREATE TABLE t AS SELECT generate_series(1, 100) AS n", fresh_db)
    made = backups(ws, 4)

    refused = ws.run("prune", "wms", "--dry-run")
    assert refused.returncode == 2
    assert "no retention policy for source wms" in error_line(refused)

    with_retention(ws, "keep_last = 2")
    plan = ws.run_json("prune", "wms", "--dry-run")[0]
    decisions = {b["id"]: b for b in plan["backups"]}
    assert plan["dry_run"] is True and plan["delete"] == made[:2]
    assert decisions[made[3]]["rules"] == ["newest", "last"]
    assert decisions[made[2]]["rules"] == ["last"]
    assert decisions[made[0]]["reasons"] == ["kept by no rule"]
    assert listed(ws) == made, "a dry run deletes nothing"
    assert audit_records(ws.repo) == []  # the chain holds the backups' events only
    table = ws.run("prune", "wms", "--dry-run")
    assert "would delete" in table.stdout and made[0] in table.stdout

    applied = ws.run_json("prune", "wms")[0]
    assert applied["deleted"] == made[:2]
    assert listed(ws) == made[2:]
    for backup in made[:2]:
        assert not (ws.repo / "wms" / "backups" / backup).exists()
    started, finished = audit_records(ws.repo)
    assert started["action"] == "prune-started" and finished["action"] == "prune"
    assert finished["deleted"] == made[:2] and finished["policy"]["keep_last"] == 2
    assert "@" in finished["by"]
    assert {b["id"]: b["rules"] for b in finished["backups"]}[made[3]] == ["newest", "last"]
    events = ws.run_json("audit", "show")
    assert [e["event"] for e in events].count("backup") == len(made)
    assert [e["event"] for e in events].count("config") == 1  # one config for every backup
    pruned = [e for e in events if e["event"] == "prune"]
    assert [e["subject"]["backup"] for e in pruned] == made[:2]
    assert pruned[0]["details"]["reasons"] == ["kept by no rule"]
    assert ws.run_json("audit", "verify")[0]["whole"]

    again = ws.run_json("prune", "wms")[0]
    assert again["deleted"] == [], "pruning twice deletes nothing more"


@on_oldest_major
def test_held_backups_survive_prune_until_released(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path
) -> None:
    ws, made = pruning(pg_cluster, fresh_db, tmp_path, 3, "keep_last = 1")

    reason = "HACCP lot recall 2026-044"
    held = ws.run_json("hold", made[0], "--until", "2033-03-01", "--reason", reason)[0]
    assert held["object_legal_holds"] == 0  # a local repository has no legal holds
    shown = ws.run_json("list", "wms")
    assert shown[0]["hold"]["reason"] == "HACCP lot recall 2026-044"
    assert shown[0]["hold"]["until"].startswith("2033-03-01")
    assert shown[1]["hold"] is None
    assert "HACCP lot recall" in ws.run("show", made[0]).stdout
    assert "held until 2033-03-01" in ws.run("list", "wms").stdout

    # a copy to another repository carries the hold along
    dr = tmp_path / "dr"
    ws.config.write_text(
        ws.config.read_text().replace(
            "[encryption]", f'[repositories.dr]\nurl = "{dr}"\n\n[encryption]'
        )
    )
    ws.run("init", "--repo", "dr", check=True)
    copied = ws.run_json("copy", "--from", "local", "--to", "dr")[0]
    assert copied["hold_records_copied"] == 1
    in_dr = ws.run_json("list", "wms", "--repo", "dr")
    assert in_dr[0]["hold"]["reason"] == "HACCP lot recall 2026-044"

    pruned = ws.run_json("prune", "wms", "--repo", "local")[0]
    assert pruned["deleted"] == [made[1]]
    assert {b["id"]: b["rules"] for b in pruned["backups"]}[made[0]] == ["hold"]

    not_held = ws.run("release", made[2])
    assert not_held.returncode == 2 and "is not held" in error_line(not_held)
    ws.run("release", made[0], "--reason", "recall closed", check=True)
    assert ws.run_json("list", "wms", "--repo", "dr")[0]["hold"] is None, "released in both"
    assert ws.run_json("list", "wms", "--repo", "local")[0]["hold"] is None
    assert ws.run_json("prune", "wms", "--repo", "local")[0]["deleted"] == [made[0]]
    actions = [r["action"] for r in audit_records(ws.repo)]
    assert actions.count("hold") == 1 and actions.count("release") == 1

    refused = ws.run("hold", made[2], "--reason", " ")
    assert refused.returncode == 2 and "needs a reason" in error_line(refused)
    past = ws.run("hold", made[2], "--until", "2020-01-01", "--reason", "too late")
    assert past.returncode == 2 and "not in the future" in error_line(past)
    unknown = ws.run("hold", "20200101T000000Z", "--reason", "no such backup")
    assert unknown.returncode == 1
    assert "backup 20200101T000000Z not found" in error_line(unknown)


@on_oldest_major
def test_a_backup_that_failed_verification_does_not_count(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path
) -> None:
    ws, made = pruning(pg_cluster, fresh_db, tmp_path, 3, "keep_last = 1")
    # the newest backup's data is damaged; verify finds it and records it
    dump = next((ws.repo / "wms" / "backups" / made[2]).glob("dump.*"))
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    assert ws.run("verify", "wms").returncode != 0

    plan = {b["id"]: b for b in ws.run_json("prune", "wms", "--dry-run")[0]["backups"]}
    assert plan[made[2]]["verification_failed"] is True
    assert plan[made[2]]["decision"] == "delete"
    assert plan[made[2]]["reasons"] == ["its newest verification failed: counted by no rule"]
    assert plan[made[1]]["rules"] == ["newest", "last"], "the newest good backup takes its place"


# --- killed half-way -----------------------------------------------------------------------


class HeldDelete:
    """A fault rule that, once armed, lets the first DELETE of a backup's object through and
    holds the second one until released (then fails it), so that a prune can be killed in
    the middle of deleting a backup: once its manifest is gone, while the rest of it is
    still there. The lock's own files (its probe, its release) come and go untouched."""

    def __init__(self) -> None:
        self.deleted: list[str] = []
        self.armed = threading.Event()
        self.holding = threading.Event()
        self.released = threading.Event()

    def __call__(self, exchange: Exchange) -> tuple[int, bytes] | None:
        if exchange.method != "DELETE" or not self.armed.is_set() or self.holding.is_set():
            return None
        if "/backups/" not in exchange.path:
            return None
        if not self.deleted:
            self.deleted.append(exchange.path.partition("?")[0])
            return None
        self.holding.set()
        self.released.wait(120)  # bounded: a test that fails before releasing ends anyway
        return 503, SLOW_DOWN


@pytest.fixture
def held_delete(s3_endpoint: str) -> Iterator[tuple[FaultProxy, HeldDelete]]:
    """A proxy in front of moto that holds the second DELETE (see HeldDelete)."""
    proxy = FaultProxy(shared_moto().port)
    rule = HeldDelete()
    proxy.fault = rule
    proxy.start()
    try:
        yield proxy, rule
    finally:
        rule.released.set()
        proxy.stop()


@on_oldest_major
def test_prune_killed_half_way_leaves_a_consistent_repository_and_the_next_finishes(
    pg_cluster: ScratchCluster,
    fresh_db: str,
    tmp_path: Path,
    s3_storage_factory: s3_servers.StorageFactory,
    held_delete: tuple[FaultProxy, HeldDelete],
) -> None:
    proxy, rule = held_delete
    storage = s3_storage_factory("prune-kill")
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db), in_process=True)
    url = repository_url(storage.location.bucket, proxy.endpoint)
    ws.config.write_text(
        ws.config.read_text().replace(f'url = "file://{ws.repo}"', f'url = "{url}"')
    )
    ws.run("init", check=True)
    made = backups(ws, 3)
    with_retention(ws, "keep_last = 1")

    rule.armed.set()
    prune = subprocess.Popen(
        [LIFEBOAT, "--config", str(ws.config), "prune", "wms"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ,
    )
    try:
        wait_for(rule.holding.is_set, "prune to reach its second deletion")
        # killed while it waits for that answer: the first backup's manifest went first
        manifest = f"/{storage.location.bucket}/repo/wms/backups/{made[0]}/manifest.json"
        assert rule.deleted == [manifest]
        prune.send_signal(signal.SIGKILL)
        prune.wait()
    finally:
        rule.released.set()
    assert prune.returncode == -signal.SIGKILL

    remaining = listed(ws)
    assert remaining == made[1:]
    assert any(storage.list(f"wms/backups/{made[0]}/")), "the killed run left the rest of it"
    # every backup still listed is whole
    assert ws.run("verify", "wms").returncode == 0

    # the killed run still holds the lock: another prune on this host sees it is dead
    finished = ws.run_json("prune", "wms")[0]
    assert listed(ws) == [made[2]]
    leftovers = [
        info.key
        for info in storage.list("wms/backups/")
        if not info.key.startswith(f"wms/backups/{made[2]}/")
    ]
    assert leftovers == []
    assert finished["leftovers_removed"] == [made[0]]
    assert finished["deleted"] == [made[1]]


# --- physical backups and the WAL archive ------------------------------------------------


def archived_segments(repo: Path) -> list[str]:
    return sorted(
        path.name[:24]
        for path in (repo / "wms" / "wal").rglob("*")
        if path.is_file() and len(path.name) > 24 and path.name[:24].isalnum()
    )


@on_oldest_major
def test_wal_expiry_follows_the_kept_backups_and_pitr_still_works(archiving: Archiving) -> None:
    """Three physical backups with WAL between them; keep_last = 2 deletes the first and
    the WAL before the second's start, and a restore to the oldest moment still in reach
    (right after the second backup) and to the latest one both work."""
    run = archiving.lifeboat
    archiving.commit(1, 5)
    first = json.loads(run("backup", "wms", "--type", "physical", "--json").stdout)
    archiving.commit(6, 10)
    archiving.switch_and_wait()
    second = json.loads(run("backup", "wms", "--type", "physical", "--json").stdout)
    archiving.commit(11, 15, apart=True)
    oldest_moment = archiving.commit_time(11)
    archiving.switch_and_wait()
    third = json.loads(run("backup", "wms", "--type", "physical", "--json").stdout)
    archiving.commit(16, 20)
    archiving.switch_and_wait()
    repo = archiving.home / "repo"
    second_start = json.loads(run("show", second["id"], "--json").stdout)["details"]["start_wal"]
    before = archived_segments(repo)
    assert before[0] < second_start, "the first backup's WAL is archived"

    archiving.config.write_text(archiving.config.read_text() + "\n[retention]\nkeep_last = 2\n")
    plan = json.loads(run("prune", "wms", "--dry-run", "--json").stdout)[0]
    assert plan["delete"] == [first["id"]]
    assert plan["wal"]["oldest_kept"] == second_start
    assert plan["wal"]["expired"] == len([s for s in before if s < second_start])
    assert archived_segments(repo) == before

    pruned = json.loads(run("prune", "wms", "--json").stdout)[0]
    assert pruned["deleted"] == [first["id"]]
    after = archived_segments(repo)
    assert after and min(after) == second_start
    assert after == [s for s in before if s >= second_start]
    assert run("verify", "wms").returncode == 0

    for label, target, expected in (
        ("oldest", ["--to-time", oldest_moment], list(range(1, 12))),
        ("latest", ["--latest"], list(range(1, 21))),
    ):
        with archiving.started_copy(label, *target) as port:
            assert events(port) == expected
    again = json.loads(run("prune", "wms", "--json").stdout)[0]
    assert again["deleted"] == [] and again["wal"]["deleted"] == 0
    assert third["id"] in [b["id"] for b in json.loads(run("list", "wms", "--json").stdout)]


# --- S3 Object Lock: legal holds and retention -------------------------------------------


def on_s3(ws: Workspace, url: str, options: str = "") -> None:
    ws.config.write_text(
        ws.config.read_text().replace(f'url = "file://{ws.repo}"', f'url = "{url}"\n{options}')
    )
    ws.run("init", check=True)


def legal_holds(s3_endpoint: str, bucket: str, backup: str) -> set[str]:
    admin = s3_servers.admin_client(s3_endpoint)
    listed = admin.list_objects_v2(Bucket=bucket, Prefix=f"repo/wms/backups/{backup}/")
    return {
        admin.head_object(Bucket=bucket, Key=item["Key"]).get("ObjectLockLegalHoldStatus", "OFF")
        for item in listed.get("Contents", [])
    }


def hold_briefly(ws: Workspace, backup: str) -> None:
    """A hold that ends by itself a few seconds from now. `hold` refuses an end that has
    passed when it checks it: on a machine too slow for a few seconds, the end is taken
    again, further ahead."""
    for seconds in (2, 10, 60):
        until = (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()
        held = ws.run("hold", backup, "--until", until, "--reason", "short")
        if held.returncode == 0:
            return
        assert "is not in the future" in held.stderr, held.stderr
    raise AssertionError("hold took longer than a minute to start")


def planned(ws: Workspace) -> dict[str, str]:
    """What prune would decide for each backup now (a dry run)."""
    plan = ws.run_json("prune", "wms", "--dry-run")[0]["backups"]
    return {b["id"]: b["decision"] for b in plan}


@on_oldest_major
def test_holds_become_s3_legal_holds_and_prune_respects_object_lock(
    pg_cluster: ScratchCluster,
    fresh_db: str,
    tmp_path: Path,
    s3_endpoint: str,
    s3_storage_factory: s3_servers.StorageFactory,
) -> None:
    storage = s3_storage_factory("prune-locked", lock=True)
    bucket = storage.location.bucket
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db), in_process=True)
    on_s3(ws, storage.url)
    made = backups(ws, 3)
    with_retention(ws, "keep_last = 1")

    held = ws.run_json("hold", made[0], "--reason", "lot recall")[0]
    assert held["object_legal_holds"] >= 3  # manifest, its copy, the dump
    assert legal_holds(s3_endpoint, bucket, made[0]) == {"ON"}
    # a hold that ends by itself in a moment: prune releases its legal holds, then deletes
    hold_briefly(ws, made[1])
    assert legal_holds(s3_endpoint, bucket, made[1]) == {"ON"}
    wait_for(lambda: planned(ws)[made[1]] == "delete", "the short hold to end", timeout=120)

    pruned = ws.run_json("prune", "wms")[0]
    assert pruned["deleted"] == [made[1]]
    assert {b["id"]: b["rules"] for b in pruned["backups"]}[made[0]] == ["hold"]
    assert legal_holds(s3_endpoint, bucket, made[1]) == set()

    ws.run("release", made[0], check=True)
    assert legal_holds(s3_endpoint, bucket, made[0]) == {"OFF"}
    assert ws.run_json("prune", "wms")[0]["deleted"] == [made[0]]

    # objects retained by Object Lock are kept until their date, whatever the rules
    ws.config.write_text(
        ws.config.read_text().replace(
            f'url = "{storage.url}"',
            f'url = "{storage.url}"\nobject_lock_days = 1\nobject_lock_mode = "GOVERNANCE"',
        )
    )
    locked = backups(ws, 2)
    plan = {b["id"]: b for b in ws.run_json("prune", "wms", "--dry-run")[0]["backups"]}
    assert plan[made[2]]["decision"] == "delete"
    assert plan[locked[0]]["rules"] == ["object-lock"]
    assert plan[locked[0]]["reasons"][0].startswith("Object Lock until ")


@on_oldest_major
def test_prune_moves_kept_backups_to_their_tier_tag_on_s3(
    pg_cluster: ScratchCluster,
    fresh_db: str,
    tmp_path: Path,
    s3_endpoint: str,
    s3_storage_factory: s3_servers.StorageFactory,
) -> None:
    """Uploads are tagged daily; the lifecycle rules of deploy/terraform move weekly,
    monthly and yearly backups elsewhere, so prune retags what its rules keep as such."""
    storage = s3_storage_factory("prune-tiers")
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db), in_process=True)
    on_s3(ws, storage.url)
    made = backups(ws, 2)
    with_retention(ws, "keep_last = 2\nkeep_monthly = 1")
    admin = s3_servers.admin_client(s3_endpoint)

    def tiers() -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for backup in made:
            listed = admin.list_objects_v2(
                Bucket=storage.location.bucket, Prefix=f"repo/wms/backups/{backup}/dump"
            )
            for item in listed["Contents"]:
                tags = admin.get_object_tagging(Bucket=storage.location.bucket, Key=item["Key"])
                found.setdefault(backup, set()).update(t["Value"] for t in tags["TagSet"])
        return found

    assert tiers() == {made[0]: {"daily"}, made[1]: {"daily"}}
    plan = {b["id"]: b for b in ws.run_json("prune", "wms", "--dry-run")[0]["backups"]}
    assert plan[made[1]]["tier"] == "monthly" and plan[made[0]]["tier"] == "daily"
    assert tiers()[made[1]] == {"daily"}, "a dry run changes nothing"

    pruned = ws.run_json("prune", "wms")[0]
    assert pruned["retagged"] == {made[1]: "monthly"}
    assert tiers() == {made[0]: {"daily"}, made[1]: {"monthly"}}
    assert ws.run_json("prune", "wms")[0]["retagged"] == {}
