#!/usr/bin/env python3
"""Redis backup benchmark: Lifeboat against the seed script's BGSAVE + copy + gpg.

Run from the repository root with the project's virtualenv::

    .venv/bin/python bench/bench_redis.py                    # 1M keys, ~300 MB RDB
    .venv/bin/python bench/bench_redis.py --keys 100000      # a smoke run

The benchmark starts its own redis-server (Debian's) on a loopback port with a password,
fills it (strings of random text over two databases, a few large hashes), then measures in
one run, each command as its own process tree (wall time, CPU time, peak RSS sampled over
the tree, as bench_logical.py does):

* ``seed backup`` -- what seed 001 does: ``redis-cli BGSAVE``, wait for it (INFO
  persistence), ``cp dump.rdb``, ``gpg --symmetric`` with a passphrase file, copy the
  result into a backup folder, remove the copies;
* ``lifeboat backup`` -- ``lifeboat backup cache`` (replication: the snapshot streamed over
  the replication protocol, zstd, age, into a local repository);
* ``lifeboat backup (bgsave)`` -- the same source with ``method = "bgsave"``.

Both ways make the server fork a child that writes the snapshot (to its disk, or to the
socket); that child is the server's, not in the measured tree, but its time is in every wall
time. It prints the table and the ratios, and writes JSON to
``bench/results/redis-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis
from bench_logical import MB, Run, _fmt, _log, _q, _sh, _tool_version, measure

from lifeboat.pipeline.crypto import write_identity

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
LIFEBOAT = str(Path(sys.executable).with_name("lifeboat"))
SEED = "seed backup (BGSAVE + cp + gpg)"
LB = "lifeboat backup"
LB_BGSAVE = "lifeboat backup (bgsave)"


def start_server(folder: Path, password: str) -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [
            "redis-server",
            "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
            "--save", "", "--appendonly", "no", "--requirepass", password,
            "--repl-diskless-sync-delay", "0", "--logfile", str(folder / "redis.log"),
        ],
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(host="127.0.0.1", port=port, password=password)
    for _ in range(600):
        try:
            client.ping()
            return process, port
        except (redis.ConnectionError, redis.BusyLoadingError):
            if process.poll() is not None:
                break
            time.sleep(0.05)
    sys.exit(f"redis-server did not start: {(folder / 'redis.log').read_text()}")


def fill(client_of: Any, keys: int, value_bytes: int) -> None:
    """Strings of random text (about as compressible as cached JSON or HTML fragments:
    base64 of random bytes, 3/4 of a byte of entropy per character), in db0 and db1, and a
    hash of 1000 fields per 10,000 keys."""
    batch = 10_000
    raw = max(1, value_bytes * 3 // 4)
    for start in range(0, keys, batch):
        client = client_of(0 if start % (2 * batch) == 0 else 1)
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(keys, start + batch)):
            pipe.set(f"cache:{i}", base64.b64encode(os.urandom(raw)))
        pipe.hset(
            f"session:{start}",
            mapping={f"f{j}": base64.b64encode(os.urandom(32)) for j in range(1000)},
        )
        pipe.execute()


def seed_script(port: int, password_env: str, rdb: Path, work: Path, dest: Path) -> str:
    """The seed's way, as a shell script (the password from the environment, as
    redis-cli reads it)."""
    cli = f"redis-cli -h 127.0.0.1 -p {port} --no-auth-warning"
    return f"""
export REDISCLI_AUTH="${password_env}"
before=$({cli} LASTSAVE)
{cli} BGSAVE >/dev/null
while [ "$({cli} LASTSAVE)" = "$before" ]; do sleep 0.1; done
{cli} INFO persistence | grep -q 'rdb_last_bgsave_status:ok'
cp {_q(rdb)} {_q(work / "dump.rdb")}
gpg --batch --yes --quiet --symmetric --pinentry-mode loopback \\
    --passphrase-file {_q(work / "passphrase")} \\
    -o {_q(work / "dump.rdb.gpg")} {_q(work / "dump.rdb")}
cp {_q(work / "dump.rdb.gpg")} {_q(dest / "dump.rdb.gpg")}
rm -f {_q(work / "dump.rdb")} {_q(work / "dump.rdb.gpg")}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--value-bytes", type=int, default=250)
    args = parser.parse_args()
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        sys.exit("install the Debian packages redis-server and redis-tools")
    password = secrets.token_hex(12)
    os.environ["BENCH_REDIS_PASSWORD"] = password  # the configs' ${BENCH_REDIS_PASSWORD}
    results: dict[str, Run] = {}
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as folder:
        root = Path(folder)
        data, work, dest = root / "data", root / "work", root / "seed-backups"
        for path in (data, work, dest):
            path.mkdir()
        (work / "passphrase").write_text(secrets.token_hex(16))
        process, port = start_server(data, password)
        try:
            _log(f"filling {args.keys} keys of {args.value_bytes} bytes")

            def client_of(db: int) -> redis.Redis:
                return redis.Redis(host="127.0.0.1", port=port, db=db, password=password)

            fill(client_of, args.keys, args.value_bytes)
            info = client_of(0).info("memory")
            public = write_identity(root / "age.key")
            url = f"redis://:${{BENCH_REDIS_PASSWORD}}@127.0.0.1:{port}/0"
            configs = {}
            for name, extra in (
                (LB, ""),
                (LB_BGSAVE, f'method = "bgsave"\nrdb_path = "{data / "dump.rdb"}"\n'),
            ):
                repo = root / ("repo-" + str(len(configs)))
                config = root / f"lifeboat-{len(configs)}.toml"
                config.write_text(
                    f'[repositories.local]\nurl = "file://{repo}"\n\n'
                    f'[encryption]\nage_recipients = ["{public}"]\n\n'
                    f'[sources.cache]\ntype = "redis"\nurl = "{url}"\n{extra}'
                )
                subprocess.run(
                    [LIFEBOAT, "--config", str(config), "init"], check=True, capture_output=True
                )
                configs[name] = config
            env = dict(os.environ)
            log = root / "bench.log"
            os.sync()
            _log(SEED)
            results[SEED] = measure(
                _sh(seed_script(port, "BENCH_REDIS_PASSWORD", data / "dump.rdb", work, dest)),
                log=log,
                env=env,
            )
            for name, config in configs.items():
                os.sync()
                _log(name)
                results[name] = measure(
                    [LIFEBOAT, "--config", str(config), "backup", "cache"], log=log, env=env
                )
            rdb_bytes = (data / "dump.rdb").stat().st_size
            seed_bytes = (
                (dest / "dump.rdb.gpg").stat().st_size if (dest / "dump.rdb.gpg").exists() else None
            )
            stored = {
                name: sum(p.stat().st_size for p in (root / f"repo-{i}").rglob("dump.rdb.zst.age"))
                for i, name in enumerate(configs)
            }
        finally:
            process.kill()
            process.wait()
    for name, run in results.items():
        if run.exit_code != 0:
            sys.exit(f"{name} failed: {run.error}")
    seed = results[SEED]
    report: dict[str, Any] = {
        "keys": args.keys,
        "value_bytes": args.value_bytes,
        "redis_used_memory_mb": round(info["used_memory"] / MB, 1),
        "rdb_mb": round(rdb_bytes / MB, 1),
        "stored_mb": {SEED: seed_bytes and round(seed_bytes / MB, 1)}
        | {name: round(size / MB, 1) for name, size in stored.items()},
        "runs": {name: run.__dict__ for name, run in results.items()},
        "time_ratio_vs_seed": {
            name: round(run.wall_s / seed.wall_s, 2)
            for name, run in results.items()
            if name != SEED
        },
        "versions": {
            "redis-server": _tool_version(["redis-server", "--version"]),
            "gpg": _tool_version(["gpg", "--version"]),
        },
    }
    print(
        f"{args.keys} keys, RDB {report['rdb_mb']} MB, "
        f"Redis memory {report['redis_used_memory_mb']} MB"
    )
    print(
        f"{'step':<34} {'wall s':>8} {'cpu s':>8} {'peak RSS MB':>12} {'stored MB':>10} "
        f"{'x seed':>7}"
    )
    for name, run in results.items():
        ratio = report["time_ratio_vs_seed"].get(name, 1.0)
        stored_mb = report["stored_mb"].get(name)
        print(
            f"{name:<34} {run.wall_s:>8.2f} {run.cpu_s:>8.2f} {run.peak_rss_mb:>12.1f} "
            f"{_fmt(stored_mb):>10} {ratio:>7.2f}"
        )
    out = RESULTS_DIR / f"redis-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
