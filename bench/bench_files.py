#!/usr/bin/env python3
"""Files backup benchmark: Lifeboat against `tar | zstd -T2 | age` and `restic backup`.

Run from the repository root with the project's virtualenv::

    .venv/bin/python bench/bench_files.py             # 100,000 small files and 3 x 200 MB
    .venv/bin/python bench/bench_files.py --quick     # 10,000 small files and 3 x 20 MB

One folder is made of many small files (100 to 8,000 bytes, half text, half random, 100
per folder) and a few large random ones (photos, videos: incompressible). Then, one after
the other on a warm page cache, each measured for wall time, CPU time and the peak resident
memory of its process tree (bench_logical.measure), in --rounds rounds (3) whose median
is the figure:

* ``tar pipe``        -- ``tar -cf - DIR | zstd -T2 | age -r KEY > FILE; sync FILE``, what a
  person would script (the file fsynced, as Lifeboat and restic make what they store
  durable);
* ``restic backup``   -- ``restic -r REPO backup DIR``, a first backup into a new
  repository (password from the environment);
* ``lifeboat backup`` -- ``lifeboat backup media`` (a files source of DIR, age, a local
  repository).

It prints the figures (medians), each round's ratio to the tar pipe, the ratios the targets
are stated in (Lifeboat within 1.2x of the tar pipe, peak RSS <= 256 MB) and writes them as
JSON to ``bench/results/files-<timestamp>.json``. See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from bench_logical import MB, RSS_LIMIT_MB, Run, _fmt, _log, _tool_version, _tree_bytes, measure

from lifeboat.pipeline.crypto import write_identity

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
LIFEBOAT = str(Path(sys.executable).with_name("lifeboat"))
TAR_RATIO_LIMIT = 1.2
FILES_PER_FOLDER = 100


def make_dataset(data: Path, small: int, large: int, large_mb: int) -> int:
    """The folder to back up; its size in bytes."""
    rng = random.Random(17)
    words = [b"lorem", b"ipsum", b"backup", b"restore", b"lifeboat", b"file", b"2026"]
    total = 0
    for number in range(small):
        folder = data / "small" / f"{number // FILES_PER_FOLDER:05d}"
        if number % FILES_PER_FOLDER == 0:
            folder.mkdir(parents=True)
        size = rng.randint(100, 8000)
        if number % 2:
            content = os.urandom(size)
        else:
            content = b" ".join(rng.choice(words) for _ in range(size // 6))[:size]
        (folder / f"file-{number}.dat").write_bytes(content)
        total += len(content)
    (data / "large").mkdir(parents=True)
    for number in range(large):
        with (data / "large" / f"video-{number}.bin").open("wb") as out:
            for _ in range(large_mb):
                out.write(os.urandom(MB))
        total += large_mb * MB
    return total


def write_config(work: Path, data: Path, public: str) -> Path:
    config = work / "lifeboat.toml"
    config.write_text(
        f'[repositories.local]\nurl = "file://{work / "lifeboat-repo"}"\n\n'
        f'[encryption]\nage_recipients = ["{public}"]\n'
        f'age_identity_file = "{work / "age.key"}"\n\n'
        f'[sources.media]\ntype = "files"\npaths = ["{data}"]\n\n'
        f'[logging]\nformat = "plain"\n',
        encoding="utf-8",
    )
    return config


def run_benchmark(options: argparse.Namespace, work: Path) -> dict[str, object]:
    if options.data is not None:
        data = options.data.resolve()
        size = _tree_bytes(data)
    else:
        data = work / "data"
        _log(f"making {options.small} small files and {options.large} x {options.large_mb} MB")
        size = make_dataset(data, options.small, options.large, options.large_mb)
    public = write_identity(work / "age.key")
    config = write_config(work, data, public)
    log = work / "bench.log"
    subprocess.run([LIFEBOAT, "--config", str(config), "init"], check=True, capture_output=True)
    restic_env = {**os.environ, "RESTIC_PASSWORD": "bench-password"}
    # one unmeasured read: every contender reads from a warm page cache
    subprocess.run(f"tar -cf - -C {data} . > /dev/null", shell=True, check=True)

    def steps(round_: int) -> dict[str, tuple[list[str], Path, dict[str, str] | None]]:
        """Each round writes somewhere new: a new file, a new restic repository (a second
        backup into the same one would only add what changed), a new Lifeboat backup."""
        tar_out = work / f"tar-{round_}" / "data.tar.zst.age"
        tar_out.parent.mkdir()
        restic_repo = work / f"restic-repo-{round_}"
        subprocess.run(
            ["restic", "-r", str(restic_repo), "init"],
            env=restic_env,
            check=True,
            capture_output=True,
        )
        return {
            "tar pipe": (
                [
                    "bash",
                    "-c",
                    f"set -euo pipefail; tar -cf - -C / {str(data).lstrip('/')} "
                    f"| zstd -q -T2 | age -r {public} > {tar_out}; sync {tar_out}",
                ],
                tar_out.parent,
                None,
            ),
            "restic backup": (
                ["restic", "-r", str(restic_repo), "backup", "--quiet", str(data)],
                restic_repo,
                restic_env,
            ),
            "lifeboat backup": (
                [LIFEBOAT, "--config", str(config), "backup", "media"],
                work / "lifeboat-repo",
                None,
            ),
        }

    runs: dict[str, list[dict[str, object]]] = {}
    for round_ in range(options.rounds):
        for name, (argv, stored, env) in steps(round_).items():
            before = _tree_bytes(stored)
            subprocess.run(["sync"], check=True)
            _log(f"measuring {name} (round {round_ + 1} of {options.rounds})")
            run: Run = measure(argv, log=log, env=env, timeout=options.timeout)
            stored_mb = round((_tree_bytes(stored) - before) / MB, 1)
            runs.setdefault(name, []).append({**asdict(run), "stored_mb": stored_mb})
            if run.error:
                _log(f"{name} FAILED: {run.error}")
    results = {name: summary(step_runs) for name, step_runs in runs.items()}
    return {
        "dataset": {
            "folder": str(options.data) if options.data else "made",
            "small_files": options.small,
            "large_files": options.large,
            "large_mb": options.large_mb,
            "bytes": size,
        },
        "results": results,
        "tools": {
            "tar": _tool_version(["tar", "--version"]),
            "zstd": _tool_version(["zstd", "--version"]),
            "age": _tool_version(["age", "--version"]),
            "restic": _tool_version(["restic", "version"]),
        },
        "cpus": os.cpu_count(),
    }


def summary(runs: list[dict[str, object]]) -> dict[str, object]:
    """A step over its rounds: the median wall and CPU time (one slow round, the machine
    busy elsewhere for a moment, does not make the figure), the largest peak RSS."""
    return {
        "wall_s": statistics.median(float(r["wall_s"]) for r in runs),  # type: ignore[arg-type]
        "cpu_s": statistics.median(float(r["cpu_s"]) for r in runs),  # type: ignore[arg-type]
        "peak_rss_mb": max(float(r["peak_rss_mb"]) for r in runs),  # type: ignore[arg-type]
        "stored_mb": runs[0]["stored_mb"],
        "exit_code": max(int(r["exit_code"]) for r in runs),  # type: ignore[call-overload]
        "rounds": runs,
    }


def ratio(results: dict[str, dict[str, object]], step: str, baseline: str) -> float | None:
    a, b = results[step], results[baseline]
    if a["exit_code"] != 0 or b["exit_code"] != 0:
        return None
    return round(float(a["wall_s"]) / float(b["wall_s"]), 2)  # type: ignore[arg-type]


def report(outcome: dict[str, object]) -> list[str]:
    results = outcome["results"]
    assert isinstance(results, dict)
    print(f"{'step':<18}{'wall s':>9}{'cpu s':>9}{'peak RSS MB':>13}{'stored MB':>11}")
    for name, run in results.items():
        wall = None if run["exit_code"] else run["wall_s"]
        print(
            f"{name:<18}{_fmt(wall, 2):>9}{_fmt(run['cpu_s'], 2):>9}"
            f"{_fmt(run['peak_rss_mb']):>13}{_fmt(run['stored_mb']):>11}"
        )
    rounds = [
        float(mine["wall_s"]) / float(theirs["wall_s"])  # type: ignore[arg-type]
        for mine, theirs in zip(
            results["lifeboat backup"]["rounds"], results["tar pipe"]["rounds"], strict=True
        )
    ]
    print("lifeboat / tar pipe, each round: " + ", ".join(f"{r:.2f}x" for r in rounds))
    to_tar = ratio(results, "lifeboat backup", "tar pipe")
    to_restic = ratio(results, "lifeboat backup", "restic backup")
    rss = results["lifeboat backup"]["peak_rss_mb"]
    lines = [
        f"lifeboat / tar pipe (wall): {_fmt(to_tar, 2)}x  (target <= {TAR_RATIO_LIMIT}x: "
        f"{'n/a' if to_tar is None else 'PASS' if to_tar <= TAR_RATIO_LIMIT else 'MISS'})",
        f"lifeboat / restic (wall): {_fmt(to_restic, 2)}x",
        f"lifeboat peak RSS: {_fmt(rss)} MB  (target <= {RSS_LIMIT_MB:.0f} MB: "
        f"{'PASS' if float(rss) <= RSS_LIMIT_MB else 'MISS'})",  # type: ignore[arg-type]
    ]
    for line in lines:
        print(line)
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 small files, 3 x 20 MB")
    parser.add_argument("--small", type=int, help="small files (default 100,000)")
    parser.add_argument("--large", type=int, default=3, help="large files (default 3)")
    parser.add_argument("--large-mb", type=int, help="MB per large file (default 200)")
    parser.add_argument("--data", type=Path, help="back up this folder instead of making one")
    parser.add_argument(
        "--rounds", type=int, default=3, help="runs of each step, one after the other (3)"
    )
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--output", type=Path, help="JSON result file")
    options = parser.parse_args(argv)
    options.small = options.small or (10_000 if options.quick else 100_000)
    options.large_mb = options.large_mb or (20 if options.quick else 200)
    return options


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="lifeboat-bench-files-"))
    try:
        outcome = run_benchmark(options, work)
        outcome["targets"] = report(outcome)
    finally:
        if options.keep:
            _log(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    output = options.output or RESULTS_DIR / f"files-{stamp}.json"
    output.write_text(json.dumps({"started": time.time(), **outcome}, indent=2))
    _log(f"results in {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
