#!/usr/bin/env python3
"""The scheduler's soak: a week of schedules in compressed time through the real runner.

Run from the repository root with the project's virtualenv::

    .venv/bin/python bench/bench_daemon_soak.py            # a simulated week, 1,008 runs
    .venv/bin/python bench/bench_daemon_soak.py --days 2   # shorter

Jobs, against a local repository (in /dev/shm where there is one: the local storage syncs
every write, and a disk's syncs would dominate what is measured): a backup committed every
hour (no PostgreSQL: the backup's objects and manifest are written as `backup` commits
them), the real `verify` job every quarter hour and the real `prune` job (keep_last 3) every
hour. The clock is simulated (tests/unit/daemon/fakes.py): it moves only while the loop
sleeps with no job running; jobs run in real threads.

Checks that no run was missed or repeated, and prints, at the start and at each simulated
day, the process's resident memory (RSS), the Python heap (tracemalloc's traced total) and
its open file descriptors. RSS moves with the C allocator's per-thread arenas (each job runs
in a new thread), by a few MiB up and down; the Python heap is what grows with a leak.
Exits 1 when runs differ, the Python heap grew by 1 MiB or more after the first day (the
warm-up: imports, caches), RSS by 16 MiB or more, or file descriptors grew.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/unit: the simulated clock and the test backups

from tests.unit.backups import commit_physical  # noqa: E402
from tests.unit.daemon.fakes import START, FakeClock, FakeSleeper, make_runner  # noqa: E402
from tests.unit.helpers import local_repository, new_age_key  # noqa: E402

from lifeboat.config.model import LifeboatConfig  # noqa: E402
from lifeboat.context import Context  # noqa: E402
from lifeboat.daemon.jobs import Outcome, execute  # noqa: E402
from lifeboat.daemon.runner import JobRun  # noqa: E402
from lifeboat.repo import layout  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 2**20


def rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * PAGE


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def sample() -> tuple[int, int, int]:
    """RSS, Python heap (bytes) and open file descriptors."""
    return rss_bytes(), tracemalloc.get_traced_memory()[0], open_fds()


def expected_runs(days: int) -> list[tuple[str, object]]:
    hours = days * 24
    return sorted(
        [("backup", START + timedelta(hours=h)) for h in range(1, hours + 1)]
        + [("verify", START + timedelta(minutes=15 * q)) for q in range(1, hours * 4 + 1)]
        + [("prune", START + timedelta(hours=h, minutes=30)) for h in range(hours)]
    )


def soak(folder: Path, days: int) -> int:
    key = new_age_key(folder)
    repository = local_repository(folder, "local")
    # the WAL every test backup needs to be consistent (their start and stop segment)
    segment = layout.wal_key("wms", "000000010000000000000002", "e" * 64, ".age")
    repository.storage.write(segment, [b"wal"])
    config = LifeboatConfig.model_validate(
        {
            "repositories": {"local": {"url": str(folder / "local")}},
            "encryption": {
                "age_recipients": [key.public],
                "age_identity_file": str(key.identity_file),
            },
            "sources": {"wms": {"type": "postgres", "dsn": "postgresql://db/wms"}},
            "retention": {"keep_last": 3},
            "schedule": {
                "backup": {"job": "backup", "source": "wms", "cron": "0 * * * *"},
                "verify": {"job": "verify", "source": "wms", "every": "15m"},
                "prune": {"job": "prune", "source": "wms", "cron": "30 * * * *"},
            },
        }
    )
    clock = FakeClock()
    runs: list[tuple[str, object]] = []
    failures: list[str] = []
    samples: dict[str, tuple[int, int, int]] = {}
    backups = iter(range(1_000_000))

    def run_job(run: JobRun) -> Outcome:
        runs.append((run.name, run.fire))
        if run.started.time() == START.time() and run.name == "backup":
            samples[f"day {(run.started - START).days}"] = sample()
        if run.name == "backup":
            commit_physical(repository, next(backups))
            outcome = Outcome(True, "committed")
        else:
            ctx = Context(config, folder / "lifeboat.toml")
            outcome = execute(ctx, run.job, run.started, folder)
        if not outcome.ok:
            failures.append(f"{run.name}: {outcome.message}")
        return outcome

    sleeper = FakeSleeper(clock, until=START + timedelta(days=days))
    runner = make_runner(config, run_job, folder / "state.json", clock, sleeper)
    samples["start"] = sample()
    began = time.monotonic()
    code = runner.run()
    took = time.monotonic() - began
    samples["end"] = sample()
    day, after = samples.get("day 1", samples["start"]), samples["end"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"{len(runs)} runs over {days} simulated day(s) in {took:.0f} s")
    order = ["start"] + [k for k in samples if k.startswith("day")] + ["end"]
    figures = [("RSS MiB", 0)] + ([("Python heap MiB", 1)] if tracemalloc.is_tracing() else [])
    for label, index in figures:
        print(f"{label}: " + ", ".join(f"{k} {samples[k][index] / MIB:.2f}" for k in order))
    print("open fds: " + ", ".join(f"{k} {samples[k][2]}" for k in order))
    print(f"peak RSS {peak:.1f} MiB")
    print(f"backups kept by prune: {len(repository.list_backups('wms'))}")
    problems = []
    if code != 0 or failures:
        problems.append(f"the runner exited {code}; failed runs: {failures[:3]}")
    if sorted(runs) != expected_runs(days):  # type: ignore[type-var]
        problems.append("a run was missed or repeated")
    if tracemalloc.is_tracing() and after[1] - day[1] >= MIB:
        problems.append("the Python heap grew by 1 MiB or more after the first day")
    if after[0] - day[0] >= 16 * MIB:
        problems.append("RSS grew by 16 MiB or more after the first day")
    if after[2] > day[2]:
        problems.append("open file descriptors grew")
    for problem in problems:
        print(f"FAIL: {problem}")
    print("PASS" if not problems else "")
    return 1 if problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7, help="simulated days (default 7)")
    parser.add_argument(
        "--no-heap",
        action="store_true",
        help="do not trace the Python heap (4x faster; RSS without tracemalloc's own memory)",
    )
    args = parser.parse_args()
    if not args.no_heap:
        tracemalloc.start()
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as folder:
        return soak(Path(folder), args.days)


if __name__ == "__main__":
    sys.exit(main())
