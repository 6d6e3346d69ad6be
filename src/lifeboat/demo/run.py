"""The demo: a throwaway PostgreSQL with warehouse data, backed up, dropped, restored, compared."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from lifeboat.context import Context
from lifeboat.demo import wms
from lifeboat.errors import LifeboatError, ToolError
from lifeboat.ops.verify import verify
from lifeboat.pipeline.crypto import write_identity
from lifeboat.postgres.binaries import find_bin_dirs
from lifeboat.postgres.instance import ScratchCluster
from lifeboat.repo.drills import DrillRecord
from lifeboat.repo.manifest import Manifest
from lifeboat.sources.postgres.logical_backup import backup_logical
from lifeboat.sources.postgres.logical_restore import restore_logical
from lifeboat.util.progress import Reporter

Say = Callable[[str], None]


@dataclass
class DemoResult:
    workdir: Path
    postgres_version: str
    rows: dict[str, int]
    database_bytes: int
    backup_id: str = ""
    plain_bytes: int = 0
    stored_bytes: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    identical: bool = False
    verified_tables: int = 0
    # the restore drill: its verdict, measured recovery time and data-loss window
    drill_verdict: str = ""
    drill_rto: float | None = None
    drill_rpo: float | None = None


def table_digests(conn: psycopg.Connection[Any]) -> dict[str, str]:
    digests = {}
    for table in wms.TABLES:
        row = conn.execute(
            sql.SQL(
                "SELECT count(*) || ':' || "
                "coalesce(md5(string_agg(t::text, '|' ORDER BY t.id)), '') "
                "FROM {} t"
            ).format(sql.Identifier(table))
        ).fetchone()
        assert row is not None
        digests[table] = str(row[0])
    return digests


def _cluster_dir(workdir: Path) -> Path | None:
    """workdir/pg when the postgres user can reach it, else None (a temp folder is used)."""
    probe = workdir / "pg"
    try:
        cluster = ScratchCluster(find_bin_dirs()[-1], probe)
        cluster._prepare_dirs()
        return probe
    except Exception:
        shutil.rmtree(probe, ignore_errors=True)
        return None


def _drill(ctx: Context, manifest: Manifest) -> DrillRecord:
    from lifeboat.ops.drill import DrillOptions, drill_backup

    return drill_backup(ctx, ctx.repository(), manifest, DrillOptions(), "latest")


def run_demo(workdir: Path, size_mb: int, keep: bool, say: Say, reporter: Reporter) -> DemoResult:
    bin_dirs = find_bin_dirs()
    if not bin_dirs:
        raise ToolError("no PostgreSQL server binaries found: run ./scripts/setup.sh")
    workdir = workdir.absolute()
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    workdir.chmod(0o755)
    base = _cluster_dir(workdir) or Path(tempfile.mkdtemp(prefix="lifeboat-demo-pg-"))
    cluster = ScratchCluster(bin_dirs[-1], base)
    timings: dict[str, float] = {}

    def timed(label: str, action: Callable[[], Any]) -> Any:
        started = time.monotonic()
        value = action()
        timings[label] = time.monotonic() - started
        return value

    say(f"starting a throwaway PostgreSQL {cluster.major} in {base}")
    cluster.init()
    cluster.start()
    try:
        cluster.psql("CREATE DATABASE wms")
        with psycopg.connect(cluster.dsn("wms")) as conn:
            wms.create_schema(conn)
            conn.commit()
            say(
                f"loading about {size_mb} MB of warehouse data "
                "(lots, production runs, QC decisions)"
            )
            rows = timed("load", lambda: wms.load(conn, size_mb * 1024 * 1024))
            size_row = conn.execute("SELECT pg_database_size('wms')").fetchone()
            before = table_digests(conn)
        result = DemoResult(
            workdir, cluster.psql("SHOW server_version"), rows, int(size_row[0]) if size_row else 0
        )

        public = write_identity(workdir / "age.key")
        config = workdir / "lifeboat.toml"
        config.write_text(
            f'[repositories.local]\nurl = "file://{workdir / "repo"}"\n\n'
            f'[encryption]\nage_recipients = ["{public}"]\n'
            f'age_identity_file = "{workdir / "age.key"}"\n\n'
            f'[sources.wms]\ntype = "postgres"\ndsn = "{cluster.dsn("wms")}"\n'
            f'pg_bin_dir = "{cluster.bin_dir}"\n\n'
            '[sources.wms.objectives]\nrto = "1h"\nrpo = "1h"\n\n'
            '[sources.wms.drill]\ndepth = "standard"\n'
            "[[sources.wms.drill.checks]]\n"
            'name = "every production run has a QC decision"\n'
            'sql = "SELECT count(*) = 0 FROM production_runs r WHERE NOT EXISTS '
            '(SELECT 1 FROM qc_decisions q WHERE q.run_id = r.id)"\n'
        )
        ctx = Context.load(config, reporter)
        ctx.repository().init()
        say(f"backing up wms into {workdir / 'repo'} (zstd + age, sha256 on both sides)")
        made = timed("backup", lambda: backup_logical(ctx, "wms")).manifest
        result.backup_id = made.id
        result.plain_bytes = made.plain_size
        result.stored_bytes = made.stored_size
        say("verifying the stored backup (checksums, decrypt, decompress, pg_restore --list)")
        report = timed("verify", lambda: verify(ctx, "wms", deep=True))
        if not report.ok:
            raise LifeboatError("deep verification failed: " + "; ".join(report.checks[0].problems))

        say("proving it restores: a drill on a scratch PostgreSQL (evidence, checks, RTO, RPO)")
        drilled = timed("drill", lambda: _drill(ctx, made))
        result.drill_verdict = drilled.verdict
        result.drill_rto, result.drill_rpo = drilled.rto_seconds, drilled.rpo_seconds
        if not drilled.passed:
            raise LifeboatError("the restore drill failed: " + "; ".join(drilled.reasons))

        say("dropping database wms")
        cluster.psql("DROP DATABASE wms WITH (FORCE)")
        say("restoring wms from the backup and checking it against the manifest")
        restored = timed("restore", lambda: restore_logical(ctx, "wms", assume_yes=True))
        with psycopg.connect(cluster.dsn("wms")) as conn:
            after = table_digests(conn)
        result.identical = after == before
        result.verified_tables = len(restored.check.tables) if restored.check.ok else 0
        result.timings = timings
        if not result.identical:
            raise LifeboatError("the restored data differs from the original")
        return result
    finally:
        if keep:
            cluster.keep_running()
            say(f"cluster left running on port {cluster.port} (data in {base})")
        else:
            cluster.destroy()
