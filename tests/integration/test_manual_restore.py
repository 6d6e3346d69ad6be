"""docs/manual-restore.md, run as written: age, zstd and pg_restore only, no Lifeboat."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lifeboat.postgres.instance import ScratchCluster
from tests.waiting import wait_for

from .archiving import (
    ScratchClusterAt,
    archiving_cluster,
    events,
    on_a_free_port,
    stop_cluster,
)
from .helpers import fill_rich, make_workspace, table_digests

DOC = Path(__file__).resolve().parents[2] / "docs" / "manual-restore.md"


def documented_backup_choice(backup_type: str) -> str:
    """The lines of the document's step 1 that pick the backup (from `ID=$(` to `DIR=`),
    with the type set: run as written, not copied into the test."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index("ID=$(")
    end = text.index("\n", text.index('DIR="$REPO/$SOURCE/backups/$ID"', start))
    return f"TYPE={backup_type}\n{text[start:end]}"


def test_manual_restore_with_age_zstd_and_pg_restore(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path
) -> None:
    fill_rich(pg_cluster, fresh_db)
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db), in_process=True)
    wanted = ws.run_json("backup", "wms")["id"]
    # a newer backup the document must pass over: the safety copy a restore takes
    ws.run("restore", "wms", "--target-db", fresh_db, "--yes", check=True)
    target = f"{fresh_db}_manual"
    pg_cluster.psql(f'CREATE DATABASE "{target}"')
    bin_dir = pg_cluster.bin_dir
    script = f"""
set -euo pipefail
REPO={ws.repo}
SOURCE=wms
{documented_backup_choice("logical")}
grep -A6 '"name": "dump.zst' "$DIR/manifest.json" | grep '"sha256"' \\
  | grep -q "$(sha256sum "$DIR"/dump.zst.* | cut -d' ' -f1)"
age --decrypt -i {ws.identity} "$DIR/dump.zst.age" \\
  | zstd --decompress --stdout \\
  | {bin_dir}/pg_restore --single-transaction --exit-on-error \\
      -h 127.0.0.1 -p {pg_cluster.port} -U postgres -d {target}
echo "$ID"
"""
    try:
        done = subprocess.run(["bash", "-c", script], check=True, capture_output=True, text=True)
        assert done.stdout.strip() == wanted
        assert table_digests(pg_cluster, target) == table_digests(pg_cluster, fresh_db)
        manifest_path = ws.repo / "wms" / "backups" / wanted / "manifest.json"
        counts = json.loads(manifest_path.read_text())["details"]["evidence"]["row_counts"]
        assert pg_cluster.psql("SELECT count(*) FROM public.lots", target) == str(
            counts["public.lots"]
        )
    finally:
        pg_cluster.psql(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')


@pytest.mark.skipif(os.geteuid() != 0, reason="the documented steps run as root")
def test_manual_point_in_time_restore_with_age_zstd_and_tar(pg_bin_dir: Path) -> None:
    """The physical section of docs/manual-restore.md, with this test's paths."""
    with archiving_cluster(pg_bin_dir) as archiving:
        archiving.commit(1, 5)
        archiving.lifeboat("backup", "wms", "--type", "physical")
        archiving.commit(6, 12)
        archiving.switch_and_wait()
        archiving.cluster.stop("immediate")
        home = archiving.home
        pgdata = home / "manual"
        server_log = home / "manual.log"
        bin_dir = archiving.cluster.bin_dir

        def restore(port: int) -> subprocess.CompletedProcess[str]:
            script = f"""
set -euo pipefail
REPO={home / "repo"}
SOURCE=wms
{documented_backup_choice("physical")}
PGDATA={pgdata}
install -d -m 0700 -o postgres "$PGDATA"
age --decrypt -i {home / "age.key"} "$DIR/base.tar.zst.age" \\
  | zstd --decompress --stdout | tar --extract --file=- --directory="$PGDATA"
chown -R postgres: "$PGDATA"
{bin_dir}/pg_verifybackup --no-parse-wal "$PGDATA"

cat > {home}/fetch-wal <<'SCRIPT'
#!/bin/sh
set -e
ARCHIVE={home / "repo"}/wms/wal
case "$1" in
  *.history) folder="$ARCHIVE/history" ;;
  *) folder="$ARCHIVE/$(echo "$1" | cut -c1-16)" ;;
esac
object=$(ls "$folder/$1-"*.zst.age 2>/dev/null | head -n 1)
[ -n "$object" ] || exit 1
age --decrypt -i {home / "age.key"} "$object" | zstd --decompress --stdout > "$2.tmp"
expected=$(basename "$object" | sed 's/.*-\\([0-9a-f]\\{{64\\}}\\)\\.zst\\.age$/\\1/')
[ "$(sha256sum < "$2.tmp" | cut -c1-64)" = "$expected" ] || {{ rm -f "$2.tmp"; exit 2; }}
mv "$2.tmp" "$2"
SCRIPT
chmod 755 {home}/fetch-wal

cat >> "$PGDATA/postgresql.auto.conf" <<'CONF'
restore_command = '{home}/fetch-wal %f %p'
recovery_target_action = 'promote'
port = {port}
archive_mode = off
CONF
touch "$PGDATA/recovery.signal"
chown postgres: "$PGDATA/postgresql.auto.conf" "$PGDATA/recovery.signal"
runuser -u postgres -- {bin_dir}/pg_ctl start -D "$PGDATA" -w -l {server_log}
"""
            return subprocess.run(["bash", "-c", script], capture_output=True, text=True)

        def undo() -> None:
            shutil.rmtree(pgdata)
            server_log.unlink()

        try:
            port, done = on_a_free_port(restore, server_log, undo)
            assert done.returncode == 0, done.stderr
            wait_for(
                lambda: ScratchClusterAt(port).sql("SELECT pg_is_in_recovery()") == "False",
                "the restored cluster to finish recovery",
            )
            assert events(port) == list(range(1, 13))
        finally:
            stop_cluster(pgdata, bin_dir)
