#!/usr/bin/env python3
"""Physical backup benchmark: Lifeboat against pgBackRest and bare pg_basebackup | zstd.

Run from the repository root with the project's virtualenv::

    .venv/bin/python bench/bench_physical.py              # pgbench scale 100
    .venv/bin/python bench/bench_physical.py --quick      # pgbench scale 5
    .venv/bin/python bench/bench_physical.py --scale 20

Two scratch PostgreSQL clusters are created and loaded with ``pgbench -i -s N``: one archives
its WAL with ``pgbackrest archive-push``, the other with ``lifeboat wal-push``.  For each tool
the benchmark times a full physical backup, a restore into a fresh data directory (including
the start of the restored cluster and the end of its recovery) and the archiving of about ten
copies of a real 16 MiB WAL segment.  ``pg_basebackup -Ft -X fetch | zstd -3 -T2 > /dev/null``
is timed as the raw limit for a compressed base backup.

It prints a table with ratios against pgBackRest and writes JSON to
``bench/results/physical-<timestamp>.json``.  See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import pwd
import re
import secrets
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lifeboat.postgres.instance import ScratchCluster, bin_dir_major, find_bin_dirs

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
DEFAULT_PG_MAJOR = 15
SEGMENT_RE = re.compile(r"^[0-9A-F]{24}$")
SEGMENT_SIZE = 16 * 1024 * 1024
OS_USER = "postgres"
IS_ROOT = os.geteuid() == 0


# ----------------------------------------------------------------------------- helpers


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def pg_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    if IS_ROOT:
        pw = pwd.getpwnam(OS_USER)
        env.update(HOME=pw.pw_dir, USER=OS_USER, LOGNAME=OS_USER)
    return env


def as_pg(cmd: list[str]) -> list[str]:
    """Run *cmd* as the postgres OS user when we are root."""
    return ["runuser", "-u", OS_USER, "--", *cmd] if IS_ROOT else cmd


def chown_pg(path: Path) -> None:
    if IS_ROOT:
        pw = pwd.getpwnam(OS_USER)
        os.chown(path, pw.pw_uid, pw.pw_gid)


def make_dir(path: Path, mode: int = 0o755) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    chown_pg(path)
    return path


def run(cmd: list[str], *, timeout: float = 3600, shell: bool = False) -> str:
    """Run *cmd*; raise with its output if it fails; return stdout."""
    proc = subprocess.run(
        cmd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=pg_env(),
        cwd="/",
        shell=shell,
        executable="/bin/bash" if shell else None,
    )
    if proc.returncode != 0:
        shown = cmd if isinstance(cmd, str) else shlex.join(cmd)
        raise RuntimeError(
            f"command failed (exit {proc.returncode}): {shown}\n{proc.stdout}{proc.stderr}"
        )
    return proc.stdout


def timed(cmd: list[str], **kw: Any) -> float:
    t0 = time.perf_counter()
    run(cmd, **kw)
    return time.perf_counter() - t0


def du_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_out_of_recovery(bin_dir: Path, port: int, timeout: float = 3600) -> None:
    psql = str(bin_dir / "psql")
    dsn = f"host=127.0.0.1 port={port} dbname=postgres user=postgres connect_timeout=5"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = subprocess.run(
            [psql, "-X", "-At", "-d", dsn, "-c", "SELECT pg_is_in_recovery()"],
            capture_output=True,
            text=True,
            env=pg_env(),
        )
        if proc.returncode == 0 and proc.stdout.strip() == "f":
            return
        time.sleep(0.1)
    raise RuntimeError(f"cluster on port {port} still in recovery after {timeout:.0f} s")


def pg_ctl_stop(bin_dir: Path, data_dir: Path) -> None:
    if (data_dir / "postmaster.pid").exists():
        run(as_pg([str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "stop"]))


def load_pgbench(cluster: ScratchCluster, scale: int) -> float:
    t = timed([str(cluster.bin_dir / "pgbench"), "-i", "-q", "-s", str(scale), cluster.dsn()])
    cluster.psql("CHECKPOINT")
    return t


def wal_copies(cluster: ScratchCluster, dest: Path, count: int) -> list[Path]:
    """Copy real, full WAL segments of *cluster* to *dest* under unused timeline-9 names."""
    cluster.psql("SELECT pg_switch_wal()")
    wal_dir = cluster.data_dir / "pg_wal"
    segs = sorted(
        p
        for p in wal_dir.iterdir()
        if SEGMENT_RE.match(p.name) and p.stat().st_size == SEGMENT_SIZE
    )
    if not segs:
        raise RuntimeError(f"no WAL segment found in {wal_dir}")
    src = segs[0]  # the oldest one left: complete, already archived
    make_dir(dest)
    out = []
    for i in range(count):
        name = f"00000009{0:08X}{0x100 + i:08X}"
        target = dest / name
        shutil.copyfile(src, target)
        target.chmod(0o600)
        chown_pg(target)
        out.append(target)
    return out


def time_each(cmds: list[list[str]]) -> list[float]:
    return [timed(c) * 1000.0 for c in cmds]


# ----------------------------------------------------------------------------- pgBackRest


def bench_pgbackrest(args: argparse.Namespace, bin_dir: Path, work: Path) -> dict[str, Any]:
    res: dict[str, Any] = {}
    d = make_dir(work / "pgbackrest")
    conf = d / "pgbackrest.conf"
    cfg = f"--config={conf}"
    archive_cmd = f"pgbackrest {cfg} --stanza=bench archive-push %p"
    cluster = ScratchCluster(
        bin_dir,
        base_dir=d / "pg",
        settings={"archive_mode": "on", "archive_command": archive_cmd},
    )
    conf.write_text(
        "[global]\n"
        f"repo1-path={make_dir(d / 'repo', 0o750)}\n"
        "repo1-cipher-type=aes-256-cbc\n"
        f"repo1-cipher-pass={secrets.token_hex(24)}\n"
        "compress-type=zst\n"
        "compress-level=3\n"
        "process-max=2\n"
        "archive-async=n\n"
        "start-fast=y\n"
        f"log-path={make_dir(d / 'log')}\n"
        f"lock-path={make_dir(d / 'lock')}\n"
        f"spool-path={make_dir(d / 'spool')}\n"
        "log-level-console=warn\n"
        "log-level-file=info\n"
        "\n[bench]\n"
        f"pg1-path={cluster.data_dir}\n"
        f"pg1-port={cluster.port}\n"
        f"pg1-socket-path={cluster.socket_dir}\n"
        f"pg1-user={OS_USER}\n"
    )
    conf.chmod(0o640)
    chown_pg(conf)
    pgbr = ["pgbackrest", cfg, "--stanza=bench"]
    try:
        log(f"pgBackRest: init cluster, pgbench -i -s {args.scale}")
        cluster.init()
        cluster.start()
        res["load_s"] = load_pgbench(cluster, args.scale)
        res["db_bytes"] = int(cluster.psql("SELECT pg_database_size('postgres')"))
        run(as_pg([*pgbr, "stanza-create"]))
        run(as_pg([*pgbr, "check"]))

        log("pgBackRest: backup --type=full")
        res["backup_s"] = timed(as_pg([*pgbr, "backup", "--type=full"]))
        res["repo_bytes"] = du_bytes(d / "repo")

        log("raw: pg_basebackup -Ft -X fetch | zstd -3 -T2")
        pipe = (
            "set -o pipefail; "
            f"{shlex.quote(str(bin_dir / 'pg_basebackup'))} -d {shlex.quote(cluster.dsn())} "
            "-c fast -D - -Ft -X fetch | zstd -q -3 -T2 > /dev/null"
        )
        res["raw_backup_s"] = timed(["bash", "-c", pipe])

        log("pgBackRest: restore into a new data dir, start, wait for recovery")
        new_dir = make_dir(d / "restored", 0o700)
        port = free_port()
        t0 = time.perf_counter()
        run(as_pg([*pgbr, f"--pg1-path={new_dir}", "restore"]))
        run(
            as_pg(
                [
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(new_dir),
                    "-l",
                    str(d / "restored.log"),
                    "-o",
                    f"-p {port}",
                    "-w",
                    "-t",
                    "3600",
                    "start",
                ]
            )
        )
        wait_out_of_recovery(bin_dir, port)
        res["restore_s"] = time.perf_counter() - t0
        pg_ctl_stop(bin_dir, new_dir)
        shutil.rmtree(new_dir, ignore_errors=True)

        log(f"pgBackRest: archive-push x{args.segments}")
        segs = wal_copies(cluster, d / "walcopies", args.segments)
        res["wal_push_ms"] = time_each([as_pg([*pgbr, "archive-push", str(s)]) for s in segs])
    finally:
        cluster.destroy()
    return res


# ----------------------------------------------------------------------------- Lifeboat


def bench_lifeboat(args: argparse.Namespace, bin_dir: Path, work: Path) -> dict[str, Any]:
    res: dict[str, Any] = {}
    d = make_dir(work / "lifeboat")
    lifeboat = str(Path(sys.executable).with_name("lifeboat"))
    cfg_file = d / "lifeboat.toml"
    key_file = d / "age.key"
    lb = [lifeboat, "--config", str(cfg_file)]
    archive_cmd = f"{shlex.quote(lifeboat)} --config {shlex.quote(str(cfg_file))} wal-push wms %p"
    cluster = ScratchCluster(
        bin_dir,
        base_dir=d / "pg",
        settings={"archive_mode": "on", "archive_command": archive_cmd},
    )
    out = run([lifeboat, "keygen", "--output", str(key_file)])
    pub = next((w for w in out.split() if w.startswith("age1")), "")
    if not pub:
        raise RuntimeError(f"no public key in keygen output: {out!r}")
    chown_pg(key_file)
    cfg_file.write_text(
        "[repositories.local]\n"
        f'url = "{make_dir(d / "repo", 0o750)}"\n\n'
        "[encryption]\n"
        f'age_recipients = ["{pub}"]\n'
        f'age_identity_file = "{key_file}"\n\n'
        "[sources.wms]\n"
        f'dsn = "{cluster.dsn()}"\n'
        f'pg_bin_dir = "{bin_dir}"\n'
    )
    chown_pg(cfg_file)
    try:
        run(as_pg([*lb, "init"]))
        log(f"Lifeboat: init cluster, pgbench -i -s {args.scale}")
        cluster.init()
        cluster.start()
        res["load_s"] = load_pgbench(cluster, args.scale)
        res["db_bytes"] = int(cluster.psql("SELECT pg_database_size('postgres')"))

        log("Lifeboat: backup --type physical")
        res["backup_s"] = timed(as_pg([*lb, "backup", "wms", "--type", "physical"]))
        res["repo_bytes"] = du_bytes(d / "repo")

        log("Lifeboat: restore --pgdata NEW --latest --start")
        new_dir = d / "restored"
        port = free_port()
        res["restore_s"] = timed(
            as_pg(
                [
                    *lb,
                    "restore",
                    "wms",
                    "--pgdata",
                    str(new_dir),
                    "--latest",
                    "--start",
                    "--port",
                    str(port),
                ]
            )
        )
        pg_ctl_stop(bin_dir, new_dir)
        shutil.rmtree(new_dir, ignore_errors=True)

        log(f"Lifeboat: wal-push x{args.segments}")
        segs = wal_copies(cluster, d / "walcopies", args.segments)
        res["wal_push_ms"] = time_each([as_pg([*lb, "wal-push", "wms", str(s)]) for s in segs])
    finally:
        cluster.destroy()
    return res


# ----------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=int, default=None, help="pgbench scale (default 100)")
    ap.add_argument("--quick", action="store_true", help="pgbench scale 5")
    ap.add_argument("--segments", type=int, default=10, help="WAL segments to push per tool")
    ap.add_argument("--pg-bin-dir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--output", type=Path, default=None)
    args = ap.parse_args()
    if args.scale is None:
        args.scale = 5 if args.quick else 100

    bin_dir = args.pg_bin_dir
    if bin_dir is None:
        dirs = find_bin_dirs()
        bin_dir = next((b for b in dirs if bin_dir_major(b) == DEFAULT_PG_MAJOR), None) or dirs[0]
    for prog in ("pgbackrest", "zstd", *(["runuser"] if IS_ROOT else [])):
        if shutil.which(prog) is None:
            sys.exit(f"{prog} not found on PATH")
    pgbr_version = run(["pgbackrest", "version"]).strip()

    work = Path(tempfile.mkdtemp(prefix="lifeboat-bench-phys-"))
    work.chmod(0o755)
    chown_pg(work)
    log(
        f"work dir {work}, PostgreSQL {bin_dir_major(bin_dir)}, {pgbr_version}, "
        f"{os.cpu_count()} CPUs, pgbench scale {args.scale}"
    )
    try:
        pgbr = bench_pgbackrest(args, bin_dir, work)
        lbt = bench_lifeboat(args, bin_dir, work)
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    med = statistics.median
    rows = [
        ("backup: pgBackRest full", pgbr["backup_s"], "s", pgbr["backup_s"]),
        ("backup: pg_basebackup | zstd -3 -T2 (raw)", pgbr["raw_backup_s"], "s", pgbr["backup_s"]),
        ("backup: Lifeboat physical", lbt["backup_s"], "s", pgbr["backup_s"]),
        ("restore+recovery: pgBackRest", pgbr["restore_s"], "s", pgbr["restore_s"]),
        ("restore+recovery: Lifeboat", lbt["restore_s"], "s", pgbr["restore_s"]),
        (
            "wal push / segment: pgBackRest (median)",
            med(pgbr["wal_push_ms"]),
            "ms",
            med(pgbr["wal_push_ms"]),
        ),
        (
            "wal push / segment: Lifeboat (median)",
            med(lbt["wal_push_ms"]),
            "ms",
            med(pgbr["wal_push_ms"]),
        ),
    ]
    db_gb = pgbr["db_bytes"] / 1e9
    print()
    print(
        f"pgbench scale {args.scale}: database {db_gb:.2f} GB; {os.cpu_count()} CPUs; "
        f"PostgreSQL {bin_dir_major(bin_dir)}; {pgbr_version}"
    )
    print("pgBackRest: zstd level 3, aes-256-cbc, process-max=2, start-fast, archive-async=n")
    print("Lifeboat:   zstd level 1 (default), age encryption")
    print("raw:        pg_basebackup -c fast -Ft -X fetch, zstd -3 -T2, no encryption, no storage")
    print()
    w = max(len(r[0]) for r in rows)
    print(f"{'step':<{w}}  {'wall':>10}  {'vs pgBackRest':>13}")
    print(f"{'-' * w}  {'-' * 10}  {'-' * 13}")
    for name, val, unit, ref in rows:
        shown = f"{val:.2f} s" if unit == "s" else f"{val:.0f} ms"
        print(f"{name:<{w}}  {shown:>10}  {val / ref:>12.2f}x")
    print()
    print(
        f"repository size: pgBackRest {pgbr['repo_bytes'] / 1e6:.0f} MB, "
        f"Lifeboat {lbt['repo_bytes'] / 1e6:.0f} MB (backup + archived WAL)"
    )

    result = {
        "benchmark": "physical",
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "postgres_major": bin_dir_major(bin_dir),
        "pgbackrest_version": pgbr_version,
        "scale": args.scale,
        "segments": args.segments,
        "settings": {
            "pgbackrest": "compress-type=zst level 3, repo1-cipher-type=aes-256-cbc, "
            "process-max=2, start-fast=y, archive-async=n",
            "lifeboat": "zstd level 1 (default), age encryption",
            "raw": "pg_basebackup -c fast -D - -Ft -X fetch | zstd -3 -T2 > /dev/null",
        },
        "pgbackrest": pgbr,
        "lifeboat": lbt,
        "table": [
            {"step": n, "value": v, "unit": u, "ratio_vs_pgbackrest": v / r} for n, v, u, r in rows
        ],
    }
    out = args.output or RESULTS_DIR / (
        "physical-" + dt.datetime.now().strftime("%Y%m%d-%H%M%S") + ".json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"results: {out.relative_to(REPO_ROOT) if out.is_relative_to(REPO_ROOT) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
