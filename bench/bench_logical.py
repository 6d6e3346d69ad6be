#!/usr/bin/env python3
"""Logical backup benchmark: Lifeboat against bare pg_dump and the pg_dump + gpg seed script.

Run from the repository root with the project's virtualenv::

    .venv/bin/python bench/bench_logical.py              # WMS ~1 GB and pgbench scale 100
    .venv/bin/python bench/bench_logical.py --quick      # WMS ~0.1 GB and pgbench scale 5

The benchmark starts its own scratch PostgreSQL cluster, loads two datasets, and measures
for each of them wall time, CPU time and the peak resident memory of the process tree of:

* ``bare``       -- ``pg_dump -Fc -Z0 > /dev/null``, the extraction limit;
* ``seed-backup``  -- ``pg_dump -Fc -f FILE`` then ``gpg --encrypt`` then ``rm FILE``;
* ``lifeboat-backup`` -- ``lifeboat backup``;
* ``seed-restore`` -- ``gpg -d`` then ``pg_restore --single-transaction`` then ``rm``;
* ``lifeboat-restore`` -- ``lifeboat restore --backup latest``.

It prints a table, the ratios the project's performance targets are stated in, PASS/MISS per
target, and writes everything as JSON to ``bench/results/logical-<timestamp>.json``.
See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from lifeboat.demo import wms
from lifeboat.postgres.binaries import bin_dir_major, find_bin_dirs
from lifeboat.postgres.instance import ScratchCluster

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
DEFAULT_PG_MAJOR = 15
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
SAMPLE_INTERVAL_S = 0.1
MB = 1024 * 1024

# Step names, in the order they run for every dataset.
BARE = "bare pg_dump -Z0"
SEED_BACKUP = "seed backup"
LB_BACKUP = "lifeboat backup"
SEED_RESTORE = "seed restore"
LB_RESTORE = "lifeboat restore"
STEPS = (BARE, SEED_BACKUP, LB_BACKUP, SEED_RESTORE, LB_RESTORE)

RSS_LIMIT_MB = 256.0


# ----------------------------------------------------------------------------- measuring


@dataclass
class Run:
    """One execution of a measured command."""

    wall_s: float
    cpu_s: float
    peak_rss_mb: float  # sampled sum of RSS over the whole process tree
    max_proc_rss_mb: float  # largest VmHWM of a single process
    exit_code: int
    error: str | None = None


@dataclass
class StepResult:
    dataset: str
    step: str
    runs: list[Run] = field(default_factory=list)
    stored_bytes: int | None = None
    verified: bool | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.runs) and all(r.exit_code == 0 for r in self.runs)

    @property
    def wall_s(self) -> float | None:
        return statistics.median(r.wall_s for r in self.runs) if self.ok else None

    @property
    def cpu_s(self) -> float | None:
        return statistics.median(r.cpu_s for r in self.runs) if self.ok else None

    @property
    def peak_rss_mb(self) -> float | None:
        return max(r.peak_rss_mb for r in self.runs) if self.ok else None

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "step": self.step,
            "ok": self.ok,
            "error": self.error,
            "wall_s": self.wall_s,
            "cpu_s": self.cpu_s,
            "peak_rss_mb": self.peak_rss_mb,
            "stored_bytes": self.stored_bytes,
            "verified": self.verified,
            "runs": [asdict(r) for r in self.runs],
        }


def _vm_hwm_bytes(pid: str) -> int:
    """Peak resident set size (``VmHWM``) of one process, 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _session_memory(sid: int, hwm: dict[int, int]) -> int:
    """Sum of the RSS of every live process in session ``sid``.

    Also records the ``VmHWM`` of every member in ``hwm`` (pid -> bytes), which catches
    the peak of a process between two samples.
    """
    total = 0
    try:
        entries = os.listdir("/proc")
    except OSError:
        return 0
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        # Fields after "(comm)": state ppid pgrp session ... rss is field 24 overall.
        rest = data[data.rfind(b")") + 2 :].split()
        try:
            if int(rest[3]) != sid:
                continue
            rss = int(rest[21]) * PAGE_SIZE
        except (IndexError, ValueError):
            continue
        total += rss
        pid = int(name)
        hwm[pid] = max(hwm.get(pid, 0), rss, _vm_hwm_bytes(name))
    return total


def _last_error_line(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    lines = [line.strip() for line in lines if line.strip()]
    for line in reversed(lines):
        if re.search(r"error|fatal|failed|no such|not found|usage:|traceback", line, re.I):
            return line
    return lines[-1] if lines else ""


def measure(
    argv: Sequence[str],
    *,
    log: Path,
    env: Mapping[str, str] | None = None,
    stdout_devnull: bool = False,
    stdout_path: Path | None = None,
    timeout: float | None = None,
) -> Run:
    """Run ``argv`` in a new session; return wall time, CPU time and peak RSS of the tree.

    Peak RSS is the largest sum of the resident set sizes of all processes in the session,
    sampled every ``SAMPLE_INTERVAL_S``, or the largest ``VmHWM`` of a single member if that
    is higher (it covers peaks between two samples). Processes that start and exit between
    two samples are missed. ``ru_maxrss`` from ``wait4`` is not used: on Linux it includes
    the memory of this (forking) Python process.

    Standard output goes to ``stdout_path`` when given (a command's JSON answer), else to
    ``log`` or, with ``stdout_devnull``, nowhere.
    """
    with log.open("ab") as err, contextlib.ExitStack() as stack:
        out: Any = subprocess.DEVNULL if stdout_devnull else err
        if stdout_path is not None:
            out = stack.enter_context(stdout_path.open("wb"))
        start = time.monotonic()
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
        peak = 0
        hwm: dict[int, int] = {}
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, _session_memory(proc.pid, hwm))
                done.wait(SAMPLE_INTERVAL_S)

        def kill() -> None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        timer = threading.Timer(timeout, kill) if timeout else None
        if timer is not None:
            timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            wall = time.monotonic() - start
            done.set()
            if timer is not None:
                timer.cancel()
            sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    max_proc = max(hwm.values(), default=0) / MB
    code = proc.returncode
    error = None if code == 0 else f"exit {code}: {_last_error_line(log)}"
    return Run(
        wall_s=round(wall, 3),
        cpu_s=round(usage.ru_utime + usage.ru_stime, 3),
        peak_rss_mb=round(max(peak / MB, max_proc), 1),
        max_proc_rss_mb=round(max_proc, 1),
        exit_code=code,
        error=error,
    )


# ----------------------------------------------------------------------------- helpers


def _sh(script: str) -> list[str]:
    return ["bash", "-c", "set -euo pipefail\n" + script]


def _q(value: object) -> str:
    return shlex.quote(str(value))


def _tree_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += (Path(root) / name).stat().st_size
    return total


def _tool_version(argv: Sequence[str]) -> str:
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=False)
    except OSError as exc:
        return f"unavailable ({exc})"
    text = (proc.stdout or proc.stderr).strip()
    return text.splitlines()[0] if text else f"exit {proc.returncode}"


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


class Cluster:
    """The scratch cluster plus the client-side helpers the benchmark needs."""

    def __init__(self, sc: ScratchCluster) -> None:
        self.sc = sc
        self.bin_dir = sc.bin_dir
        self.env = sc.client_env()

    def tool(self, name: str) -> str:
        return str(self.bin_dir / name)

    def sql(self, statement: str, dbname: str = "postgres") -> list[tuple[Any, ...]]:
        with psycopg.connect(self.sc.dsn(dbname), autocommit=True) as conn:
            cur = conn.execute(statement)
            return list(cur.fetchall()) if cur.description else []

    def create_db(self, name: str) -> None:
        self.sql(f'DROP DATABASE IF EXISTS "{name}"')
        self.sql(f'CREATE DATABASE "{name}"')

    def drop_db(self, name: str) -> None:
        self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def checkpoint(self) -> None:
        self.sql("CHECKPOINT")
        # flush every dirty page of the previous step, so that no contender pays for the
        # writeback of the files another one left behind
        os.sync()

    def db_size(self, name: str) -> int:
        return int(self.sql(f"SELECT pg_database_size('{name}')")[0][0])

    def fingerprint(self, dbname: str) -> dict[str, int]:
        """Row count of every user table: a cheap check that a restore is complete."""
        rows = self.sql(
            "SELECT format('%I.%I', schemaname, relname) FROM pg_stat_user_tables ORDER BY 1",
            dbname,
        )
        counts: dict[str, int] = {}
        for (table,) in rows:
            counts[table] = int(self.sql(f"SELECT count(*) FROM {table}", dbname)[0][0])
        return counts


# ----------------------------------------------------------------------------- datasets


@dataclass
class Dataset:
    name: str  # also the database and the Lifeboat source name
    description: str
    load_s: float = 0.0
    db_bytes: int = 0
    rows: dict[str, int] = field(default_factory=dict)


def load_wms(cluster: Cluster, name: str, gigabytes: float) -> Dataset:
    cluster.create_db(name)
    start = time.monotonic()
    with psycopg.connect(cluster.sc.dsn(name)) as conn:
        wms.create_schema(conn)
        rows = wms.load(conn, int(gigabytes * 1e9))
    elapsed = time.monotonic() - start
    return Dataset(
        name, f"WMS generator, target {gigabytes:g} GB", elapsed, cluster.db_size(name), rows
    )


def load_pgbench(cluster: Cluster, name: str, scale: int, log: Path) -> Dataset:
    cluster.create_db(name)
    start = time.monotonic()
    with log.open("ab") as fh:
        subprocess.run(
            # Server-side data generation (G) is much faster than client-side COPY.
            [
                cluster.tool("pgbench"),
                "-i",
                "-s",
                str(scale),
                "-q",
                "-I",
                "dtGvp",
                cluster.sc.dsn(name),
            ],
            stdout=fh,
            stderr=fh,
            env=cluster.env,
            check=True,
        )
    elapsed = time.monotonic() - start
    rows = {t: n for t, n in cluster.fingerprint(name).items()}
    return Dataset(name, f"pgbench -i -s {scale}", elapsed, cluster.db_size(name), rows)


# ----------------------------------------------------------------------------- contenders


@dataclass
class Lifeboat:
    exe: Path
    config: Path
    repo_dir: Path
    env: dict[str, str]
    setup_error: str | None = None


def setup_gpg(work: Path, log: Path) -> tuple[Path, str]:
    # A short home directory: gpg-agent puts its sockets there when /run/user is missing.
    home = Path(tempfile.mkdtemp(prefix="lbgpg-"))
    home.chmod(0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    with log.open("ab") as fh:
        subprocess.run(
            [
                "gpg",
                "--batch",
                "--passphrase",
                "",
                "--quick-gen-key",
                "bench@example.com",
                "default",
                "default",
                "never",
            ],
            stdout=fh,
            stderr=fh,
            env=env,
            check=True,
            timeout=300,
        )
    return home, "bench@example.com"


def stop_gpg(home: Path) -> None:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "all"],
            capture_output=True,
            timeout=60,
            check=False,
        )
    shutil.rmtree(home, ignore_errors=True)


def setup_lifeboat(cluster: Cluster, work: Path, datasets: Sequence[str], log: Path) -> Lifeboat:
    exe = Path(sys.executable).parent / "lifeboat"
    lb_dir = work / "lifeboat"
    lb_dir.mkdir()
    repo_dir = lb_dir / "repo"
    key_file = lb_dir / "age.key"
    config = lb_dir / "lifeboat.toml"
    env = {**cluster.env, "LIFEBOAT_PG_BIN_DIRS": str(cluster.bin_dir)}
    lb = Lifeboat(exe, config, repo_dir, env)

    def run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            list(argv), capture_output=True, text=True, env=env, timeout=300, check=False
        )
        with log.open("a", encoding="utf-8") as fh:
            fh.write(f"$ {shlex.join(argv)}\n{proc.stdout}{proc.stderr}")
        return proc

    recipient = None
    if exe.exists():
        proc = run([str(exe), "keygen", "--output", str(key_file)])
        match = re.search(r"age1[0-9a-z]+", proc.stdout)
        if proc.returncode == 0 and match:
            recipient = match.group(0)
    if recipient is None:
        _log("lifeboat keygen unavailable; generating the age key with age-keygen")
        key_file.unlink(missing_ok=True)
        proc = run(["age-keygen", "-o", str(key_file)])
        match = re.search(r"age1[0-9a-z]+", proc.stdout + proc.stderr)
        if proc.returncode != 0 or match is None:
            lb.setup_error = "cannot generate an age key: " + (proc.stderr.strip() or "?")
            return lb
        recipient = match.group(0)

    lines = [
        "[repositories.local]",
        f"url = {json.dumps(str(repo_dir))}",
        "",
        "[encryption]",
        f"age_recipients = [{json.dumps(recipient)}]",
        f"age_identity_file = {json.dumps(str(key_file))}",
        "",
    ]
    for name in datasets:
        lines += [
            f"[sources.{name}]",
            'type = "postgres"',
            f"dsn = {json.dumps(cluster.sc.dsn(name))}",
            f"pg_bin_dir = {json.dumps(str(cluster.bin_dir))}",
            "",
        ]
    config.write_text("\n".join(lines), encoding="utf-8")

    if not exe.exists():
        lb.setup_error = f"{exe} not found (is the project installed in this virtualenv?)"
        return lb
    proc = run([str(exe), "--config", str(config), "init"])
    if proc.returncode != 0:
        lines_out = [x for x in (proc.stderr + proc.stdout).splitlines() if x.strip()]
        lb.setup_error = f"lifeboat init: exit {proc.returncode}: " + (
            lines_out[-1].strip() if lines_out else "no output"
        )
    return lb


# ----------------------------------------------------------------------------- the run


def seed_backup_script(cluster: Cluster, dsn: str, dump: Path, enc: Path, gpg_key: str) -> str:
    """The seed's backup: pg_dump -Fc, gpg --encrypt, remove the plain dump."""
    return (
        f"{_q(cluster.tool('pg_dump'))} -Fc -f {_q(dump)} -d {_q(dsn)}\n"
        f"gpg --batch --yes --trust-model always --encrypt --recipient {_q(gpg_key)}"
        f" --output {_q(enc)} {_q(dump)}\n"
        f"rm -f {_q(dump)}\n"
    )


def seed_restore_script(cluster: Cluster, enc: Path, dump: Path, target_dsn: str) -> str:
    """The seed's restore into an existing empty database: gpg -d, pg_restore
    --single-transaction, remove the plain dump."""
    return (
        f"gpg --batch --yes --quiet --decrypt {_q(enc)} > {_q(dump)}\n"
        f"{_q(cluster.tool('pg_restore'))} --single-transaction -d {_q(target_dsn)}"
        f" {_q(dump)}\n"
        f"rm -f {_q(dump)}\n"
    )


@dataclass
class Options:
    wms_gb: float
    pgbench_scale: int
    repeat: int
    timeout: float
    keep: bool
    bin_dir: Path
    skip_lifeboat: bool


def run_dataset(
    cluster: Cluster,
    ds: Dataset,
    work: Path,
    gpg_home: Path,
    gpg_key: str,
    lb: Lifeboat,
    opts: Options,
) -> list[StepResult]:
    logs = work / "logs"
    dump = work / f"{ds.name}.dump"
    enc = work / f"{ds.name}.dump.gpg"
    gpg_env = {**cluster.env, "GNUPGHOME": str(gpg_home)}
    dsn = cluster.sc.dsn(ds.name)
    expected = cluster.fingerprint(ds.name)
    results: list[StepResult] = []

    def step(
        name: str,
        argv: Callable[[int], Sequence[str]],
        *,
        env: Mapping[str, str],
        devnull: bool = False,
        before: Callable[[int], None] | None = None,
        after: Callable[[int, Run], None] | None = None,
        blocked: str | None = None,
    ) -> StepResult:
        res = StepResult(ds.name, name)
        results.append(res)
        if blocked is not None:
            res.error = blocked
            _log(f"{ds.name}: {name}: skipped ({blocked})")
            return res
        for i in range(opts.repeat):
            if before is not None:
                before(i)
            cluster.checkpoint()
            log = logs / f"{ds.name}-{name.replace(' ', '_')}-{i}.log"
            run = measure(argv(i), log=log, env=env, stdout_devnull=devnull, timeout=opts.timeout)
            res.runs.append(run)
            _log(
                f"{ds.name}: {name}: {run.wall_s:.1f} s, {run.peak_rss_mb:.0f} MB"
                + (f" -- FAILED {run.error}" if run.error else "")
            )
            if run.error:
                res.error = run.error
                break
            if after is not None:
                after(i, run)
        return res

    # Warm-up: every contender then reads the same warm page cache and shared buffers.
    _log(f"{ds.name}: warm-up pg_dump")
    warm = measure(
        [cluster.tool("pg_dump"), "-Fc", "-Z0", "-d", dsn],
        log=logs / f"{ds.name}-warmup.log",
        env=cluster.env,
        stdout_devnull=True,
        timeout=opts.timeout,
    )
    if warm.error:
        raise RuntimeError(f"warm-up pg_dump failed: {warm.error}")

    step(
        BARE,
        lambda i: [cluster.tool("pg_dump"), "-Fc", "-Z0", "-d", dsn],
        env=cluster.env,
        devnull=True,
    )

    def record_size(res_name: str, path: Path) -> Callable[[int, Run], None]:
        def after(_i: int, _run: Run) -> None:
            for r in results:
                if r.step == res_name:
                    r.stored_bytes = _tree_bytes(path)

        return after

    seed_backup = seed_backup_script(cluster, dsn, dump, enc, gpg_key)
    step(
        SEED_BACKUP,
        lambda i: _sh(seed_backup),
        env=gpg_env,
        before=lambda i: enc.unlink(missing_ok=True),
        after=record_size(SEED_BACKUP, enc),
    )

    lb_blocked = lb.setup_error
    lb_backup_size: dict[str, int] = {}

    def lb_before_backup(_i: int) -> None:
        lb_backup_size["before"] = _tree_bytes(lb.repo_dir) if lb.repo_dir.exists() else 0

    def lb_after_backup(_i: int, _run: Run) -> None:
        for r in results:
            if r.step == LB_BACKUP:
                r.stored_bytes = _tree_bytes(lb.repo_dir) - lb_backup_size["before"]

    lb_res = step(
        LB_BACKUP,
        lambda i: [str(lb.exe), "--config", str(lb.config), "backup", ds.name],
        env=lb.env,
        before=lb_before_backup,
        after=lb_after_backup,
        blocked=lb_blocked,
    )

    def verify(res_name: str, target: str) -> Callable[[int, Run], None]:
        def after(_i: int, _run: Run) -> None:
            got = cluster.fingerprint(target)
            for r in results:
                if r.step == res_name:
                    ok = got == expected
                    r.verified = ok if r.verified is None else (r.verified and ok)
            if got != expected:
                _log(f"{ds.name}: {res_name}: restored row counts differ: {got} != {expected}")
            cluster.drop_db(target)

        return after

    seed_target = f"{ds.name}_seed_restore"
    seed_target_dsn = cluster.sc.dsn(seed_target)
    seed_restore = seed_restore_script(cluster, enc, dump, seed_target_dsn)
    seed_ok = any(r.step == SEED_BACKUP and r.ok for r in results)
    step(
        SEED_RESTORE,
        lambda i: _sh(seed_restore),
        env=gpg_env,
        before=lambda i: cluster.create_db(seed_target),
        after=verify(SEED_RESTORE, seed_target),
        blocked=None if seed_ok else "seed backup failed",
    )

    lb_target = f"{ds.name}_lb_restore"
    step(
        LB_RESTORE,
        lambda i: [
            str(lb.exe),
            "--config",
            str(lb.config),
            "restore",
            ds.name,
            "--backup",
            "latest",
            "--target-db",
            lb_target,
            "--yes",
        ],
        env=lb.env,
        before=lambda i: cluster.drop_db(lb_target),
        after=verify(LB_RESTORE, lb_target),
        blocked=lb_blocked or (None if lb_res.ok else "lifeboat backup failed"),
    )
    enc.unlink(missing_ok=True)
    dump.unlink(missing_ok=True)
    return results


# ----------------------------------------------------------------------------- report


@dataclass
class Target:
    dataset: str
    name: str
    limit: float
    unit: str
    value: float | None

    @property
    def status(self) -> str:
        if self.value is None:
            return "n/a"
        return "PASS" if self.value <= self.limit else "MISS"


def _get(results: Sequence[StepResult], dataset: str, step: str) -> StepResult | None:
    for r in results:
        if r.dataset == dataset and r.step == step:
            return r
    return None


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return round(a / b, 3)


def targets(results: Sequence[StepResult], wms_name: str, pgb_name: str) -> list[Target]:
    out: list[Target] = []

    def wall(ds: str, step: str) -> float | None:
        r = _get(results, ds, step)
        return r.wall_s if r else None

    for ds, seed_limit, bare_limit in ((wms_name, 0.5, 1.25), (pgb_name, 1.0, None)):
        out.append(
            Target(
                ds,
                "backup / seed backup",
                seed_limit,
                "x",
                _ratio(wall(ds, LB_BACKUP), wall(ds, SEED_BACKUP)),
            )
        )
        if bare_limit is not None:
            out.append(
                Target(
                    ds,
                    "backup / bare pg_dump",
                    bare_limit,
                    "x",
                    _ratio(wall(ds, LB_BACKUP), wall(ds, BARE)),
                )
            )
        out.append(
            Target(
                ds,
                "restore / seed restore",
                1.1,
                "x",
                _ratio(wall(ds, LB_RESTORE), wall(ds, SEED_RESTORE)),
            )
        )
        rss = [
            r.peak_rss_mb for r in results if r.dataset == ds and r.step in (LB_BACKUP, LB_RESTORE)
        ]
        known = [v for v in rss if v is not None]
        out.append(
            Target(
                ds,
                "lifeboat peak RSS",
                RSS_LIMIT_MB,
                "MB",
                max(known) if known and len(known) == len(rss) else None,
            )
        )
    return out


def print_report(
    datasets: Sequence[Dataset], results: Sequence[StepResult], tgts: Sequence[Target]
) -> None:
    print()
    for ds in datasets:
        print(
            f"dataset {ds.name}: {ds.description}; {ds.db_bytes / MB:.0f} MB on disk, "
            f"loaded in {ds.load_s:.1f} s"
        )
    print()
    header = (
        f"{'dataset':<9} {'step':<18} {'wall s':>8} {'cpu s':>8} {'peak RSS MB':>12} "
        f"{'stored MB':>10}  note"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        stored = None if r.stored_bytes is None else r.stored_bytes / MB
        note = ""
        if r.error:
            note = f"FAILED: {r.error}"
        elif r.verified is not None:
            note = "row counts verified" if r.verified else "ROW COUNTS DIFFER"
        print(
            f"{r.dataset:<9} {r.step:<18} {_fmt(r.wall_s, 2):>8} {_fmt(r.cpu_s, 2):>8} "
            f"{_fmt(r.peak_rss_mb):>12} {_fmt(stored):>10}  {note}"
        )
    print()
    print_targets(tgts)


def print_targets(tgts: Sequence[Target]) -> None:
    """The targets table: value, limit and PASS, MISS or n/a per target."""
    header = f"{'dataset':<9} {'target':<24} {'value':>9} {'limit':>9}  result"
    print(header)
    print("-" * len(header))
    for t in tgts:
        value = "-" if t.value is None else f"{t.value:.{1 if t.unit == 'MB' else 2}f}{t.unit}"
        limit = f"<= {t.limit:g}{t.unit}"
        print(f"{t.dataset:<9} {t.name:<24} {value:>9} {limit:>9}  {t.status}")
    print()


def environment(bin_dir: Path, cluster: Cluster | None) -> dict[str, Any]:
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError), open("/proc/meminfo") as fh:
        mem_kb = int(fh.readline().split()[1])
    info: dict[str, Any] = {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "mem_gb": round(mem_kb / 1024 / 1024, 1),
        "pg_dump": _tool_version([str(bin_dir / "pg_dump"), "--version"]),
        "gpg": _tool_version(["gpg", "--version"]),
        "zstd": _tool_version(["zstd", "--version"]),
        "age": _tool_version(["age", "--version"]),
    }
    lifeboat = Path(sys.executable).parent / "lifeboat"
    info["lifeboat"] = _tool_version([str(lifeboat), "--version"])
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        rev = subprocess.run(
            ["git", "-C", str(BENCH_DIR), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        info["git_commit"] = rev.stdout.strip() or None
    if cluster is not None:
        info["server"] = cluster.sql("SELECT version()")[0][0]
    return info


def write_results(
    output: Path,
    benchmark: str,
    started: dt.datetime,
    opts: Any,
    env_info: dict[str, Any],
    datasets: Sequence[Dataset],
    tgts: Sequence[Target],
    **parts: Any,
) -> None:
    """Write the JSON result file: the options (a dataclass), the environment, the datasets,
    the benchmark's own *parts* (its steps) and the targets with their status."""
    payload = {
        "benchmark": benchmark,
        "started_at": started.isoformat(),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(opts).items()},
        "environment": env_info,
        "datasets": [asdict(d) for d in datasets],
        **parts,
        "targets": [{**asdict(t), "status": t.status} for t in tgts],
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {output}")


@contextlib.contextmanager
def work_dir(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="lifeboat-bench-"))
    # The postgres OS user must be able to traverse it (the cluster lives inside).
    path.chmod(0o755)
    try:
        yield path
    finally:
        if keep:
            _log(f"kept work directory {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def pick_bin_dir(requested: Path | None) -> Path:
    if requested is not None:
        return requested
    dirs = find_bin_dirs()
    for d in dirs:
        if bin_dir_major(d) == DEFAULT_PG_MAJOR:
            return d
    if not dirs:
        raise SystemExit("no PostgreSQL installation found (see scripts/setup.sh)")
    return dirs[0]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmark Lifeboat logical backup/restore against pg_dump baselines."
    )
    p.add_argument(
        "--wms-gb",
        type=float,
        default=None,
        help="size of the WMS dataset in GB (default 1.0; 0.1 with --quick)",
    )
    p.add_argument(
        "--pgbench-scale",
        type=int,
        default=None,
        help="pgbench scale factor (default 100; 5 with --quick)",
    )
    p.add_argument("--quick", action="store_true", help="small datasets for a smoke run")
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run every measured step N times and report the median (default 1)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        help="seconds after which one measured step is killed (default 3600)",
    )
    p.add_argument(
        "--pg-bin-dir",
        type=Path,
        default=None,
        help=f"PostgreSQL bin directory (default: the PostgreSQL {DEFAULT_PG_MAJOR} "
        "one found by lifeboat.postgres.binaries.find_bin_dirs)",
    )
    p.add_argument("--skip-lifeboat", action="store_true", help="measure the baselines only")
    p.add_argument(
        "--keep",
        action="store_true",
        help="keep the work directory (cluster, logs, repository) for inspection",
    )
    p.add_argument(
        "--output",
        type=Path,
        default=None,
        help="JSON result file (default bench/results/logical-<timestamp>.json)",
    )
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be >= 1")
    if args.wms_gb is None:
        args.wms_gb = 0.1 if args.quick else 1.0
    if args.pgbench_scale is None:
        args.pgbench_scale = 5 if args.quick else 100
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    opts = Options(
        wms_gb=args.wms_gb,
        pgbench_scale=args.pgbench_scale,
        repeat=args.repeat,
        timeout=args.timeout,
        keep=args.keep,
        bin_dir=pick_bin_dir(args.pg_bin_dir),
        skip_lifeboat=args.skip_lifeboat,
    )
    started = dt.datetime.now(dt.UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    output = args.output or RESULTS_DIR / f"logical-{stamp}.json"
    results: list[StepResult] = []
    datasets: list[Dataset] = []

    with work_dir(opts.keep) as work:
        logs = work / "logs"
        logs.mkdir()
        setup_log = logs / "setup.log"
        sc = ScratchCluster(opts.bin_dir, base_dir=work / "cluster")
        gpg_home: Path | None = None
        with sc:
            cluster = Cluster(sc)
            _log(f"cluster {sc!r} up; loading datasets")
            wms_ds = load_wms(cluster, "wms", opts.wms_gb)
            _log(f"wms: {wms_ds.db_bytes / MB:.0f} MB in {wms_ds.load_s:.1f} s {wms_ds.rows}")
            pgb_ds = load_pgbench(cluster, "pgbench", opts.pgbench_scale, setup_log)
            _log(f"pgbench: {pgb_ds.db_bytes / MB:.0f} MB in {pgb_ds.load_s:.1f} s")
            datasets = [wms_ds, pgb_ds]
            cluster.checkpoint()
            try:
                gpg_home, gpg_key = setup_gpg(work, setup_log)
                if opts.skip_lifeboat:
                    lb = Lifeboat(
                        Path("lifeboat"),
                        Path(),
                        Path(),
                        {},
                        setup_error="skipped (--skip-lifeboat)",
                    )
                else:
                    lb = setup_lifeboat(cluster, work, [d.name for d in datasets], setup_log)
                    if lb.setup_error:
                        _log(f"lifeboat setup failed: {lb.setup_error}")
                for ds in datasets:
                    results += run_dataset(cluster, ds, work, gpg_home, gpg_key, lb, opts)
                env_info = environment(opts.bin_dir, cluster)
            finally:
                if gpg_home is not None:
                    stop_gpg(gpg_home)

    tgts = targets(results, "wms", "pgbench")
    print_report(datasets, results, tgts)
    write_results(
        output,
        "logical",
        started,
        opts,
        env_info,
        datasets,
        tgts,
        steps=[r.to_json() for r in results],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
