"""status and the metrics of sources other than PostgreSQL, in a repository shared with a
PostgreSQL one: no WAL and no spool for them (left out, not reported empty), their
backups by their own type, and a recovery point at their newest snapshot."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lifeboat.context import Context
from lifeboat.metrics.runs import LastRuns
from lifeboat.metrics.textfile import render
from lifeboat.ops.status import status
from lifeboat.repo.manifest import Manifest
from tests.unit.cli.test_notify_after_commands import commit_logical
from tests.unit.helpers import AgeKey, local_repository, run
from tests.unit.kind_backups import KIND_SOURCES, commit_kind, mixed_config


@pytest.fixture
def mixed(tmp_path: Path, age_key: AgeKey) -> tuple[Context, dict[str, Manifest]]:
    """wms (PostgreSQL), cache, media and inventory, each with backups in one repository."""
    path = mixed_config(tmp_path, age_key)
    repo = local_repository(tmp_path, "local")
    local_repository(tmp_path, "offsite")
    newest = {"wms": commit_logical(repo, 0)}
    for kind, source in KIND_SOURCES.items():
        commit_kind(repo, kind, 1)
        newest[source] = commit_kind(repo, kind, 2)
    return Context.load(path), newest


def test_status_leaves_out_wal_and_spool_of_other_kinds(
    mixed: tuple[Context, dict[str, Manifest]],
) -> None:
    ctx, newest = mixed
    reports = {r["source"]: r for r in status(ctx, None)}
    assert "spool" in reports["wms"] and "newest_wal" in reports["wms"]
    for kind, source in KIND_SOURCES.items():
        report = reports[source]
        assert report["type"] == kind
        assert "spool" not in report and "newest_wal" not in report
        repo = report["repositories"][0]
        assert all("newest_wal" not in r for r in report["repositories"])
        assert list(repo["backups"]) == [kind] and repo["backups"][kind]["count"] == 2
        # the snapshot is taken when such a backup starts
        assert report["rpo"]["recovery_point"] == newest[source].started_at.isoformat()
        assert report["healthy"], report["reasons"]
    # a PostgreSQL backup's recovery point stays its end
    assert reports["wms"]["rpo"]["recovery_point"] == newest["wms"].finished_at.isoformat()


def test_status_text_has_no_wal_nor_spool_rows_for_them(
    mixed: tuple[Context, dict[str, Manifest]], capsys: pytest.CaptureFixture[str]
) -> None:
    ctx, _ = mixed
    assert run(["--config", str(ctx.config_path), "status", "cache"]) == 0
    out = capsys.readouterr().out
    assert "newest redis" in out and "recovery point" in out
    for row in ("newest WAL", "spool", "queued", "worker"):
        assert row not in out
    assert run(["--config", str(ctx.config_path), "status", "wms"]) == 0
    out = capsys.readouterr().out
    assert "newest WAL" in out and "spool" in out


def test_metrics_have_no_wal_nor_spool_series_for_them(
    mixed: tuple[Context, dict[str, Manifest]],
) -> None:
    ctx, newest = mixed
    samples = [
        sample
        for family in text_string_to_metric_families(render(ctx, LastRuns()).decode())
        for sample in family.samples
    ]

    def sources_of(name: str) -> set[str]:
        return {s.labels["source"] for s in samples if s.name == name}

    for name in (
        "lifeboat_spool_segments",
        "lifeboat_spool_capacity_segments",
        "lifeboat_wal_archive_lag_seconds",
        "lifeboat_wal_archived_segments",
    ):
        assert sources_of(name) == {"wms"}, name
    points = {
        s.labels["source"]: s.value
        for s in samples
        if s.name == "lifeboat_recovery_point_timestamp_seconds"
    }
    assert points["cache"] == newest["cache"].started_at.timestamp()
    types = {
        (s.labels["source"], s.labels["type"])
        for s in samples
        if s.name == "lifeboat_backup_last_success_timestamp_seconds"
    }
    assert types >= {("cache", "redis"), ("media", "files"), ("inventory", "sqlite")}
