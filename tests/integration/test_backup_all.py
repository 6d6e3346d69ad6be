"""`lifeboat backup --all --parallel 2` and `--group` as cron runs them: two PostgreSQL
sources on the shared cluster and one whose server is unreachable. The good ones are
backed up and restore, the bad one is one line on stderr and the run exits 1; one summary
(table or JSON), and a notification per source to a real HTTP receiver."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from lifeboat.postgres.instance import ScratchCluster
from tests.servers.receivers import http_receiver

from .helpers import fill_rich, make_workspace, table_digests
from .versions import on_oldest_major

UNREACHABLE = "postgresql://backup@127.0.0.1:1/down?connect_timeout=5"


@on_oldest_major  # running several sources at once does not depend on the server's version
def test_backup_all_and_a_group(pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path) -> None:
    erp = f"t_{uuid.uuid4().hex[:16]}"
    pg_cluster.psql(f'CREATE DATABASE "{erp}"')
    restored: list[str] = []
    try:
        fill_rich(pg_cluster, fresh_db)
        pg_cluster.psql("CREATE TABLE orders AS SELECT g AS id FROM generate_series(1, 500) g", erp)
        ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db))
        state = {"LIFEBOAT_STATE_DIR": str(tmp_path / "state")}
        with http_receiver() as receiver:
            ws.config.write_text(
                ws.config.read_text()
                + f'[sources.erp]\ndsn = "{pg_cluster.dsn(erp)}"\n'
                + f'[sources.down]\ndsn = "{UNREACHABLE}"\n'
                + '[groups]\npair = ["erp", "down"]\n'
                + f'[notifications.hook]\ntype = "webhook"\nurl = "{receiver.url()}"\n'
            )
            every = ws.run("backup", "--all", "--parallel", "2", env=state)
            group = ws.run("--json", "backup", "--group", "pair", env=state)
            told = [json.loads(r.body) for r in receiver.received]

        # the table: one row per source in the config's order, then the totals
        assert every.returncode == 1, every.stderr
        rows = [line.split("│") for line in every.stdout.splitlines() if "│" in line]
        assert [(r[0].strip(), r[2].strip()) for r in rows] == [
            ("wms", "ok"),
            ("erp", "ok"),
            ("down", "FAILED"),
            ("3 source(s)", "2 ok, 1 failed"),
        ]
        failures = [line for line in every.stderr.splitlines() if "lifeboat: error:" in line]
        assert len(failures) == 1 and "backup of down failed:" in failures[0]
        assert "127.0.0.1:1" in failures[0] and "Traceback" not in every.stderr

        assert group.returncode == 1, group.stderr
        summary = json.loads(group.stdout)
        assert [(s["source"], s["ok"]) for s in summary["sources"]] == [
            ("erp", True),
            ("down", False),
        ]
        assert summary["totals"] | {"seconds": 0, "stored_size": 0} == {
            "sources": 2,
            "succeeded": 1,
            "failed": 1,
            "seconds": 0,
            "stored_size": 0,
        }
        first = summary["sources"][0]
        assert first["repositories"] == ["local"] and first["stored_size"] > 0

        listed = ws.run_json("list")
        assert sorted(b["source"] for b in listed) == ["erp", "erp", "wms"]
        for source, db in (("wms", fresh_db), ("erp", erp)):
            target = f"t_{uuid.uuid4().hex[:16]}"
            restored.append(target)
            done = ws.run_json("restore", source, "--target-db", target)
            assert done["verified"] is True
            assert table_digests(pg_cluster, target) == table_digests(pg_cluster, db)

        # one notification per source and run; the unreachable one's repeat is the same
        # incident, told once
        assert sorted((m["event"], m["source"]) for m in told) == [
            ("backup_failed", "down"),
            ("backup_succeeded", "erp"),
            ("backup_succeeded", "erp"),
            ("backup_succeeded", "wms"),
        ]
        ids = {m["details"]["backup_id"] for m in told if m["event"] == "backup_succeeded"}
        assert first["id"] in ids
    finally:
        for db in [erp, *restored]:
            pg_cluster.psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
