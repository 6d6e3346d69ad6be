"""A cron-style run: `lifeboat backup` as its own process against a real server leaves the
textfile node_exporter reads, with the backup's gauges read back from the repository and
the run's outcome; a failed run of another source is added beside it, its exit kept."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from lifeboat.postgres.instance import ScratchCluster

from .helpers import error_line, make_workspace
from .versions import on_oldest_major

# nothing listens on port 1 of the loopback: a connection is refused at once
UNREACHABLE_DSN = "postgresql://postgres@127.0.0.1:1/postgres"


def read_samples(textfile: Path) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(textfile.read_text())
        for sample in family.samples
    }


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


@on_oldest_major
def test_a_cron_backup_writes_the_textfile(
    tmp_path: Path, pg_cluster: ScratchCluster, fresh_db: str
) -> None:
    pg_cluster.psql("CREATE TABLE lots (id int PRIMARY KEY); INSERT INTO lots VALUES (1)", fresh_db)
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db), in_process=True)
    textfile = tmp_path / "node-exporter" / "lifeboat.prom"
    textfile.parent.mkdir()
    with ws.config.open("a") as config:
        config.write(
            f'\n[sources.crm]\ntype = "postgres"\ndsn = "{UNREACHABLE_DSN}"\n'
            f'\n[metrics]\ntextfile = "{textfile}"\n'
        )
    backup = json.loads(ws.run("backup", "wms", "--json", check=True).stdout)
    found = read_samples(textfile)
    labels = {"source": "wms", "repository": "local", "type": "logical"}
    assert found[key("lifeboat_last_run_success", kind="backup", source="wms", type="logical")] == 1
    assert found[key("lifeboat_backups", **labels, result="committed")] == 1
    assert found[key("lifeboat_backup_last_plain_size_bytes", **labels)] == backup["plain_size"]
    assert found[key("lifeboat_backup_last_stored_size_bytes", **labels)] == backup["stored_size"]
    # the summary rounds the duration to the millisecond
    took = found[key("lifeboat_backup_last_duration_seconds", **labels)]
    assert round(took, 3) == backup["duration_s"]
    assert found[key("lifeboat_backup_last_success_timestamp_seconds", **labels)] == (
        datetime.fromisoformat(backup["finished_at"]).timestamp()
    )

    failed = ws.run("backup", "crm")
    assert failed.returncode == 1
    error_line(failed)
    found = read_samples(textfile)
    assert found[key("lifeboat_last_run_success", kind="backup", source="crm", type="logical")] == 0
    assert found[key("lifeboat_last_run_success", kind="backup", source="wms", type="logical")] == 1
    assert found[key("lifeboat_backups", **labels, result="committed")] == 1
