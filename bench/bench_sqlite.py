#!/usr/bin/env python3
"""SQLite backup benchmark: Lifeboat against the seed's `sqlite3 .backup` + `gpg --encrypt`.

Run from the repository root with the project's virtualenv::

    .venv/bin/python bench/bench_sqlite.py                 # a ~300 MB database
    .venv/bin/python bench/bench_sqlite.py --mb 50         # a quick run

It builds one SQLite database in WAL mode (an inventory: text, numbers, JSON-like
attributes and small binary photos; it compresses about 3x with zstd), then measures, in
one run and on the same warm file, wall time, CPU time and the peak resident memory of the
process tree of:

* ``seed backup``     -- ``sqlite3 DB ".backup SNAP"`` then ``gpg --encrypt`` then ``rm SNAP``
  (the seed script's way: a plain copy on disk, then encrypted, uncompressed);
* ``lifeboat backup`` -- ``lifeboat backup`` of a ``type = "sqlite"`` source (backup API,
  PRAGMA integrity_check, zstd, age, sha256 on both sides, into a local repository);
* ``lifeboat vacuum-into`` -- the same with ``method = "vacuum-into"``.

It prints a table, Lifeboat's time as a ratio of the seed's, PASS/MISS against the issue's
targets (ahead of the seed script, peak RSS <= 256 MB), and writes everything as JSON to
``bench/results/sqlite-<timestamp>.json``. Peak RSS is measured as bench_logical.py does
(see bench/README.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench_logical import (
    MB,
    StepResult,
    Target,
    _fmt,
    _log,
    _q,
    _sh,
    _tool_version,
    measure,
    print_targets,
    setup_gpg,
    stop_gpg,
)

from lifeboat.pipeline.crypto import write_identity

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
LIFEBOAT = str(Path(sys.executable).with_name("lifeboat"))
DATASET = "sqlite"
SEED = "seed backup"
LIFEBOAT_BACKUP = "lifeboat backup"
LIFEBOAT_VACUUM = "lifeboat vacuum-into"
RSS_LIMIT_MB = 256.0


@dataclass(frozen=True)
class Options:
    mb: int
    repeat: int
    keep: bool
    output: Path


def rows(start: int, count: int) -> Iterator[tuple[Any, ...]]:
    """Inventory rows of about 1 KB: a name, a price, attributes as JSON text, and a
    128-byte 'photo' half random, half repeated (as thumbnails compress a little)."""
    for n in range(start, start + count):
        digest = hashlib.sha256(n.to_bytes(8, "little")).digest()
        attributes = json.dumps(
            {
                "colour": ["red", "green", "blue", "black"][n % 4],
                "size": n % 48,
                "supplier": f"supplier-{n % 977:04}",
                "notes": f"lot {n // 1000} shelf {n % 200} aisle {n % 31} " * 8,
            }
        )
        yield (n, f"item {n:09}", n / 100, attributes, digest * 2 + digest[:8] * 8)


def build_database(path: Path, megabytes: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = wal")
    conn.execute(
        "CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT, price REAL, "
        "attributes TEXT, photo BLOB)"
    )
    conn.execute("CREATE INDEX item_by_name ON item (name)")
    batch = 50_000
    done = 0
    while path.stat().st_size < megabytes * MB:
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO item VALUES (?, ?, ?, ?, ?)", rows(done, batch))
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        done += batch
    conn.close()


def lifeboat_config(work: Path, database: Path) -> Path:
    public = write_identity(work / "age.key")
    config = work / "lifeboat.toml"
    config.write_text(
        f'[repositories.local]\nurl = "file://{work / "repo"}"\n\n'
        f'[encryption]\nage_recipients = ["{public}"]\nage_identity_file = "{work / "age.key"}"\n\n'
        f'[sources.inventory]\ntype = "sqlite"\npath = "{database}"\n\n'
        f'[sources.inventory-vacuum]\ntype = "sqlite"\npath = "{database}"\n'
        'method = "vacuum-into"\n'
    )
    subprocess.run([LIFEBOAT, "--config", str(config), "init"], check=True, capture_output=True)
    return config


def stored_bytes(repo: Path, source: str) -> int:
    listed = sorted((repo / source / "backups").glob("*/database.zst.age"))
    return listed[-1].stat().st_size if listed else 0


def run(opts: Options) -> int:
    started = dt.datetime.now(dt.UTC)
    work = Path(tempfile.mkdtemp(prefix="lifeboat-bench-sqlite-"))
    log = work / "bench.log"
    gpg_home: Path | None = None
    try:
        database = work / "inventory.db"
        _log(f"building a {opts.mb} MB database in {database}")
        build_database(database, opts.mb)
        size = database.stat().st_size
        _log(f"database: {size / MB:.0f} MB")
        gpg_home, gpg_key = setup_gpg(work, log)
        config = lifeboat_config(work, database)
        snap = work / "snap.db"
        seed = _sh(
            f"sqlite3 {_q(database)} {_q('.backup ' + str(snap))}\n"
            f"gpg --batch --yes --trust-model always --encrypt --recipient {_q(gpg_key)} "
            f"--output {_q(snap)}.gpg {_q(snap)}\n"
            f"rm {_q(snap)}"
        )
        commands = {
            SEED: seed,
            LIFEBOAT_BACKUP: [LIFEBOAT, "--config", str(config), "backup", "inventory"],
            LIFEBOAT_VACUUM: [LIFEBOAT, "--config", str(config), "backup", "inventory-vacuum"],
        }
        env = {**os.environ, "GNUPGHOME": str(gpg_home)}
        results = {name: StepResult(DATASET, name) for name in commands}
        # warm the page cache: every contender reads the file from memory
        database.read_bytes()
        for round_ in range(opts.repeat):
            for name, argv in commands.items():
                os.sync()  # no contender pays for the writeback of another's files
                _log(f"round {round_ + 1}: {name}")
                results[name].runs.append(measure(argv, log=log, env=env))
        results[SEED].stored_bytes = (work / "snap.db.gpg").stat().st_size
        results[LIFEBOAT_BACKUP].stored_bytes = stored_bytes(work / "repo", "inventory")
        results[LIFEBOAT_VACUUM].stored_bytes = stored_bytes(work / "repo", "inventory-vacuum")
        report(list(results.values()), size)
        targets = judge(results)
        print_targets(targets)
        write(opts, started, size, list(results.values()), targets)
        return 0 if all(r.ok for r in results.values()) else 1
    finally:
        if gpg_home is not None:
            stop_gpg(gpg_home)
        if opts.keep:
            _log(f"kept work directory {work}")
        else:
            subprocess.run(["rm", "-rf", str(work)], check=False)


def report(results: Sequence[StepResult], size: int) -> None:
    seed_wall = results[0].wall_s
    header = (
        f"{'step':<22} {'wall s':>8} {'cpu s':>8} {'peak RSS MB':>12} {'stored MB':>10} "
        f"{'x seed time':>12}"
    )
    print(f"\nSQLite database of {size / MB:.0f} MB (WAL mode), page cache warm")
    print(header)
    print("-" * len(header))
    for r in results:
        ratio = r.wall_s / seed_wall if r.wall_s and seed_wall else None
        stored = r.stored_bytes / MB if r.stored_bytes else None
        print(
            f"{r.step:<22} {_fmt(r.wall_s, 2):>8} {_fmt(r.cpu_s, 2):>8} "
            f"{_fmt(r.peak_rss_mb):>12} {_fmt(stored):>10} {_fmt(ratio, 2):>12}"
        )
        if not r.ok:
            print(f"  failed: {[run.error for run in r.runs if run.error]}")
    print()


def judge(results: dict[str, StepResult]) -> list[Target]:
    seed, lifeboat = results[SEED].wall_s, results[LIFEBOAT_BACKUP].wall_s
    ratio = lifeboat / seed if lifeboat and seed else None
    return [
        Target(DATASET, "backup time / seed", 1.0, "x", ratio),
        Target(
            DATASET, "backup peak RSS", RSS_LIMIT_MB, "MB", results[LIFEBOAT_BACKUP].peak_rss_mb
        ),
        Target(
            DATASET,
            "vacuum-into peak RSS",
            RSS_LIMIT_MB,
            "MB",
            results[LIFEBOAT_VACUUM].peak_rss_mb,
        ),
    ]


def write(
    opts: Options,
    started: dt.datetime,
    size: int,
    results: Sequence[StepResult],
    targets: Sequence[Target],
) -> None:
    payload = {
        "benchmark": "sqlite",
        "started_at": started.isoformat(),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(opts).items()},
        "environment": {
            "python": platform.python_version(),
            "sqlite_library": sqlite3.sqlite_version,
            "sqlite3": _tool_version(["sqlite3", "--version"]),
            "gpg": _tool_version(["gpg", "--version"]),
            "cpus": os.cpu_count(),
        },
        "database_bytes": size,
        "steps": [r.to_json() for r in results],
        "targets": [{**asdict(t), "status": t.status} for t in targets],
    }
    opts.output.parent.mkdir(parents=True, exist_ok=True)
    opts.output.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {opts.output}")


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--mb", type=int, default=300, help="database size in MB (default 300)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each step (medians)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / f"sqlite-{stamp}.json")
    args = parser.parse_args(argv)
    return Options(args.mb, args.repeat, args.keep, args.output)


if __name__ == "__main__":
    sys.exit(run(parse_args(None)))
