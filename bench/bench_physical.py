#!/usr/bin/env python3
"""Physical backup benchmark: Lifeboat against pgBackRest and bare pg_basebackup | zstd.

Each timed backup and restore starts after ``sync``, so no step pays for the writeback of
the steps before it.

Run from the repository root with the project's virtualenv::

    .venv/bin/python bench/bench_physical.py              # pgbench scale 100
    .venv/bin/python bench/bench_physical.py --quick      # pgbench scale 5
    .venv/bin/python bench/bench_physical.py --scale 20

Two scratch PostgreSQL clusters are created and loaded with ``pgbench -i -s N``: one archives
its WAL with ``pgbackrest archive-push``, the other with ``lifeboat wal-push``.  For each tool
the benchmark times a full physical backup, a restore into a fresh data directory (including
the start of the restored cluster and the end of its recovery), the synchronous archiving of
distinct real 16 MiB WAL segments (10 by default; ms per segment) and the asynchronous archiving
of 40 more (foreground ms per segment, and segments per second until all are stored),
each segment pushed the way PostgreSQL's archiver does it.
``pg_basebackup -Ft -X fetch | zstd -3 -T2 > /dev/null`` is timed as the raw limit for a
compressed base backup.

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lifeboat.postgres.binaries import bin_dir_major, find_bin_dirs
from lifeboat.postgres.instance import ScratchCluster

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
DEFAULT_PG_MAJOR = 15
SEGMENT_SIZE = 16 * 1024 * 1024
OS_USER = "postgres"
# segment copies are pushed under timelines no cluster here uses, so they never collide
# with what the clusters archived themselves
SYNC_TIMELINE = 9
ASYNC_TIMELINE = 10
IS_ROOT = os.geteuid() == 0


# ----------------------------------------------------------------------------- helpers


def settle(cold: bool = True) -> None:
    """Write out what earlier steps left dirty in the page cache, so that neither tool's
    timed step pays for the writeback of the steps before it. With cold, as root, also
    empty the page cache: a backup or restore step then starts cold, as a restore on a
    fresh machine does, and finds the same memory free whichever tool ran first. WAL
    archiving runs all day long, its code and the segments just written in memory: its
    steps start warm."""
    os.sync()
    if cold and IS_ROOT:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        time.sleep(1)


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


def segment_number(name: str) -> int:
    """Position of a 16 MiB WAL segment in its timeline (log * 256 + seg)."""
    return int(name[8:16], 16) * 0x100 + int(name[16:24], 16)


def segment_name(timeline: int, number: int) -> str:
    return f"{timeline:08X}{number // 0x100:08X}{number % 0x100:08X}"


def generate_wal(cluster: ScratchCluster, count: int) -> list[Path]:
    """Write at least *count* segments of real WAL (row updates) into *cluster* and return
    *count* consecutive complete segments, still in its pg_wal and all archived already.

    ``wal_keep_size`` keeps them from being recycled by the checkpoints the load causes;
    the function waits until the archiver has no ``.ready`` file left, so that the cluster's
    own archiving is over before anything is measured."""
    cluster.psql(
        f"ALTER SYSTEM SET wal_keep_size = '{(count + 8) * 16}MB';\n"
        "SELECT pg_reload_conf();\n"
        "ALTER TABLE pgbench_accounts SET (autovacuum_enabled = off);\n"
        "SELECT pg_switch_wal();"
    )
    # right after the switch the position is at a segment boundary, which pg_walfile_name
    # names after the switched (mostly empty) segment: start with the next one
    first = segment_number(cluster.psql("SELECT pg_walfile_name(pg_current_wal_lsn())")) + 1
    rows = int(cluster.psql("SELECT max(aid) FROM pgbench_accounts"))
    step = min(100_000, rows)
    low = 0
    while True:
        # WAL up to the commit is flushed when the UPDATE returns, so every segment before
        # the current one is complete on disk
        current = cluster.psql(
            f"UPDATE pgbench_accounts SET abalance = abalance + 1 "
            f"WHERE aid > {low} AND aid <= {low + step};\n"
            "SELECT pg_walfile_name(pg_current_wal_lsn());"
        ).split()[-1]
        low = (low + step) % rows
        if segment_number(current) - first >= count:
            break
    cluster.psql("SELECT pg_switch_wal()")
    wal_dir = cluster.data_dir / "pg_wal"
    timeline = int(current[:8], 16)
    segs = [wal_dir / segment_name(timeline, first + i) for i in range(count)]
    for seg in segs:
        if not seg.is_file() or seg.stat().st_size != SEGMENT_SIZE:
            raise RuntimeError(f"{seg} is missing or not a complete segment")
    status_dir = wal_dir / "archive_status"
    deadline = time.monotonic() + 900
    while any(n.endswith(".ready") for n in os.listdir(status_dir)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the archiver of {cluster!r} did not catch up in 900 s")
        time.sleep(0.2)
    return segs


def wal_copies(segs: list[Path], dest: Path, timeline: int) -> list[Path]:
    """Copy *segs* into *dest*, a folder laid out like pg_wal, under the same segment
    numbers on the otherwise unused *timeline*: distinct real segments with consecutive
    valid names, each announced by ``archive_status/NAME.ready`` as PostgreSQL does."""
    make_dir(dest.parent, 0o700)
    make_dir(dest, 0o700)
    status_dir = make_dir(dest / "archive_status", 0o700)
    out = []
    for src in segs:
        name = segment_name(timeline, segment_number(src.name))
        target = dest / name
        shutil.copyfile(src, target)
        target.chmod(0o600)
        chown_pg(target)
        ready = status_dir / f"{name}.ready"
        ready.touch(0o600)
        chown_pg(ready)
        out.append(target)
    return out


def repeated(times: int, step: Callable[[], float]) -> list[float]:
    """The seconds of `times` runs of a timed step, each after settle(): on a shared virtual
    machine one run can be far off, and the median of a few is what the table shows."""
    runs = []
    for _ in range(times):
        settle()
        runs.append(step())
    return runs


def restore_pgbackrest(pgbr: list[str], bin_dir: Path, d: Path, files_runs: list[float]) -> float:
    """pgbackrest restore into a new data directory, then start it until recovery is over;
    the seconds of the whole (the seconds of the restore alone go to files_runs)."""
    new_dir = make_dir(d / "restored", 0o700)
    port = free_port()
    t0 = time.perf_counter()
    run(as_pg([*pgbr, f"--pg1-path={new_dir}", "restore"]))
    files_runs.append(time.perf_counter() - t0)
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
    elapsed = time.perf_counter() - t0
    pg_ctl_stop(bin_dir, new_dir)
    shutil.rmtree(new_dir, ignore_errors=True)
    return elapsed


def restore_lifeboat(lb: list[str], bin_dir: Path, d: Path, res: dict[str, Any]) -> float:
    """lifeboat restore --latest --start into a new data directory (it returns once recovery
    is over); records what Lifeboat logs of its phases in res."""
    new_dir = d / "restored"
    port = free_port()
    t0 = time.perf_counter()
    restore = subprocess.run(
        as_pg(
            [
                *lb,
                "--json",
                "--log-format",
                "plain",
                "restore",
                "wms",
                "--pgdata",
                str(new_dir),
                "--latest",
                "--start",
                "--port",
                str(port),
            ]
        ),
        capture_output=True,
        text=True,
        env=pg_env(),
        cwd="/",
        check=True,
    )
    elapsed = time.perf_counter() - t0
    res["restore_summary"] = json.loads(restore.stdout)
    # the phases Lifeboat logs: laid out, pg_verifybackup, recovery
    res.setdefault("restore_phases", []).append(
        [
            line.split(" info ", 1)[-1]
            for line in restore.stderr.splitlines()
            if " in " in line and ("laid out" in line or "accepted" in line or "finished" in line)
        ]
    )
    replay_log = (new_dir / "lifeboat-restore.log").read_text(errors="replace")
    res["restore_wal_files_fetched"] = replay_log.count("restored log file")
    pg_ctl_stop(bin_dir, new_dir)
    shutil.rmtree(new_dir, ignore_errors=True)
    return elapsed


def mark_done(seg: Path) -> None:
    """What the archiver does once archive_command returned 0 for *seg*."""
    status_dir = seg.parent / "archive_status"
    os.replace(status_dir / f"{seg.name}.ready", status_dir / f"{seg.name}.done")


def archive_like_postgres(segs: list[Path], command: list[str]) -> list[float]:
    """Run ``command SEGMENT`` for each segment in WAL order, one after the other, each one
    only after the previous one returned 0, as the archiver does; milliseconds of each."""
    times = []
    for seg in segs:
        times.append(timed(as_pg([*command, str(seg)])) * 1000.0)
        mark_done(seg)
    return times


def archive_like_postgres_shell(segs: list[Path], archive_command: str) -> list[float]:
    """archive_like_postgres for a shell command line with %p and %f, run from the folder
    above pg_wal (PostgreSQL's data directory) with %p relative to it."""
    times = []
    for seg in segs:
        line = archive_command.replace("%p", f"pg_wal/{seg.name}").replace("%f", seg.name)
        started = time.perf_counter()
        subprocess.run(as_pg(["sh", "-c", line]), cwd=seg.parent.parent, check=True)
        times.append((time.perf_counter() - started) * 1000.0)
        mark_done(seg)
    return times


def wait_until(done: Any, what: str, timeout: float = 1800, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def stored_segments(folder: Path, names: set[str], pattern: re.Pattern[str]) -> set[str]:
    """Which of *names* have an object in *folder* or below whose file name matches
    *pattern* (group 1: the segment name); temporary files do not match."""
    found = set()
    for _root, _dirs, files in os.walk(folder):
        for leaf in files:
            m = pattern.match(leaf)
            if m and m.group(1) in names:
                found.add(m.group(1))
    return found


# pgBackRest: <repo>/archive/<stanza>/<archive id>/<tli+log>/<segment>-<sha1>.zst
PGBR_WAL_OBJECT = re.compile(r"^([0-9A-F]{24})-[0-9a-f]{40}(\.[a-z0-9]+)?$")
# Lifeboat: <repo>/<source>/wal/<tli+log>/<segment>-<sha256>.zst.age
LIFEBOAT_WAL_OBJECT = re.compile(r"^([0-9A-F]{24})-[0-9a-f]{64}\.zst\.(age|gpg)$")


# ----------------------------------------------------------------------------- pgBackRest


def archiving_cluster(bin_dir: Path, base_dir: Path, archive_command: str) -> ScratchCluster:
    """A scratch cluster (not initialised yet) whose WAL goes to *archive_command*."""
    return ScratchCluster(
        bin_dir,
        base_dir=base_dir,
        settings={"archive_mode": "on", "archive_command": archive_command},
    )


def pgbackrest_archive_command(conf: Path) -> str:
    """The archive_command that pushes to the stanza of :func:`write_pgbackrest_conf`."""
    return f"pgbackrest --config={conf} --stanza=bench archive-push %p"


def write_pgbackrest_conf(conf: Path, d: Path, cluster: ScratchCluster) -> list[str]:
    """Write the configuration of the stanza ``bench`` for *cluster*, with its repository,
    logs, locks and spool under *d*; return the ``pgbackrest`` command line prefix."""
    conf.write_text(
        "[global]\n"
        "repo1-type=posix\n"
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
    return ["pgbackrest", f"--config={conf}", "--stanza=bench"]


def bench_pgbackrest(args: argparse.Namespace, bin_dir: Path, work: Path) -> dict[str, Any]:
    res: dict[str, Any] = {}
    d = make_dir(work / "pgbackrest")
    conf = d / "pgbackrest.conf"
    cluster = archiving_cluster(bin_dir, d / "pg", pgbackrest_archive_command(conf))
    pgbr = write_pgbackrest_conf(conf, d, cluster)
    try:
        log(f"pgBackRest: init cluster, pgbench -i -s {args.scale}")
        cluster.init()
        cluster.start()
        res["load_s"] = load_pgbench(cluster, args.scale)
        res["db_bytes"] = int(cluster.psql("SELECT pg_database_size('postgres')"))
        run(as_pg([*pgbr, "stanza-create"]))
        run(as_pg([*pgbr, "check"]))

        log(f"pgBackRest: backup --type=full, {args.repeat} times")
        sizes: list[int] = []

        def pgbackrest_backup() -> float:
            seconds = timed(as_pg([*pgbr, "backup", "--type=full"]))
            sizes.append(du_bytes(d / "repo"))
            return seconds

        runs = repeated(args.repeat, pgbackrest_backup)
        res["backup_s"], res["backup_runs_s"] = statistics.median(runs), runs
        res["repo_bytes"] = sizes[0]  # the first backup and the WAL archived so far

        log(f"raw: pg_basebackup -Ft -X fetch | zstd -3 -T2, {args.repeat} times")
        pipe = (
            "set -o pipefail; "
            f"{shlex.quote(str(bin_dir / 'pg_basebackup'))} -d {shlex.quote(cluster.dsn())} "
            "-c fast -D - -Ft -X fetch | zstd -q -3 -T2 > /dev/null"
        )
        runs = repeated(args.repeat, lambda: timed(["bash", "-c", pipe]))
        res["raw_backup_s"], res["raw_backup_runs_s"] = statistics.median(runs), runs

        log(f"pgBackRest: restore, start, wait for recovery, {args.repeat} times")
        files_runs: list[float] = []
        runs = repeated(args.repeat, lambda: restore_pgbackrest(pgbr, bin_dir, d, files_runs))
        res["restore_s"], res["restore_runs_s"] = statistics.median(runs), runs
        res["restore_files_s"] = statistics.median(files_runs)
        res["restore_files_runs_s"] = files_runs

        log(f"pgBackRest: {max(args.segments, args.async_segments)} segments of real WAL")
        real = generate_wal(cluster, max(args.segments, args.async_segments))
        sync_segs = wal_copies(real[: args.segments], d / "walsync" / "pg_wal", SYNC_TIMELINE)
        async_segs = wal_copies(
            real[: args.async_segments], d / "walasync" / "pg_wal", ASYNC_TIMELINE
        )
        cluster.stop()  # nothing else runs while archiving is measured

        log(f"pgBackRest: archive-push x{args.segments}")
        settle(cold=False)
        res["wal_push_ms"] = archive_like_postgres(sync_segs, [*pgbr, "archive-push"])

        log(f"pgBackRest: archive-push x{args.async_segments} with archive-async=y")
        settle(cold=False)
        spool = make_dir(d / "spool-async", 0o750)
        # the async process looks for .ready files in the folder of %p, which must lie in
        # pg1-path: the copies' folder gets a data directory of its own around it, with the
        # cluster's pg_control (archive-push checks the segments against it)
        fake_pgdata = d / "walasync"
        make_dir(fake_pgdata / "global", 0o700)
        shutil.copyfile(
            cluster.data_dir / "global" / "pg_control", fake_pgdata / "global" / "pg_control"
        )
        chown_pg(fake_pgdata / "global" / "pg_control")
        pgbr_async = [
            *pgbr,
            f"--pg1-path={fake_pgdata}",
            "--archive-async",
            f"--spool-path={spool}",
            "--process-max=2",
            "archive-push",
        ]
        names = {s.name for s in async_segs}
        archive_dir = d / "repo" / "archive" / "bench"
        t0 = time.perf_counter()
        res["async_push_ms"] = archive_like_postgres(async_segs, pgbr_async)
        res["async_foreground_s"] = time.perf_counter() - t0
        wait_until(
            lambda: stored_segments(archive_dir, names, PGBR_WAL_OBJECT) == names,
            f"{len(names)} segments in {archive_dir}",
        )
        res["async_total_s"] = time.perf_counter() - t0
        res["async_segments_per_s"] = len(names) / res["async_total_s"]
    finally:
        cluster.destroy()
    return res


# ----------------------------------------------------------------------------- Lifeboat


def lifeboat_status(lb: list[str]) -> dict[str, Any]:
    """`lifeboat status wms --json`, for the one source."""
    doc = json.loads(run(as_pg([*lb, "status", "wms", "--json"])))
    return dict(doc[0] if isinstance(doc, list) else doc)


LIFEBOAT = str(Path(sys.executable).with_name("lifeboat"))


def lifeboat_archive_command(cfg_file: Path) -> str:
    """The archive_command that pushes to the source ``wms`` of *cfg_file*."""
    return f"{shlex.quote(LIFEBOAT)} --config {shlex.quote(str(cfg_file))} wal-push wms %p"


def write_lifeboat_config(cfg_file: Path, d: Path, cluster: ScratchCluster) -> list[str]:
    """Make an age key and write *cfg_file*: the source ``wms`` is *cluster*, the repository
    and the key live under *d*; return the ``lifeboat --config`` command line prefix."""
    key_file = d / "age.key"
    out = run([LIFEBOAT, "keygen", "--output", str(key_file)])
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
        f'pg_bin_dir = "{cluster.bin_dir}"\n'
    )
    chown_pg(cfg_file)
    return [LIFEBOAT, "--config", str(cfg_file)]


def bench_lifeboat(args: argparse.Namespace, bin_dir: Path, work: Path) -> dict[str, Any]:
    res: dict[str, Any] = {}
    d = make_dir(work / "lifeboat")
    cfg_file = d / "lifeboat.toml"
    cluster = archiving_cluster(bin_dir, d / "pg", lifeboat_archive_command(cfg_file))
    lb = write_lifeboat_config(cfg_file, d, cluster)
    async_cfg_file = d / "lifeboat-async.toml"
    async_cfg_file.write_text(
        cfg_file.read_text() + "\n[sources.wms.archive]\n"
        "async = true\n"
        "workers = 2\n"
        f'spool_dir = "{make_dir(d / "spool", 0o700)}"\n'
    )
    chown_pg(async_cfg_file)
    try:
        run(as_pg([*lb, "init"]))
        log(f"Lifeboat: init cluster, pgbench -i -s {args.scale}")
        cluster.init()
        cluster.start()
        res["load_s"] = load_pgbench(cluster, args.scale)
        res["db_bytes"] = int(cluster.psql("SELECT pg_database_size('postgres')"))

        log(f"Lifeboat: backup --type physical, {args.repeat} times")
        sizes: list[int] = []

        def lifeboat_backup() -> float:
            seconds = timed(as_pg([*lb, "backup", "wms", "--type", "physical"]))
            sizes.append(du_bytes(d / "repo"))
            return seconds

        runs = repeated(args.repeat, lifeboat_backup)
        res["backup_s"], res["backup_runs_s"] = statistics.median(runs), runs
        res["repo_bytes"] = sizes[0]  # the first backup and the WAL archived so far

        log(f"Lifeboat: restore --pgdata NEW --latest --start, {args.repeat} times")
        runs = repeated(args.repeat, lambda: restore_lifeboat(lb, bin_dir, d, res))
        res["restore_s"], res["restore_runs_s"] = statistics.median(runs), runs

        log(f"Lifeboat: {max(args.segments, args.async_segments)} segments of real WAL")
        real = generate_wal(cluster, max(args.segments, args.async_segments))
        sync_segs = wal_copies(real[: args.segments], d / "walsync" / "pg_wal", SYNC_TIMELINE)
        async_segs = wal_copies(
            real[: args.async_segments], d / "walasync" / "pg_wal", ASYNC_TIMELINE
        )
        cluster.stop()  # nothing else runs while archiving is measured

        log(f"Lifeboat: wal-push x{args.segments}")
        settle(cold=False)
        res["wal_push_ms"] = archive_like_postgres(sync_segs, [*lb, "wal-push", "wms"])

        log(f"Lifeboat: wal-push x{args.async_segments} with async = true, workers = 2")
        settle(cold=False)
        lba = [LIFEBOAT, "--config", str(async_cfg_file)]
        spool = Path(lifeboat_status(lba)["spool"]["path"])
        names = {s.name for s in async_segs}
        wal_dir = d / "repo" / "wms" / "wal"

        def all_uploaded() -> bool:
            # what `lifeboat status` reports as spool.queued (files in <spool>/out/ whose
            # name does not start with a dot), read directly: starting the CLI in a loop
            # would take CPU from the worker being measured
            waiting = [n for n in os.listdir(spool / "out") if not n.startswith(".")]
            return not waiting and stored_segments(wal_dir, names, LIFEBOAT_WAL_OBJECT) == names

        # exactly what `lifeboat setup-archiving` prints for an async source, run by a
        # shell from the data directory as PostgreSQL runs archive_command
        from lifeboat.context import Context
        from lifeboat.ops.archiving import wanted_settings

        archive_command = wanted_settings(Context.load(async_cfg_file), "wms")["archive_command"]
        res["async_archive_command"] = archive_command

        t0 = time.perf_counter()
        res["async_push_ms"] = archive_like_postgres_shell(async_segs, archive_command)
        res["async_foreground_s"] = time.perf_counter() - t0
        wait_until(all_uploaded, f"the spool {spool} to be uploaded to {wal_dir}")
        res["async_total_s"] = time.perf_counter() - t0
        res["async_segments_per_s"] = len(names) / res["async_total_s"]
        status = lifeboat_status(lba)["spool"]
        if status["queued"] != 0 or status["last_error"] is not None:
            raise RuntimeError(f"lifeboat status after the async push: {status}")
        res["async_status"] = status
        # let the idle worker exit before the cluster and the folders go away
        wait_until(
            lambda: not lifeboat_status(lba)["spool"]["worker_running"],
            "the async worker to exit",
            timeout=120,
            interval=0.5,
        )
    finally:
        cluster.destroy()
    return res


# ----------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=int, default=None, help="pgbench scale (default 100)")
    ap.add_argument("--quick", action="store_true", help="pgbench scale 5")
    ap.add_argument("--segments", type=int, default=10, help="WAL segments to push per tool")
    ap.add_argument(
        "--lifeboat-first",
        action="store_true",
        help="run Lifeboat's steps before pgBackRest's (to see what the order costs)",
    )
    ap.add_argument(
        "--async-segments",
        type=int,
        default=40,
        help="WAL segments to push per tool with async archiving (default 40)",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of each backup and restore step per tool; the median is shown (default 3)",
    )
    ap.add_argument("--pg-bin-dir", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--output", type=Path, default=None)
    args = ap.parse_args()
    if args.scale is None:
        args.scale = 5 if args.quick else 100
    if args.segments < 1 or args.async_segments < 1 or args.repeat < 1:
        ap.error("--segments, --async-segments and --repeat must be at least 1")

    bin_dir = args.pg_bin_dir
    if bin_dir is None:
        dirs = find_bin_dirs()
        bin_dir = next((b for b in dirs if bin_dir_major(b) == DEFAULT_PG_MAJOR), None) or dirs[0]
    for prog in ("pgbackrest", "zstd", *(["runuser"] if IS_ROOT else [])):
        if shutil.which(prog) is None:
            sys.exit(f"{prog} not found on PATH")
    pgbr_version = run(["pgbackrest", "version"]).strip()
    # Lifeboat runs with its bytecode compiled, as after a regular pip install: the
    # postgres user cannot write it into an editable checkout and would otherwise compile
    # every module again in every wal-push
    import lifeboat

    run([sys.executable, "-m", "compileall", "-q", str(Path(lifeboat.__file__).parent)])

    work = Path(tempfile.mkdtemp(prefix="lifeboat-bench-phys-"))
    work.chmod(0o755)
    chown_pg(work)
    log(
        f"work dir {work}, PostgreSQL {bin_dir_major(bin_dir)}, {pgbr_version}, "
        f"{os.cpu_count()} CPUs, pgbench scale {args.scale}"
    )
    try:
        if args.lifeboat_first:
            lbt = bench_lifeboat(args, bin_dir, work)
            pgbr = bench_pgbackrest(args, bin_dir, work)
        else:
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
        (
            "async wal push / segment, foreground: pgBackRest (median)",
            med(pgbr["async_push_ms"]),
            "ms",
            med(pgbr["async_push_ms"]),
        ),
        (
            "async wal push / segment, foreground: Lifeboat (median)",
            med(lbt["async_push_ms"]),
            "ms",
            med(pgbr["async_push_ms"]),
        ),
        (
            "async wal push throughput: pgBackRest",
            pgbr["async_segments_per_s"],
            "seg/s",
            pgbr["async_segments_per_s"],
        ),
        (
            "async wal push throughput: Lifeboat",
            lbt["async_segments_per_s"],
            "seg/s",
            pgbr["async_segments_per_s"],
        ),
    ]
    db_gb = pgbr["db_bytes"] / 1e9
    print()
    print(
        f"pgbench scale {args.scale}: database {db_gb:.2f} GB; {os.cpu_count()} CPUs; "
        f"PostgreSQL {bin_dir_major(bin_dir)}; {pgbr_version}"
    )
    print("pgBackRest: zstd level 3, aes-256-cbc, process-max=2, start-fast, archive-async=n")
    print("            async rows: archive-async=y, spool-path, process-max=2")
    print("Lifeboat:   zstd level 1 (default), age encryption")
    print("            async rows: [sources.wms.archive] async = true, workers = 2, spool_dir")
    print("raw:        pg_basebackup -c fast -Ft -X fetch, zstd -3 -T2, no encryption, no storage")
    print(
        f"wal push:   {args.segments} sync and {args.async_segments} async distinct real "
        "segments, pushed one after the other"
    )
    print()
    w = max(len(r[0]) for r in rows)
    print(f"{'step':<{w}}  {'value':>11}  {'vs pgBackRest':>13}")
    print(f"{'-' * w}  {'-' * 11}  {'-' * 13}")
    for name, val, unit, ref in rows:
        shown = {"s": f"{val:.2f} s", "ms": f"{val:.0f} ms"}.get(unit, f"{val:.2f} {unit}")
        print(f"{name:<{w}}  {shown:>11}  {val / ref:>12.2f}x")
    print()
    print(
        "ratios: time / pgBackRest's time (below 1 = Lifeboat faster), except seg/s: "
        "throughput / pgBackRest's (above 1 = Lifeboat faster)"
    )
    print(
        f"async end to end ({args.async_segments} segments, first call to last one stored): "
        f"pgBackRest {pgbr['async_total_s']:.2f} s "
        f"(foreground {pgbr['async_foreground_s']:.2f} s), "
        f"Lifeboat {lbt['async_total_s']:.2f} s (foreground {lbt['async_foreground_s']:.2f} s)"
    )
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
        "async_segments": args.async_segments,
        "settings": {
            "pgbackrest": "compress-type=zst level 3, repo1-cipher-type=aes-256-cbc, "
            "process-max=2, start-fast=y, archive-async=n",
            "pgbackrest_async": "archive-async=y, spool-path, process-max=2",
            "lifeboat": "zstd level 1 (default), age encryption",
            "lifeboat_async": "[sources.wms.archive] async = true, workers = 2, spool_dir",
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
