#!/usr/bin/env python3
"""Restore drill benchmark: `lifeboat drill` against the manual restores it replaces.

Run from the repository root with the project's virtualenv::

    .venv/bin/python bench/bench_drill.py              # WMS ~1 GB, pgbench scale 100
    .venv/bin/python bench/bench_drill.py --quick      # WMS ~0.1 GB, pgbench scale 5

Side by side in one run, with the drill's depth set to ``quick``:

* logical, on the WMS dataset and on pgbench, in one scratch cluster:
  ``seed restore`` (``createdb``, ``gpg -d``, ``pg_restore --single-transaction``),
  ``pg_restore -j2`` of a plain local dump into a new database,
  ``pg_restore --single-transaction`` of that dump into an instance set up as the drill's
  (the load alone, on this host), and
  ``lifeboat drill SOURCE --backup ID --json`` of a logical backup of the same database;
* physical, on pgbench in a cluster that archives its WAL to pgBackRest and to Lifeboat:
  ``pgbackrest restore`` and the start of the restored cluster until it accepts
  connections out of recovery, against ``lifeboat drill`` of a physical backup.

Every drill is timed from outside (wall) and its record's ``rto_seconds`` kept. It prints
the contenders and the targets (drill / seed restore <= 0.8x, drill / pgBackRest <= 1.2x,
|RTO - wall| / wall <= 5%) and writes JSON to ``bench/results/drill-<timestamp>.json``.
The logical steps are measured as in bench_logical.py, the physical ones as in
bench_physical.py, whose functions this reuses. See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import bench_logical as logical
import bench_physical as physical
from bench_logical import MB, Dataset, Run, Target, measure

from lifeboat.postgres.instance import ScratchCluster
from lifeboat.sources.postgres.drill_logical import SCRATCH_SETTINGS

DEPTH = "quick"
SEED_RESTORE = "seed restore"
PG_RESTORE_J2 = "pg_restore -j2"
TUNED_ONE_TXN = "pg_restore 1 txn, tuned"
PGBACKREST = "pgBackRest restore + start"
DRILL = "lifeboat drill"
PHYSICAL = "physical"  # the dataset name of the physical comparison
LOGICAL_TARGET = 0.8  # drill / seed restore
PHYSICAL_TARGET = 1.2  # drill / pgBackRest restore + start
RTO_TOLERANCE_PCT = 5.0  # |rto - wall| / wall


@dataclass
class Contender:
    """The runs of one contender on one dataset: wall times, and for a drill its records."""

    dataset: str
    name: str
    walls: list[float] = field(default_factory=list)
    rtos: list[float] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)  # measure()'s Run, per run
    records: list[dict[str, Any]] = field(default_factory=list)  # drills: the JSON record
    verified: bool | None = None  # baselines: row counts compared with the source
    error: str | None = None
    skipped: str | None = None  # why it was not measured

    @property
    def ok(self) -> bool:
        return self.error is None and self.skipped is None and bool(self.walls)

    @property
    def wall_s(self) -> float | None:
        return statistics.median(self.walls) if self.ok else None

    @property
    def rto_s(self) -> float | None:
        return statistics.median(self.rtos) if self.ok and self.rtos else None

    @property
    def rto_deviation_pct(self) -> float | None:
        """The largest |rto - wall| / wall over the runs, in percent."""
        if not self.ok or len(self.rtos) != len(self.walls):
            return None
        return round(
            max(abs(r - w) / w * 100 for r, w in zip(self.rtos, self.walls, strict=True)), 2
        )

    def add(self, wall: float, run: Run | None = None) -> None:
        self.walls.append(round(wall, 3))
        if run is not None:
            self.runs.append(asdict(run))

    def add_record(self, record: dict[str, Any]) -> None:
        """Keep a drill's record; a failed verdict or a missing RTO fails the contender."""
        self.records.append(record)
        if record.get("verdict") != "pass":
            reasons = "; ".join(record.get("reasons") or []) or "no reason given"
            self.error = f"verdict {record.get('verdict')}: {reasons}"
        elif not isinstance(record.get("rto_seconds"), int | float):
            self.error = "the drill record has no rto_seconds"
        else:
            self.rtos.append(float(record["rto_seconds"]))

    @property
    def spans(self) -> list[float]:
        """Seconds from each record's started_at to its finished_at: the drill as it timed
        itself, of which the RTO is a part."""
        return [
            round(
                (
                    dt.datetime.fromisoformat(r["finished_at"])
                    - dt.datetime.fromisoformat(r["started_at"])
                ).total_seconds(),
                3,
            )
            for r in self.records
            if r.get("started_at") and r.get("finished_at")
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "ok": self.ok,
            "wall_s": self.wall_s,
            "rto_s": self.rto_s,
            "record_spans_s": self.spans,
            "rto_deviation_pct": self.rto_deviation_pct,
        }


def drill_config(sources: Sequence[str]) -> str:
    """What the benchmark appends to a Lifeboat configuration: every source drills at the
    benchmark's depth."""
    return "".join(f'\n[sources.{name}.drill]\ndepth = "{DEPTH}"\n' for name in sources)


def drill_record(text: str, backup_id: str) -> dict[str, Any]:
    """The record of the drill of *backup_id* in what `lifeboat drill --json` printed:
    ``{"drills": [records], "errors": {source: why}, "ok": ...}``, or bare records."""
    doc = json.loads(text)
    errors = doc.get("errors") if isinstance(doc, dict) else None
    records = doc.get("drills", [doc]) if isinstance(doc, dict) else doc
    for record in records if isinstance(records, list) else []:
        if isinstance(record, dict) and record.get("backup") == backup_id:
            return dict(record)
    why = "; ".join(f"{k}: {v}" for k, v in errors.items()) if errors else text[:200]
    raise RuntimeError(f"no drill record of backup {backup_id}: {why}")


def drill_unavailable() -> str | None:
    """Why `lifeboat drill` cannot be measured, or None when it can."""
    proc = subprocess.run(
        [physical.LIFEBOAT, "drill", "--help"], capture_output=True, text=True, check=False
    )
    return None if proc.returncode == 0 else "this Lifeboat has no drill command"


def run_drill(
    res: Contender, argv: Sequence[str], backup_id: str, log: Path, env: dict[str, str]
) -> None:
    """One measured `lifeboat drill ... --json`: wall time from outside, and the record."""
    answer = log.with_suffix(".json")
    run = measure(argv, log=log, env=env, stdout_path=answer)
    res.add(run.wall_s, run)
    text = answer.read_text(encoding="utf-8", errors="replace")
    try:
        res.add_record(drill_record(text, backup_id))
    except (ValueError, RuntimeError) as exc:
        res.error = run.error or f"unreadable drill output: {exc}"
    if run.error and res.error is None:
        res.error = run.error
    logical._log(
        f"{res.dataset}: {res.name}: {run.wall_s:.2f} s, RTO {_seconds(res.rtos)}"
        + (f" -- FAILED {res.error}" if res.error else "")
    )


def _seconds(values: Sequence[float]) -> str:
    return f"{values[-1]:.2f} s" if values else "-"


# ----------------------------------------------------------------------------- logical


@dataclass
class Options:
    wms_gb: float
    pgbench_scale: int
    physical_scale: int
    repeat: int
    timeout: float
    keep: bool
    bin_dir: Path
    skip_drill: str | None  # why the drills are not measured


def lifeboat_backup(lb: logical.Lifeboat, source: str, log: Path) -> str:
    """Make a logical backup of *source*; its id."""
    proc = subprocess.run(
        [str(lb.exe), "--config", str(lb.config), "backup", source],
        capture_output=True,
        text=True,
        env=lb.env,
        timeout=3600,
        check=False,
    )
    with log.open("a", encoding="utf-8") as fh:
        fh.write(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"lifeboat backup {source}: exit {proc.returncode}: {proc.stderr}")
    return proc.stdout.split()[-1]


def logical_dataset(
    cluster: logical.Cluster,
    tuned: logical.Cluster,
    ds: Dataset,
    work: Path,
    gpg_env: dict[str, str],
    gpg_key: str,
    lb: logical.Lifeboat | None,
    opts: Options,
) -> list[Contender]:
    logs = work / "logs"
    dsn = cluster.sc.dsn(ds.name)
    dump = work / f"{ds.name}.dump"
    enc = work / f"{ds.name}.dump.gpg"
    plain = work / f"{ds.name}.plain.dump"
    expected = cluster.fingerprint(ds.name)
    prep_log = logs / f"{ds.name}-prepare.log"

    logical._log(f"{ds.name}: preparing the seed's encrypted dump and a plain dump")
    for argv, env in (
        (logical._sh(logical.seed_backup_script(cluster, dsn, dump, enc, gpg_key)), gpg_env),
        ([cluster.tool("pg_dump"), "-Fc", "-f", str(plain), "-d", dsn], cluster.env),
    ):
        prep = measure(argv, log=prep_log, env=env, timeout=opts.timeout)
        if prep.error:
            raise RuntimeError(f"{ds.name}: preparing the dumps failed: {prep.error}")

    def restore(
        name: str, script: Callable[[str], str], into: logical.Cluster = cluster
    ) -> Contender:
        """Time *script* (given the target database's DSN) into a new database of `into`,
        each run checked against the source's row counts."""
        res = Contender(ds.name, name)
        target = f"{ds.name}_{''.join(c if c.isalnum() else '_' for c in name)}"
        for i in range(opts.repeat):
            into.drop_db(target)
            into.checkpoint()
            create = (
                f"{logical._q(into.tool('createdb'))}"
                f" --maintenance-db={logical._q(into.sc.dsn())} {logical._q(target)}\n"
            )
            log = logs / f"{ds.name}-{name.replace(' ', '_')}-{i}.log"
            run = measure(
                logical._sh(create + script(into.sc.dsn(target))),
                log=log,
                env=gpg_env,
                timeout=opts.timeout,
            )
            res.add(run.wall_s, run)
            logical._log(
                f"{ds.name}: {name}: {run.wall_s:.2f} s"
                + (f" -- FAILED {run.error}" if run.error else "")
            )
            if run.error:
                res.error = run.error
                break
            same = into.fingerprint(target) == expected
            res.verified = same and res.verified is not False
            into.drop_db(target)
        return res

    results = [
        restore(
            SEED_RESTORE, lambda target: logical.seed_restore_script(cluster, enc, dump, target)
        ),
        restore(
            PG_RESTORE_J2,
            lambda target: (
                f"{logical._q(cluster.tool('pg_restore'))} -j 2"
                f" -d {logical._q(target)} {logical._q(plain)}\n"
            ),
        ),
        # the work any restore does on this host: the same load, in one transaction, into
        # an instance set up as the drill's (no decryption, no fetch, no instance start)
        restore(
            TUNED_ONE_TXN,
            lambda target: (
                f"{logical._q(tuned.tool('pg_restore'))} --single-transaction"
                f" -d {logical._q(target)} {logical._q(plain)}\n"
            ),
            into=tuned,
        ),
    ]
    enc.unlink(missing_ok=True)
    plain.unlink(missing_ok=True)

    drill = Contender(ds.name, DRILL)
    results.append(drill)
    if lb is None or opts.skip_drill:
        drill.skipped = opts.skip_drill or "lifeboat setup failed"
        return results
    logical._log(f"{ds.name}: lifeboat backup")
    backup_id = lifeboat_backup(lb, ds.name, prep_log)
    argv = [str(lb.exe), "--config", str(lb.config), "drill", ds.name, "--backup", backup_id]
    for i in range(opts.repeat):
        cluster.checkpoint()
        run_drill(drill, [*argv, "--json"], backup_id, logs / f"{ds.name}-drill-{i}.log", lb.env)
        if drill.error:
            break
    return results


def logical_part(opts: Options, work: Path) -> tuple[list[Dataset], list[Contender], Any]:
    logs = work / "logs"
    setup_log = logs / "setup.log"
    results: list[Contender] = []
    with ScratchCluster(opts.bin_dir, base_dir=work / "cluster") as sc:
        cluster = logical.Cluster(sc)
        logical._log(f"cluster {sc!r} up; loading datasets")
        datasets = [
            logical.load_wms(cluster, "wms", opts.wms_gb),
            logical.load_pgbench(cluster, "pgbench", opts.pgbench_scale, setup_log),
        ]
        for ds in datasets:
            logical._log(f"{ds.name}: {ds.db_bytes / MB:.0f} MB in {ds.load_s:.1f} s")
        cluster.checkpoint()
        gpg_home: Path | None = None
        tuned_sc: ScratchCluster | None = None
        try:
            gpg_home, gpg_key = logical.setup_gpg(work, setup_log)
            lb: logical.Lifeboat | None = None
            if not opts.skip_drill:
                lb = logical.setup_lifeboat(cluster, work, [d.name for d in datasets], setup_log)
                if lb.setup_error:
                    raise RuntimeError(f"lifeboat setup failed: {lb.setup_error}")
                with lb.config.open("a", encoding="utf-8") as fh:
                    fh.write(drill_config([d.name for d in datasets]))
            gpg_env = {**cluster.env, "GNUPGHOME": str(gpg_home)}
            tuned_sc = ScratchCluster(opts.bin_dir, work / "tuned", settings=SCRATCH_SETTINGS)
            tuned_sc.init(sync=False, checksums=False)
            tuned_sc.start()
            tuned = logical.Cluster(tuned_sc)
            for ds in datasets:
                results += logical_dataset(cluster, tuned, ds, work, gpg_env, gpg_key, lb, opts)
            env_info = logical.environment(opts.bin_dir, cluster)
        finally:
            if gpg_home is not None:
                logical.stop_gpg(gpg_home)
            if tuned_sc is not None:
                tuned_sc.destroy()
    return datasets, results, env_info


# ----------------------------------------------------------------------------- physical


def physical_part(opts: Options, work: Path) -> tuple[Dataset, list[Contender]]:
    """pgBackRest restore + start against `lifeboat drill` of the same cluster, whose WAL
    both archive."""
    d = physical.make_dir(work / "physical")
    pgbr_dir = physical.make_dir(d / "pgbackrest")
    lb_dir = physical.make_dir(d / "lifeboat")
    pgbr_conf = pgbr_dir / "pgbackrest.conf"
    lb_cfg = lb_dir / "lifeboat.toml"
    archive_command = (
        f"{physical.pgbackrest_archive_command(pgbr_conf)}"
        f" && {physical.lifeboat_archive_command(lb_cfg)}"
    )
    cluster = physical.archiving_cluster(opts.bin_dir, d / "pg", archive_command)
    pgbr = physical.write_pgbackrest_conf(pgbr_conf, pgbr_dir, cluster)
    # the restored cluster does not archive into the stanza (the drill's scratch instance
    # does not archive either): later restores then replay the same timeline
    pgbr_restore = [*pgbr, "--archive-mode=off"]
    lb = physical.write_lifeboat_config(lb_cfg, lb_dir, cluster)
    with lb_cfg.open("a", encoding="utf-8") as fh:
        fh.write(drill_config(["wms"]))
    pgbr_res = Contender(PHYSICAL, PGBACKREST)
    drill = Contender(PHYSICAL, DRILL)
    try:
        physical.run(physical.as_pg([*lb, "init"]))
        physical.log(f"physical: init cluster, pgbench -i -s {opts.physical_scale}")
        cluster.init()
        cluster.start()
        load_s = physical.load_pgbench(cluster, opts.physical_scale)
        ds = Dataset(
            PHYSICAL,
            f"pgbench -i -s {opts.physical_scale}, whole cluster",
            load_s,
            int(cluster.psql("SELECT pg_database_size('postgres')")),
        )
        physical.run(physical.as_pg([*pgbr, "stanza-create"]))
        physical.run(physical.as_pg([*pgbr, "check"]))
        # Lifeboat's backup first: its drill then replays the WAL of pgBackRest's backup too
        backup_id = None
        if not opts.skip_drill:
            physical.log("physical: lifeboat backup --type physical")
            out = physical.run(physical.as_pg([*lb, "backup", "wms", "--type", "physical"]))
            backup_id = out.split()[-1]
        physical.log("physical: pgbackrest backup --type=full")
        physical.run(physical.as_pg([*pgbr, "backup", "--type=full"]))

        physical.log(f"physical: pgbackrest restore, start until out of recovery, x{opts.repeat}")
        files: list[float] = []  # the seconds of `pgbackrest restore` alone
        try:

            def pgbackrest_restore() -> float:
                return physical.restore_pgbackrest(pgbr_restore, opts.bin_dir, pgbr_dir, files)

            for wall in physical.repeated(opts.repeat, pgbackrest_restore):
                pgbr_res.add(wall)
            physical.log(f"physical: {PGBACKREST}: {_seconds(pgbr_res.walls)}")
        except (RuntimeError, subprocess.SubprocessError) as exc:
            pgbr_res.error = str(exc).splitlines()[0]

        if backup_id is None:
            drill.skipped = opts.skip_drill
        else:
            argv = physical.as_pg([*lb, "drill", "wms", "--backup", backup_id, "--json"])
            for i in range(opts.repeat):
                physical.settle()
                log = work / "logs" / f"physical-drill-{i}.log"
                run_drill(drill, argv, backup_id, log, physical.pg_env())
                if drill.error:
                    break
    finally:
        cluster.destroy()
    return ds, [pgbr_res, drill]


# ----------------------------------------------------------------------------- report


def _find(results: Sequence[Contender], dataset: str, name: str) -> Contender | None:
    return next((r for r in results if r.dataset == dataset and r.name == name), None)


def baseline_of(res: Contender) -> str:
    return PGBACKREST if res.dataset == PHYSICAL else SEED_RESTORE


def targets(results: Sequence[Contender]) -> list[Target]:
    """Per dataset: the drill against its baseline by wall time (from outside) and by RTO
    (the issue states the target for the RTO; the wall time is the stricter reading), and
    how far the RTO lies from the wall time."""
    out: list[Target] = []
    for dataset in dict.fromkeys(r.dataset for r in results):
        drill = _find(results, dataset, DRILL)
        base = _find(results, dataset, PGBACKREST if dataset == PHYSICAL else SEED_RESTORE)
        base_s = base.wall_s if base else None
        limit = PHYSICAL_TARGET if dataset == PHYSICAL else LOGICAL_TARGET
        versus = "pgBackRest" if dataset == PHYSICAL else "seed restore"
        for figure, value in (
            ("drill", drill.wall_s if drill else None),
            ("drill RTO", drill.rto_s if drill else None),
        ):
            out.append(
                Target(dataset, f"{figure} / {versus}", limit, "x", logical._ratio(value, base_s))
            )
        deviation = drill.rto_deviation_pct if drill else None
        out.append(Target(dataset, "|RTO - wall| / wall", RTO_TOLERANCE_PCT, "%", deviation))
    return out


def print_report(datasets: Sequence[Dataset], results: Sequence[Contender]) -> None:
    print()
    for ds in datasets:
        print(
            f"dataset {ds.name}: {ds.description}; {ds.db_bytes / MB:.0f} MB on disk, "
            f"loaded in {ds.load_s:.1f} s"
        )
    print(f"drills at depth {DEPTH}; ratios are wall times against the first line of the dataset")
    print()
    header = f"{'dataset':<9} {'contender':<27} {'wall s':>8} {'RTO s':>8} {'ratio':>7}  note"
    print(header)
    print("-" * len(header))
    for r in results:
        base = _find(results, r.dataset, baseline_of(r))
        ratio = logical._ratio(r.wall_s, base.wall_s if base else None)
        note = ""
        if r.skipped:
            note = f"not measured: {r.skipped}"
        elif r.error:
            note = f"FAILED: {r.error}"
        elif r.records:
            phases = r.records[-1].get("phases") or []
            note = "verdict pass; phases: " + ", ".join(
                f"{p.get('name')} {p.get('seconds', 0):.2f}" for p in phases
            )
        elif r.verified is not None:
            note = "row counts verified" if r.verified else "ROW COUNTS DIFFER"
        shown = "-" if ratio is None else f"{ratio:.2f}x"
        print(
            f"{r.dataset:<9} {r.name:<27} {logical._fmt(r.wall_s, 2):>8} "
            f"{logical._fmt(r.rto_s, 2):>8} {shown:>7}  {note}"
        )
    print()
    for r in results:
        if r.ok and r.rtos and len(r.spans) == len(r.walls):
            wall, span, rto = r.walls[-1], r.spans[-1], r.rtos[-1]
            print(
                f"{r.dataset} drill, last run: wall {wall:.2f} s = record's started_at to "
                f"finished_at {span:.2f} s (RTO {rto:.2f} s + {span - rto:.2f} s after it) "
                f"+ {wall - span:.2f} s outside it (start-up, choice, record, exit)"
            )
    print()
    logical.print_targets(targets(results))
    print()


# ----------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmark `lifeboat drill` against the seed's restore, pg_restore -j2 "
        "and pgBackRest restore + start."
    )
    p.add_argument("--wms-gb", type=float, default=None, help="WMS GB (default 1.0; 0.1 quick)")
    p.add_argument(
        "--pgbench-scale", type=int, default=None, help="logical pgbench scale (100; 5 quick)"
    )
    p.add_argument(
        "--physical-scale", type=int, default=None, help="physical pgbench scale (100; 5 quick)"
    )
    p.add_argument("--quick", action="store_true", help="small datasets for a smoke run")
    p.add_argument("--repeat", type=int, default=1, help="runs of every step; medians shown")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per logical step")
    p.add_argument("--pg-bin-dir", type=Path, default=None, help="PostgreSQL bin directory")
    p.add_argument("--skip-drill", action="store_true", help="measure the baselines only")
    p.add_argument("--skip-physical", action="store_true", help="the logical part only")
    p.add_argument("--skip-logical", action="store_true", help="the physical part only")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--output", type=Path, default=None, help="JSON result file")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be >= 1")
    small = args.quick
    args.wms_gb = args.wms_gb if args.wms_gb is not None else (0.1 if small else 1.0)
    for name in ("pgbench_scale", "physical_scale"):
        if getattr(args, name) is None:
            setattr(args, name, 5 if small else 100)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    needed = [] if args.skip_logical else ["gpg"]
    if not args.skip_physical:
        needed += ["pgbackrest", *(["runuser"] if physical.IS_ROOT else [])]
    for prog in needed:
        if shutil.which(prog) is None:
            sys.exit(f"{prog} not found on PATH")
    opts = Options(
        wms_gb=args.wms_gb,
        pgbench_scale=args.pgbench_scale,
        physical_scale=args.physical_scale,
        repeat=args.repeat,
        timeout=args.timeout,
        keep=args.keep,
        bin_dir=logical.pick_bin_dir(args.pg_bin_dir),
        skip_drill="skipped (--skip-drill)" if args.skip_drill else drill_unavailable(),
    )
    if opts.skip_drill:
        logical._log(f"drills not measured: {opts.skip_drill}")
    # as bench_physical does: the postgres user cannot write bytecode into this checkout
    import lifeboat

    physical.run([sys.executable, "-m", "compileall", "-q", str(Path(lifeboat.__file__).parent)])
    started = dt.datetime.now(dt.UTC)
    output = args.output or logical.RESULTS_DIR / f"drill-{started:%Y%m%dT%H%M%SZ}.json"
    datasets: list[Dataset] = []
    results: list[Contender] = []
    env_info: Any = None
    with logical.work_dir(opts.keep) as work:
        physical.chown_pg(work)
        (work / "logs").mkdir()
        if not args.skip_logical:
            datasets, results, env_info = logical_part(opts, work)
        if not args.skip_physical:
            ds, phys = physical_part(opts, work)
            datasets.append(ds)
            results += phys
    env_info = env_info or logical.environment(opts.bin_dir, None)

    print_report(datasets, results)
    logical.write_results(
        output,
        "drill",
        started,
        opts,
        env_info,
        datasets,
        targets(results),
        depth=DEPTH,
        contenders=[r.to_json() for r in results],
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
