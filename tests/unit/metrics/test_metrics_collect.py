"""The newest-state gauges, read by `lifeboat metrics` from a repository written by the
project's own code (tests/history.py), checked against what the history wrote."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lifeboat.context import Context
from lifeboat.metrics.collect import RepositoryCollector
from lifeboat.metrics.facts import Snapshot, take_snapshot
from lifeboat.repo import layout
from lifeboat.repo.catalog import Repository
from lifeboat.storage.local import LocalStorage
from tests.history import History
from tests.unit.helpers import run
from tests.unit.metrics_history import Samples, metrics_history, samples, value

pytestmark = pytest.mark.unit

# what a label may be: nothing of high cardinality (no backup id, no segment name)
ALLOWED_LABELS = {"source", "repository", "type", "result", "version", "python_version"}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[History, Path]:
    return metrics_history(tmp_path_factory.mktemp("metrics"))


def printed(config: Path, capsys: pytest.CaptureFixture[str]) -> Samples:
    capsys.readouterr()
    assert run(["--config", str(config), "metrics"]) == 0
    return samples(capsys.readouterr().out)


def test_the_backup_gauges_are_those_of_the_newest_manifest_of_each_type(
    written: tuple[History, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    history, config = written
    found = printed(config, capsys)
    main = Repository("main", LocalStorage(history.repositories["main"]))
    manifests = main.list_backups("wms")
    kept = history.kept[("main", "wms")]
    for kind in ("logical", "physical"):
        of_kind = [m for m in manifests if m.type == kind]
        newest = of_kind[-1]
        labels = {"source": "wms", "repository": "main", "type": kind}
        assert value(found, "lifeboat_backups", **labels, result="committed") == len(
            [b for b in kept if history.kinds[b] == kind]
        )
        assert value(found, "lifeboat_backup_last_success_timestamp_seconds", **labels) == (
            newest.finished_at.timestamp()
        )
        assert value(found, "lifeboat_backup_last_duration_seconds", **labels) == (
            (newest.finished_at - newest.started_at).total_seconds()
        )
        assert value(found, "lifeboat_backup_last_plain_size_bytes", **labels) == newest.plain_size
        assert value(found, "lifeboat_backup_last_stored_size_bytes", **labels) == (
            newest.stored_size
        )
        # the retention policy's shortest tier is daily (the history schedules nothing)
        assert value(
            found, "lifeboat_backup_expected_interval_seconds", source="wms", type=kind
        ) == (86400)
    damaged = {"source": "wms", "repository": "main", "type": "unknown", "result": "damaged"}
    assert value(found, "lifeboat_backups", **damaged) == 0
    # a copy target holds copies, not the source's own backups: no backup gauges of it
    assert all(
        ("repository", "offsite") not in labels
        for labels in found["lifeboat_backup_last_success_timestamp_seconds"]
    )


def test_the_drill_wal_and_objective_gauges(
    written: tuple[History, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    history, config = written
    found = printed(config, capsys)
    newest = history.drills[-1]
    passes = [d for d in history.drills if d.passed]
    assert value(found, "lifeboat_drill_last_passed", source="wms") == float(newest.passed)
    assert value(found, "lifeboat_drill_last_timestamp_seconds", source="wms") == (
        newest.started_at.timestamp()
    )
    assert value(found, "lifeboat_drill_last_pass_timestamp_seconds", source="wms") == (
        passes[-1].started_at.timestamp()
    )
    if newest.rto_seconds is not None:
        assert value(found, "lifeboat_drill_last_rto_seconds", source="wms") == newest.rto_seconds
    assert value(found, "lifeboat_rto_objective_seconds", source="wms") == 90 * 60
    assert value(found, "lifeboat_rpo_objective_seconds", source="wms") == 36 * 3600
    assert value(found, "lifeboat_drill_expected_interval_seconds", source="wms") == 92 * 86400
    segments = [
        info.key
        for info in LocalStorage(history.repositories["main"]).list("wms/wal/")
        if layout.parse_wal_key(info.key)
    ]
    assert value(found, "lifeboat_wal_archived_segments", source="wms", repository="main") == len(
        segments
    )
    # the WAL on the newest physical backup is the newest restorable point
    point = value(found, "lifeboat_recovery_point_timestamp_seconds", source="wms")
    assert point == value(
        found, "lifeboat_wal_last_archived_timestamp_seconds", source="wms", repository="main"
    )
    assert value(found, "lifeboat_spool_segments", source="wms") == 0
    assert value(found, "lifeboat_spool_capacity_segments", source="wms") == 64
    assert value(found, "lifeboat_repository_reachable", repository="main") == 1
    assert value(found, "lifeboat_repository_reachable", repository="offsite") == 1


def test_the_verification_gauges_follow_the_newest_record_of_each_held_backup(
    written: tuple[History, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    history, config = written
    found = printed(config, capsys)
    held = set(history.kept[("main", "wms")])
    newest: dict[str, str] = {}  # backup -> leaf of its newest record
    for info in LocalStorage(history.repositories["main"]).list("wms/checks/"):
        _, _, backup, leaf = info.key.split("/")
        if backup in held:
            newest[backup] = max(newest.get(backup, ""), leaf)
    assert newest, "the history verifies its backups"
    stamp = max(leaf.split("-", 1)[0] for leaf in newest.values())
    at = datetime.strptime(stamp, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=UTC)
    labels = {"source": "wms", "repository": "main"}
    assert value(found, "lifeboat_verification_last_timestamp_seconds", **labels) == (
        at.timestamp()
    )
    failing = sum(leaf.endswith("-failed.json") for leaf in newest.values())
    assert value(found, "lifeboat_verification_failing_backups", **labels) == failing


def test_no_label_has_high_cardinality(
    written: tuple[History, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, config = written
    found = printed(config, capsys)
    names = {name for labels in found.values() for pairs in labels for name, _ in pairs}
    assert names <= ALLOWED_LABELS | {"kind"}
    assert all(name.startswith("lifeboat_") for name in found)


def test_a_repository_that_cannot_be_read_is_reported_and_hides_nothing_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history, config = metrics_history(tmp_path)
    (history.repositories["main"] / layout.MARKER).write_text("not JSON")
    found = printed(config, capsys)
    assert value(found, "lifeboat_repository_reachable", repository="main") == 0
    assert value(found, "lifeboat_repository_reachable", repository="offsite") == 1
    assert "lifeboat_backup_last_success_timestamp_seconds" not in found
    # the drills are read from the copy target too
    assert value(found, "lifeboat_drill_last_timestamp_seconds", source="wms") == (
        history.drills[-1].started_at.timestamp()
    )


class Reads:
    """take_snapshot, counted."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, ctx: Context) -> Snapshot:
        self.count += 1
        return take_snapshot(ctx)


def test_scrapes_within_the_refresh_are_answered_from_memory(
    written: tuple[History, Path],
) -> None:
    _, config = written
    now = [1000.0]
    reads = Reads()
    collector = RepositoryCollector(
        Context.load(config), timedelta(minutes=1), clock=lambda: now[0], read=reads
    )
    first = {m.name for m in collector.collect()}
    now[0] += 59
    assert {m.name for m in collector.collect()} == first
    assert reads.count == 1
    now[0] += 2
    collector.collect()
    assert reads.count == 2
    collector.invalidate()  # a job wrote something: read at the next scrape
    collector.collect()
    assert reads.count == 3
