"""Incremental base backups (PostgreSQL >= 17) and restores that walk the chain."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifeboat.postgres.binaries import bin_dir_major

from .archiving import Archiving, archiving_cluster, events, stop_cluster
from .versions import before_pg17, needs_pg17


@pytest.fixture
def summarizing(pg_bin_dir: Path) -> Iterator[Archiving]:
    settings = {"summarize_wal": "on"} if bin_dir_major(pg_bin_dir) >= 17 else {}
    with archiving_cluster(pg_bin_dir, settings=settings) as made:
        yield made


def _backup(archiving: Archiving, *extra: str) -> dict[str, object]:
    made = archiving.lifeboat("backup", "wms", "--type", "physical", "--json", *extra)
    return dict(json.loads(made.stdout))


@needs_pg17
def test_incremental_chain_restores_to_latest_and_to_a_time(summarizing: Archiving) -> None:
    archiving = summarizing
    archiving.cluster.psql(
        "CREATE TABLE filler AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 200000) g"
    )
    full = _backup(archiving)
    archiving.commit(1, 10)
    # without the local copy of the parent's backup_manifest, the repository's is decrypted
    copies = Path(os.environ["XDG_STATE_HOME"], "lifeboat", "backup_manifests", "wms")
    (copies / f"{full['id']}.backup_manifest").unlink()
    first = _backup(archiving, "--incremental")
    archiving.commit(11, 20)
    archiving.cluster.psql("UPDATE filler SET v = 'changed' WHERE id <= 1000")
    second = _backup(archiving, "--incremental")
    assert first["parent"] == full["id"] and second["parent"] == first["id"]
    # an incremental holds only what changed: far smaller than the full backup
    assert int(str(first["plain_size"])) < int(str(full["plain_size"])) / 2
    deep = json.loads(archiving.lifeboat("verify", "wms", "--deep", "--json").stdout)
    assert {c["id"] for c in deep if c["ok"] and c["deep"]} >= {
        full["id"],
        first["id"],
        second["id"],
    }
    archiving.commit(21, 25, apart=True)
    target = archiving.commit_time(22)
    archiving.commit(26, 30)
    archiving.switch_and_wait()

    pgdata = archiving.home / "latest"
    port, restored = archiving.restore_started(pgdata, "--latest", "--json")
    try:
        assert json.loads(restored.stdout)["backup"] == second["id"]
        assert events(port) == list(range(1, 31))
        assert not (archiving.home / ".latest.lifeboat-chain").exists()
    finally:
        stop_cluster(pgdata, archiving.cluster.bin_dir)

    at_time = archiving.home / "at-time"
    port, _ = archiving.restore_started(at_time, "--to-time", target)
    try:
        assert events(port) == list(range(1, 23))
    finally:
        stop_cluster(at_time, archiving.cluster.bin_dir)


@needs_pg17
def test_an_incremental_needs_its_full_backup_before_and_at_restore(
    summarizing: Archiving,
) -> None:
    """Both ends of one chain on one cluster (starting a cluster costs more than the two):
    an incremental before any full backup is refused, and so is the restore of a chain
    whose full backup went missing."""
    archiving = summarizing
    without_parent = archiving.lifeboat(
        "backup", "wms", "--type", "physical", "--incremental", check=False
    )
    assert without_parent.returncode == 1
    assert "take a full one first" in without_parent.stderr
    assert "Traceback" not in without_parent.stderr

    full = _backup(archiving)
    archiving.commit(1, 5)
    _backup(archiving, "--incremental")
    for leftover in (archiving.home / "repo" / "wms" / "backups" / str(full["id"])).iterdir():
        os.unlink(leftover)
    pgdata = archiving.home / "broken"
    failed = archiving.lifeboat("restore", "wms", "--pgdata", str(pgdata), check=False)
    assert failed.returncode == 1
    assert f"incremental on {full['id']}, which is missing" in failed.stderr
    assert not pgdata.exists()


@before_pg17
def test_incremental_is_refused_before_17(summarizing: Archiving) -> None:
    failed = summarizing.lifeboat(
        "backup", "wms", "--type", "physical", "--incremental", check=False
    )
    assert failed.returncode == 1
    assert "need PostgreSQL 17 or later" in failed.stderr
