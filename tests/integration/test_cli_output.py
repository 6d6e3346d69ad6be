"""What people and programs see: progress on a terminal, JSON logs, no secrets."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from lifeboat.postgres.instance import ScratchCluster

from .helpers import LIFEBOAT, fill_rich, make_workspace
from .versions import on_oldest_major

# what the commands print does not depend on the server's version:
# run once, on the oldest installed major
pytestmark = on_oldest_major


def test_json_log_lines(pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path) -> None:
    fill_rich(pg_cluster, fresh_db)
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db))
    result = ws.run("--log-format", "json", "backup", "wms", check=True)
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert records and all({"time", "level", "message"} <= set(r) for r in records)
    assert any("committed" in r["message"] for r in records)
    assert result.stdout.strip() == ws.run_json("list")[0]["id"]


def test_progress_bar_on_a_terminal(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path
) -> None:
    if shutil.which("script") is None:
        pytest.skip("util-linux `script` is needed to give the command a terminal")
    fill_rich(pg_cluster, fresh_db)
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db))
    command = f"{LIFEBOAT} --config {ws.config} backup wms"
    shown = subprocess.run(
        ["script", "-qfec", command, "/dev/null"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"},
    ).stdout
    assert "backup wms/" in shown  # the task line of the live progress display
    assert re.search(r"[\d.]+/\? [kMG]?B", shown)  # bytes so far (the total is unknown)
    assert "0:00:0" in shown  # elapsed time
    assert "info" not in shown  # plain log lines stay off a terminal


def test_passwords_never_reach_output(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path
) -> None:
    # the test cluster trusts local connections, so any password is accepted
    dsn = pg_cluster.dsn(fresh_db).replace("postgres@", "postgres:hunter2-secret@")
    ws = make_workspace(tmp_path, dsn)
    made = ws.run("--debug", "backup", "wms", check=True)
    listed = ws.run("--debug", "list")
    shown = ws.run("--debug", "show", made.stdout.strip(), "--json")
    for result in (made, listed, shown):
        assert "hunter2-secret" not in result.stdout + result.stderr
    assert "hunter2-secret" not in "".join(
        p.read_text(errors="replace") for p in ws.repo.rglob("*.json")
    )


def test_typed_confirmation_on_a_terminal(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path
) -> None:
    if shutil.which("script") is None:
        pytest.skip("util-linux `script` is needed to give the command a terminal")
    fill_rich(pg_cluster, fresh_db)
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db))
    ws.run("backup", "wms", check=True)
    pg_cluster.psql("INSERT INTO other.lots VALUES (4242, 'after the backup')", fresh_db)
    command = f"{LIFEBOAT} --config {ws.config} restore wms"

    def answer(text: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["script", "-qec", command, "/dev/null"],
            input=text,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "TERM": "dumb"},
        )

    declined = answer("not-the-name\n")
    assert "Type its name" in declined.stdout
    assert "would be overwritten" in declined.stdout
    assert pg_cluster.psql("SELECT count(*) FROM other.lots", fresh_db) == "51"

    confirmed = answer(f"{fresh_db}\n")
    assert "verified:" in confirmed.stdout, confirmed.stdout
    assert pg_cluster.psql("SELECT count(*) FROM other.lots", fresh_db) == "50"
