"""docs/manual-restore.md, run as written: age, zstd and pg_restore only, no Lifeboat."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from lifeboat.postgres.instance import ScratchCluster

from .helpers import fill_rich, make_workspace, table_digests


def test_manual_restore_with_age_zstd_and_pg_restore(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path
) -> None:
    fill_rich(pg_cluster, fresh_db)
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db))
    ws.run("backup", "wms", check=True)
    target = f"{fresh_db}_manual"
    pg_cluster.psql(f'CREATE DATABASE "{target}"')
    bin_dir = pg_cluster.bin_dir
    script = f"""
set -euo pipefail
REPO={ws.repo}
SOURCE=wms
ID=$(ls "$REPO/$SOURCE/backups" | sort | tail -n 1)
DIR="$REPO/$SOURCE/backups/$ID"
grep -A6 '"name": "dump.zst' "$DIR/manifest.json" | grep '"sha256"' \\
  | grep -q "$(sha256sum "$DIR"/dump.zst.* | cut -d' ' -f1)"
age --decrypt -i {ws.identity} "$DIR/dump.zst.age" \\
  | zstd --decompress --stdout \\
  | {bin_dir}/pg_restore --no-owner --no-privileges --single-transaction --exit-on-error \\
      -h 127.0.0.1 -p {pg_cluster.port} -U postgres -d {target}
"""
    try:
        subprocess.run(["bash", "-c", script], check=True, capture_output=True, text=True)
        assert table_digests(pg_cluster, target) == table_digests(pg_cluster, fresh_db)
        manifest_path = next(ws.repo.rglob("manifest.json"))
        counts = json.loads(manifest_path.read_text())["evidence"]["row_counts"]
        assert pg_cluster.psql("SELECT count(*) FROM public.lots", target) == str(
            counts["public.lots"]
        )
    finally:
        pg_cluster.psql(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
