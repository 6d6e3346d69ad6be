"""Redis sources against a real redis-server (Debian's, with a password, on a loopback port):
a snapshot taken under write load restores every key, value and TTL it held; BGSAVE; the
failures a user meets, each one line; verify --deep, drills, restore, list, show and prune.

One server serves the module: each test starts from FLUSHALL, and a test that changes the
server's settings puts them back."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from lifeboat.context import Context
from lifeboat.pipeline.crypto import write_identity
from lifeboat.sources.redis import programs
from lifeboat.sources.redis.kind import RedisKind
from tests.processes import child_pids, is_gone, kill_and_wait
from tests.servers.ports import refused_port
from tests.servers.redis import RedisServer, TlsFiles
from tests.waiting import wait_for

from .helpers import Workspace, error_line

pytestmark = pytest.mark.integration

MANUAL = Path(__file__).resolve().parents[2] / "docs" / "manual-restore.md"
KNOWN_TTL = 3600  # seconds: no known key expires while a test runs
BULK_KEYS = 20_000  # so that a snapshot takes long enough to overlap the writes


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis-source")) as running:
        yield running


@pytest.fixture
def source(server: RedisServer) -> RedisServer:
    server.client().flushall()
    return server


def workspace(root: Path, url: str, extra: str = "") -> Workspace:
    """A local repository, age keys, and one Redis source `cache` at url."""
    root.mkdir(parents=True, exist_ok=True)
    ws = Workspace(root, write_identity(root / "age.key"))
    ws.config.write_text(
        f'[repositories.local]\nurl = "file://{ws.repo}"\n\n'
        f'[encryption]\nage_recipients = ["{ws.public_key}"]\n'
        f'age_identity_file = "{ws.identity}"\n\n'
        f'[sources.cache]\ntype = "redis"\nurl = "{url}"\n{extra}\n'
    )
    ws.run("init", check=True)
    return ws


def backups(ws: Workspace) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = ws.run_json("list", "cache")
    return listed


def manifest(ws: Workspace, backup: str) -> dict[str, Any]:
    shown: dict[str, Any] = ws.run_json("show", backup)
    return shown


# --- what a test writes, and reads back ----------------------------------------------------


def write_known_set(client: redis.Redis, prefix: str) -> None:
    """One key of each type, half of them with a TTL, and a stream with a consumer group
    and pending entries (the RDB's most involved record)."""
    client.set(f"{prefix}:string", "value \u00e9 \x00 binary")
    client.set(f"{prefix}:number", 12345, ex=KNOWN_TTL)
    client.hset(f"{prefix}:hash", mapping={"a": "1", "b": "2" * 100})
    client.rpush(f"{prefix}:list", *[f"item{i}" for i in range(300)])  # a quicklist
    client.expire(f"{prefix}:list", KNOWN_TTL)
    client.sadd(f"{prefix}:intset", *range(50))
    client.sadd(f"{prefix}:set", *[f"member{i}" for i in range(200)])  # a hash table
    client.zadd(f"{prefix}:zset", {"one": 1.5, "two": -2.25, "inf": float("inf")})
    client.zadd(f"{prefix}:bigzset", {f"m{i}": i / 3 for i in range(200)})  # a skiplist
    client.expire(f"{prefix}:bigzset", KNOWN_TTL)
    stream = f"{prefix}:stream"
    for i in range(20):
        client.xadd(stream, {"field": f"value{i}", "n": str(i)})
    client.xgroup_create(stream, "workers", id="0")
    client.xreadgroup("workers", "alice", {stream: ">"}, count=5)
    client.expire(stream, KNOWN_TTL)
    client.set(f"{prefix}:big", b"x" * 300_000)  # stored LZF-compressed


def read_value(client: redis.Redis, key: bytes) -> Any:
    kind = client.type(key)
    if kind == b"string":
        return client.get(key)
    if kind == b"hash":
        return client.hgetall(key)
    if kind == b"list":
        return client.lrange(key, 0, -1)
    if kind == b"set":
        return client.smembers(key)
    if kind == b"zset":
        return client.zrange(key, 0, -1, withscores=True)
    if kind == b"stream":
        groups = [
            (g["name"], g["pending"], g["last-delivered-id"]) for g in client.xinfo_groups(key)
        ]
        return client.xrange(key), groups
    raise AssertionError(f"{key!r} has type {kind!r}")


def known_keys(client: redis.Redis, prefix: str) -> dict[bytes, tuple[Any, int]]:
    """Every key of the known set: its value and its time to live in ms (-1: none)."""
    return {
        key: (read_value(client, key), client.pttl(key))
        for key in sorted(client.scan_iter(match=f"{prefix}:*"))
    }


class Writer:
    """Writes other keys into db0, db3 and db5 as fast as it can until stopped."""

    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self.written = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        clients = [self.server.client(db) for db in (0, 3, 5)]
        while not self._stop.is_set():
            pipe = clients[self.written % 3].pipeline(transaction=False)
            for i in range(50):
                pipe.set(f"load:{self.written}:{i}", "w")
            pipe.execute()
            self.written += 1

    def __enter__(self) -> Writer:
        self._thread.start()
        wait_for(lambda: self.written > 10, "the writer to be writing")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def keyspace(client: redis.Redis) -> dict[str, int]:
    info = client.info("keyspace")
    return {db: int(v["keys"]) for db, v in info.items() if isinstance(v, dict)}


# --- the tests ---------------------------------------------------------------------------


def test_a_snapshot_under_write_load_restores_every_key_value_and_ttl(
    tmp_path: Path, source: RedisServer
) -> None:
    db0, db3 = source.client(0), source.client(3)
    write_known_set(db0, "known")
    write_known_set(db3, "known")
    for client in (db0, db3):
        pipe = client.pipeline(transaction=False)
        for i in range(BULK_KEYS // 2):
            pipe.set(f"bulk:{i}", f"{i}" * 10)
        pipe.execute()
    read_at = time.monotonic()
    expected = {db: known_keys(client, "known") for db, client in ((0, db0), (3, db3))}
    assert all(len(keys) == 10 for keys in expected.values())
    ws = workspace(tmp_path, source.url)

    before = keyspace(db0)
    with Writer(source):
        ws.run("backup", "cache", check=True)
    after = keyspace(db0)

    (listed,) = backups(ws)
    assert listed["type"] == "redis"
    shown = manifest(ws, listed["id"])
    details = shown["details"]
    assert details["method"] == "replication"
    assert details["redis_version"] == source.client().info("server")["redis_version"]
    # the counts are the snapshot's: between what the server held before and after it
    for name in ("db0", "db3", "db5"):
        assert before.get(name, 0) <= details["keys"].get(name, 0) <= after[name]
    assert details["expires"]["db0"] == details["expires"]["db3"] == 4

    target = tmp_path / "restored" / "dump.rdb"
    target.parent.mkdir()
    restored = ws.run_json("restore", "cache", "--to", str(target))
    assert restored["keys"] == details["keys"]
    with RedisServer(target.parent) as fresh:
        assert keyspace(fresh.client()) == details["keys"]
        for number, keys in expected.items():
            got = known_keys(fresh.client(number), "known")
            elapsed_ms = (time.monotonic() - read_at) * 1000
            assert got.keys() == keys.keys()
            for key, (value, ttl) in keys.items():
                got_value, got_ttl = got[key]
                assert got_value == value, key
                if ttl == -1:
                    assert got_ttl == -1, key
                else:  # the same moment of expiry, seen later
                    assert ttl - elapsed_ms - 1 <= got_ttl <= ttl, key

    # a second restore to the same file is refused without --yes, and replaces it with it
    refused = ws.run("restore", "cache", "--to", str(target))
    assert refused.returncode == 1
    assert "exists: pass --yes" in error_line(refused)
    target.write_bytes(b"something else")
    ws.run("restore", "cache", "--to", str(target), "--yes", check=True)
    assert target.read_bytes().startswith(b"REDIS")
    assert [p.name for p in target.parent.iterdir() if p.name.startswith(".dump")] == []

    verified = ws.run("verify", "--deep", "cache")
    assert verified.returncode == 0, verified.stderr

    drilled = ws.run_json("drill", "cache")
    (record,) = drilled["drills"]
    assert record["verdict"] == "pass", record["reasons"]
    assert {t["table"]: t["actual"] for t in record["tables"]} == details["keys"]
    assert all(t["expected"] == t["actual"] for t in record["tables"])
    assert record["rpo_method"] == "snapshot time"
    assert record["target"].startswith("scratch redis-server")


def test_a_drill_counts_keys_whose_ttl_passed_since_the_backup(
    tmp_path: Path, source: RedisServer
) -> None:
    client = source.client()
    ws = workspace(
        tmp_path, source.url, f'[sources.cache.drill]\nwork_dir = "{tmp_path / "drills"}"\n'
    )
    client.set("stays", "here")
    # long enough for the backup (well under a second) to see it, short enough to wait for
    client.set("soon", "gone", px=5000)
    ws.run("backup", "cache", check=True)
    (listed,) = backups(ws)
    assert manifest(ws, listed["id"])["details"]["keys"] == {"db0": 2}
    wait_for(lambda: client.get("soon") is None, "the key to expire on the source")
    (record,) = ws.run_json("drill", "cache")["drills"]
    assert record["verdict"] == "pass", record["reasons"]
    assert record["tables"] == [{"table": "db0", "expected": 2, "actual": 2}]
    assert list((tmp_path / "drills").iterdir()) == []  # the drill's folder is gone


def test_a_snapshot_saved_to_the_servers_disk_first_is_read_by_its_size(
    tmp_path: Path, source: RedisServer
) -> None:
    client = source.client()
    write_known_set(client, "disk")
    client.config_set("repl-diskless-sync", "no")
    try:
        ws = workspace(tmp_path, source.url)
        ws.run("backup", "cache", check=True)
    finally:
        client.config_set("repl-diskless-sync", "yes")
    (listed,) = backups(ws)
    assert manifest(ws, listed["id"])["details"]["keys"] == {"db0": 10}
    assert ws.run("verify", "--deep", "cache").returncode == 0


def test_bgsave_backs_up_the_servers_rdb_file(tmp_path: Path, source: RedisServer) -> None:
    write_known_set(source.client(0), "saved")
    write_known_set(source.client(3), "saved")
    ws = workspace(tmp_path, source.url, f'method = "bgsave"\nrdb_path = "{source.rdb}"\n')
    ws.run("backup", "cache", check=True)
    (listed,) = backups(ws)
    details = manifest(ws, listed["id"])["details"]
    assert details["method"] == "bgsave"
    assert details["keys"] == {"db0": 10, "db3": 10} == keyspace(source.client())
    assert ws.run("verify", "--deep", "cache").returncode == 0


def test_a_bgsave_already_running_is_one_line(tmp_path: Path, source: RedisServer) -> None:
    client = source.client()
    client.mset({f"slow{i}": i for i in range(5)})
    # each key takes the saving child a second: the save runs while the backup starts
    client.config_set("rdb-key-save-delay", 1_000_000)
    try:
        client.bgsave()
        ws = workspace(tmp_path, source.url, f'method = "bgsave"\nrdb_path = "{source.rdb}"\n')
        result = ws.run("backup", "cache")
    finally:
        client.config_set("rdb-key-save-delay", 0)
        assert source.process is not None
        kill_and_wait(child_pids(source.process.pid), "the saving child")
        wait_for(
            lambda: not client.info("persistence")["rdb_bgsave_in_progress"],
            "the server to see its child gone",
        )
    assert result.returncode == 1
    assert "is already running a BGSAVE" in error_line(result)
    assert backups(ws) == []


def test_a_failed_bgsave_is_one_line(tmp_path: Path, source: RedisServer) -> None:
    client = source.client()
    client.set("key", "value")
    # a save fails for real when the server's folder is gone (root may write anywhere, so
    # a folder without write permission would not do)
    vanished = tmp_path / "vanished"
    vanished.mkdir()
    client.config_set("dir", str(vanished))
    vanished.rmdir()
    rdb = tmp_path / "old-dump.rdb"
    rdb.write_bytes(b"")
    try:
        ws = workspace(tmp_path, source.url, f'method = "bgsave"\nrdb_path = "{rdb}"\n')
        result = ws.run("backup", "cache")
    finally:
        client.config_set("dir", str(source.folder))
    assert result.returncode == 1
    assert "the BGSAVE failed (rdb_last_bgsave_status:err)" in error_line(result)
    assert backups(ws) == []


def test_a_wrong_password_and_an_unreachable_server_are_one_line(
    tmp_path: Path, source: RedisServer
) -> None:
    wrong = workspace(tmp_path / "wrong", f"redis://:nope@127.0.0.1:{source.port}/0")
    result = wrong.run("backup", "cache")
    assert result.returncode == 1
    line = error_line(result)
    assert "refused the login" in line
    assert "nope" not in result.stderr
    assert backups(wrong) == []
    anonymous = workspace(tmp_path / "anonymous", f"redis://127.0.0.1:{source.port}/0")
    result = anonymous.run("backup", "cache")
    assert result.returncode == 1
    assert "needs a password" in error_line(result)
    with refused_port() as port:
        gone = workspace(tmp_path / "gone", f"redis://:secret@127.0.0.1:{port}/0")
        result = gone.run("backup", "cache")
    assert result.returncode == 1
    assert f"cannot reach redis 127.0.0.1:{port}" in error_line(result)
    assert "secret" not in result.stderr
    assert backups(gone) == []


def test_a_password_from_the_environment_may_hold_any_character(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    odd = "p@ss/w:rd%"
    monkeypatch.setenv("REDIS_PASSWORD", odd)
    with RedisServer(tmp_path / "odd", password=odd) as oddly:
        oddly.client().set("k", "v")
        ws = workspace(tmp_path, f"redis://:${{REDIS_PASSWORD}}@127.0.0.1:{oddly.port}/0")
        result = ws.run("backup", "cache")
        assert result.returncode == 0, result.stderr
    (listed,) = backups(ws)
    assert manifest(ws, listed["id"])["details"]["keys"] == {"db0": 1}


def test_a_damaged_backup_fails_verify_deep_and_its_drill(
    tmp_path: Path, source: RedisServer
) -> None:
    write_known_set(source.client(), "damaged")
    ws = workspace(tmp_path, source.url)
    ws.run("backup", "cache", check=True)
    (stored,) = (ws.repo / "cache").glob("backups/*/dump.rdb.zst.age")
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x01
    stored.write_bytes(bytes(data))
    verified = ws.run("verify", "--deep", "cache")
    assert verified.returncode == 1
    assert "FAILED" in verified.stdout
    assert "the object is corrupted" in verified.stdout
    drilled = ws.run("drill", "cache", "--json")
    assert drilled.returncode == 1
    (record,) = json.loads(drilled.stdout)["drills"]
    assert record["verdict"] == "fail"


def test_redis_check_rdb_finds_a_damaged_rdb(tmp_path: Path, source: RedisServer) -> None:
    """The RDB's own checksum, for what the repository's sha256 cannot see: a snapshot
    damaged before it was stored."""
    client = source.client()
    write_known_set(client, "crc")
    client.save()
    good = tmp_path / "good.rdb"
    good.write_bytes(source.rdb.read_bytes())
    checker = programs.find_program("redis-check-rdb", None)
    assert programs.check_rdb(checker, good) is None
    data = bytearray(good.read_bytes())
    data[-20] ^= 0xFF  # inside the last value: the file still parses, its CRC64 fails
    bad = tmp_path / "bad.rdb"
    bad.write_bytes(bytes(data))
    found = programs.check_rdb(checker, bad)
    assert found is not None
    assert found.startswith("redis-check-rdb found the RDB damaged")


def test_prune_keeps_what_retention_says(tmp_path: Path, source: RedisServer) -> None:
    source.client().set("k", "v")
    ws = workspace(tmp_path, source.url, "[sources.cache.retention]\nkeep_last = 1\n")
    for _ in range(2):
        ws.run("backup", "cache", check=True)
    first, second = (b["id"] for b in backups(ws))
    ws.run("prune", "cache", check=True)
    assert [b["id"] for b in backups(ws)] == [second]
    assert first != second


def test_the_documented_manual_restore_gives_the_backed_up_rdb(
    tmp_path: Path, source: RedisServer
) -> None:
    """docs/manual-restore.md's Redis section, from picking the backup to the decrypted
    RDB, run as written with this test's paths: age and zstd only."""
    write_known_set(source.client(), "manual")
    ws = workspace(tmp_path, source.url)
    ws.run("backup", "cache", check=True)
    (listed,) = backups(ws)
    text = MANUAL.read_text(encoding="utf-8")
    section = text[text.index("## Redis backups") :]
    steps = section[section.index("ID=$(") : section.index("\n", section.index("> /tmp/dump.rdb"))]
    rdb = tmp_path / "manual.rdb"
    script = steps.replace("/etc/lifeboat/age.key", str(ws.identity)).replace(
        "/tmp/dump.rdb", str(rdb)
    )
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", f"REPO={ws.repo}\nSOURCE=cache\n{script}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (obj,) = manifest(ws, listed["id"])["objects"]
    assert hashlib.sha256(rdb.read_bytes()).hexdigest() == obj["plain_sha256"]
    checker = programs.find_program("redis-check-rdb", None)
    assert programs.check_rdb(checker, rdb) is None


def test_checks_find_what_would_keep_a_backup_from_working(
    tmp_path: Path, source: RedisServer
) -> None:
    ws = workspace(tmp_path, source.url)
    assert RedisKind().checks(Context.load(ws.config), "cache") == []
    missing = tmp_path / "missing.rdb"
    bgsave = workspace(
        tmp_path / "bgsave", source.url, f'method = "bgsave"\nrdb_path = "{missing}"\n'
    )
    assert RedisKind().checks(Context.load(bgsave.config), "cache") == [
        f"cannot read rdb_path {missing}"
    ]
    wrong = workspace(tmp_path / "wrong", f"redis://:nope@127.0.0.1:{source.port}/0")
    (problem,) = RedisKind().checks(Context.load(wrong.config), "cache")
    assert problem == f"redis 127.0.0.1:{source.port} refused the login: wrong password or user"


def test_rediss_checks_the_servers_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TLS, verified against the system's CAs: the test's CA is one only when OpenSSL is
    told so (SSL_CERT_FILE), and without it the backup is refused in one line."""
    tls = TlsFiles.make(tmp_path / "tls")
    with RedisServer(tmp_path / "server", tls=tls) as secure:
        write_known_set(secure.client(), "tls")
        ws = workspace(tmp_path / "ws", secure.url)
        refused = ws.run("backup", "cache")
        assert refused.returncode == 1
        assert "certificate verify failed" in error_line(refused)
        monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca))
        ws.run("backup", "cache", check=True)
    (listed,) = backups(ws)
    assert manifest(ws, listed["id"])["details"]["keys"] == {"db0": 10}


def test_a_drill_refuses_the_settings_of_postgresql_drills(
    tmp_path: Path, source: RedisServer
) -> None:
    source.client().set("k", "v")
    extra = '[sources.cache.drill]\nchecks = [{name = "rows", sql = "SELECT 1"}]\n'
    ws = workspace(tmp_path, source.url, extra)
    ws.run("backup", "cache", check=True)
    drilled = ws.run("drill", "cache")
    assert drilled.returncode == 2
    assert "[sources.cache.drill] checks: for PostgreSQL sources" in error_line(drilled)


SCRATCH_HOLDER = """
import sys
from pathlib import Path
from lifeboat.sources.redis import programs
scratch = programs.ScratchRedis(programs.find_program("redis-server", None), Path(sys.argv[1]))
scratch.__enter__()
print(scratch.wait_loaded() or scratch._process.pid, flush=True)
sys.stdin.read()
"""


def test_a_scratch_server_dies_with_the_drill_that_started_it(
    tmp_path: Path, source: RedisServer
) -> None:
    """A drill killed with SIGKILL cannot stop its scratch redis-server: the kernel does."""
    client = source.client()
    client.set("k", "v")
    client.save()
    rdb = tmp_path / "scratch" / "dump.rdb"
    rdb.parent.mkdir()
    rdb.write_bytes(source.rdb.read_bytes())
    holder = subprocess.Popen(
        [sys.executable, "-c", SCRATCH_HOLDER, str(rdb)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        server_pid = int(holder.stdout.readline())
        assert not is_gone(server_pid)
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    wait_for(lambda: is_gone(server_pid), "the scratch redis-server to die with its drill")


def test_restore_refuses_a_folder_or_a_missing_parent_in_one_line(
    tmp_path: Path, source: RedisServer
) -> None:
    source.client().set("k", "v")
    ws = workspace(tmp_path, source.url)
    ws.run("backup", "cache", check=True)
    for target, said in (
        (tmp_path, "is a folder: give the RDB file's path"),
        (tmp_path / "missing" / "dump.rdb", "does not exist"),
    ):
        result = ws.run("restore", "cache", "--to", str(target), "--yes")
        assert result.returncode == 2
        assert said in error_line(result)
    assert not (tmp_path / "missing").exists()


def test_a_user_without_sync_is_told_of_bgsave(tmp_path: Path, source: RedisServer) -> None:
    client = source.client()
    client.acl_setuser(
        "nosync", enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all", "-sync"]
    )
    try:
        ws = workspace(tmp_path, f"redis://nosync:pw@127.0.0.1:{source.port}/0")
        result = ws.run("backup", "cache")
    finally:
        client.acl_deluser("nosync")
    assert result.returncode == 1
    line = error_line(result)
    assert "refused the snapshot: NOPERM" in line
    assert 'method = "bgsave"' in line
    assert backups(ws) == []
