"""The disaster-recovery runbook of a real repository: it names the real backup, the real
configuration file and the drill's measured RTO, and its logical restore command, run as
written after the database is dropped, brings the database back."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from lifeboat.policy.drill import seconds_text
from lifeboat.postgres.instance import ScratchCluster

from .helpers import LIFEBOAT, fill_rich, make_workspace, table_digests
from .versions import on_oldest_major


def _first_command_after(text: str, heading: str) -> str:
    """The first line of the first bash block after the line starting with heading."""
    found = re.search(re.escape(heading) + r".*?```bash\n(.*?)\n", text, re.DOTALL)
    assert found, f"no command after {heading!r} in:\n{text}"
    return found.group(1)


@on_oldest_major
def test_the_runbook_names_the_real_backup_and_drill_and_its_restore_command_works(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path
) -> None:
    fill_rich(pg_cluster, fresh_db)
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db), in_process=True)
    backup = ws.run_json("backup", "wms")["id"]
    drilled = ws.run("drill", "wms", "--depth", "quick", "--json", timeout=600, own_process=True)
    assert drilled.returncode == 0, drilled.stderr
    (record,) = json.loads(drilled.stdout)["drills"]
    assert record["verdict"] == "pass", record["reasons"]

    runbook = tmp_path / "RUNBOOK.md"
    done = ws.run("runbook", "wms", "--output", str(runbook))
    assert done.returncode == 0, done.stderr
    text = runbook.read_text(encoding="utf-8")
    assert f"newest **logical** backup: `{backup}`" in text
    assert f"`{ws.config.resolve()}`" in text
    assert (
        f"- logical: RTO {seconds_text(record['rto_seconds'])} in drill `{record['drill_id']}`"
    ) in text
    assert f"encryption.age_identity_file = {ws.identity}" in text
    assert f"`wms/backups/{backup}/" in text

    # the disaster: the database is gone; the runbook's command, as written, restores it
    before = table_digests(pg_cluster, fresh_db)
    command = _first_command_after(text, "Into the original database")
    assert command == (f"lifeboat --config {ws.config.resolve()} restore wms --backup {backup}"), (
        command
    )
    pg_cluster.psql(f'DROP DATABASE "{fresh_db}" WITH (FORCE)')
    path = f"{Path(LIFEBOAT).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    restored = subprocess.run(
        ["bash", "-c", command],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PATH": path},
    )
    assert restored.returncode == 0, restored.stderr
    assert table_digests(pg_cluster, fresh_db) == before
