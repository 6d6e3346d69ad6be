"""Drill records across repositories: written into every repository holding the backup,
read back as one history with each drill once, the summary figures and when a drill is
overdue."""

from __future__ import annotations

import json
import logging
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lifeboat.context import Context
from lifeboat.errors import RepositoryError, UsageError
from lifeboat.ops.drill_records import (
    drills_history,
    overdue,
    record_drill,
    repositories_holding,
    summarise,
)
from lifeboat.ops.status import drill_status
from lifeboat.repo.drills import drill_key, drills_prefix, read_drills, write_drill
from tests.unit.drill_records import make_record, write_drills_config
from tests.unit.repo.test_repository import make_manifest

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 1, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    return Context.load(write_drills_config(tmp_path))


def test_a_record_goes_into_every_repository_holding_the_backup(ctx: Context) -> None:
    manifest = make_manifest(when=NOW - 3 * DAY)
    for repo in ctx.repositories.values():
        repo.save_manifest(manifest)
    holding = repositories_holding(ctx, "wms", manifest.id)
    assert [r.name for r in holding] == ["main", "offsite"]
    record = make_record(manifest.id, NOW - DAY)
    assert record_drill(holding, record) == ["main", "offsite"]
    assert record.repositories == ["main", "offsite"]
    for repo in holding:
        [back] = read_drills(repo.storage, "wms")
        assert back.repositories == ["main", "offsite"]  # each copy says where the others are
        assert back.drill_id == record.drill_id
    keys = [
        [i.key for i in r.storage.list(drills_prefix("wms"))] for r in ctx.repositories.values()
    ]
    assert keys[0] == keys[1] == [drill_key("wms", manifest.id, NOW - DAY, "pass", record.drill_id)]


def test_a_repository_that_cannot_take_the_record_is_a_warning(
    ctx: Context, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # a file where the drills folder should be: the file system refuses the write
    (tmp_path / "offsite" / "wms").mkdir()
    (tmp_path / "offsite" / "wms" / "drills").write_text("not a folder")
    repos = list(ctx.repositories.values())
    record = make_record("20261101T000000Z", NOW - DAY)
    with caplog.at_level(logging.WARNING, logger="lifeboat"):
        assert record_drill(repos, record) == ["main"]
    assert record.repositories == ["main"]
    assert f"drill {record.drill_id} into repository offsite" in caplog.text
    assert [r.drill_id for r in read_drills(repos[0].storage, "wms")] == [record.drill_id]


def test_no_repository_taking_the_record_is_an_error(ctx: Context, tmp_path: Path) -> None:
    for name in ("main", "offsite"):
        (tmp_path / name / "wms").mkdir()
        (tmp_path / name / "wms" / "drills").write_text("not a folder")
    record = make_record("20261101T000000Z", NOW - DAY)
    with pytest.raises(RepositoryError, match="could not be written into any repository"):
        record_drill(list(ctx.repositories.values()), record)
    assert record.repositories == []


def test_a_backup_gone_from_every_repository_is_an_error_not_a_lost_record() -> None:
    # a prune deleted the backup while it was drilled: no repository holds it any more
    record = make_record("20261101T000000Z", NOW - DAY)
    with pytest.raises(RepositoryError, match="is in no repository any more"):
        record_drill([], record)


def test_the_history_has_each_drill_once_newest_last(ctx: Context) -> None:
    main, offsite = ctx.repositories["main"], ctx.repositories["offsite"]
    both = make_record("20261101T000000Z", NOW - 3 * DAY, "fail", rto_seconds=None)
    only_main = make_record("20261101T000000Z", NOW - 2 * DAY, "pass", rto_seconds=100.0)
    only_copy = make_record("20261102T000000Z", NOW - 1 * DAY, "pass", rto_seconds=300.0)
    record_drill([main, offsite], both)
    record_drill([main], only_main)
    record_drill([offsite], only_copy)
    history = drills_history(ctx, "wms", NOW)
    assert [r.drill_id for r in history.records] == [
        both.drill_id,
        only_main.drill_id,
        only_copy.drill_id,
    ]
    summary = history.summaries["wms"]
    assert (summary.count, summary.passed, summary.rto_measured) == (3, 2, 2)
    assert (summary.rto_median, summary.rto_max) == (200.0, 300.0)
    assert summary.newest_pass == only_copy
    assert not summary.overdue
    document = json.loads(json.dumps(history.to_json()))
    assert [r["drill_id"] for r in document["records"]] == [r.drill_id for r in history.records]
    assert document["summary"]["wms"]["pass_rate"] == pytest.approx(2 / 3)
    assert document["summary"]["wms"]["drill_every"] == "92d"


def test_an_unknown_source_is_a_usage_error(ctx: Context) -> None:
    with pytest.raises(UsageError, match="unknown source 'crm'"):
        drills_history(ctx, "crm", NOW)


def test_the_history_is_read_when_a_copy_target_is_gone(ctx: Context, tmp_path: Path) -> None:
    record = make_record("20261101T000000Z", NOW - DAY)
    record_drill([ctx.repositories["main"]], record)
    shutil.rmtree(tmp_path / "offsite")
    history = drills_history(ctx, None, NOW)
    assert [r.drill_id for r in history.records] == [record.drill_id]
    assert history.unreadable == {}  # not initialised, and not the source's own: passed over


def test_the_history_names_an_own_repository_that_cannot_be_read(
    ctx: Context, tmp_path: Path
) -> None:
    record = make_record("20261101T000000Z", NOW - DAY)
    record_drill([ctx.repositories["offsite"]], record)
    shutil.rmtree(tmp_path / "main")
    history = drills_history(ctx, "wms", NOW)
    assert [r.drill_id for r in history.records] == [record.drill_id]
    assert list(history.unreadable) == ["main"]
    assert "not initialised" in history.unreadable["main"]


def test_the_history_fails_when_no_repository_can_be_read(ctx: Context, tmp_path: Path) -> None:
    shutil.rmtree(tmp_path / "main")
    (tmp_path / "offsite" / "lifeboat-repo.json").write_text("{broken")
    with pytest.raises(RepositoryError, match=r"repository main .* is not initialised"):
        drills_history(ctx, "wms", NOW)


def test_summary_figures() -> None:
    records = [
        make_record("20261101T000000Z", NOW - 5 * DAY, "pass", rto_seconds=60.0),
        # slow: failed its RTO objective, and its RTO counts in the figures
        make_record("20261101T000000Z", NOW - 4 * DAY, "fail", rto_seconds=900.0),
        make_record("20261101T000000Z", NOW - 3 * DAY, "fail", rto_seconds=None),
        make_record("20261101T000000Z", NOW - 2 * DAY, "pass", rto_seconds=120.0),
        make_record("20261101T000000Z", NOW - 1 * DAY, "fail", rto_seconds=30.0),
    ]
    summary = summarise("wms", records, timedelta(days=92), NOW)
    assert (summary.count, summary.passed, summary.pass_rate) == (5, 2, 0.4)
    assert (summary.rto_measured, summary.rto_median, summary.rto_max) == (4, 90.0, 900.0)
    assert summary.newest == records[-1] and summary.newest_pass == records[3]
    empty = summarise("wms", [], None, NOW)
    assert (empty.count, empty.pass_rate, empty.rto_median, empty.newest_pass) == (
        0,
        None,
        None,
        None,
    )
    assert not empty.overdue


def test_overdue() -> None:
    every = timedelta(days=92)
    assert overdue(None, every, NOW)  # drill_every set, never passed
    assert overdue(NOW - every - timedelta(seconds=1), every, NOW)
    assert not overdue(NOW - every, every, NOW)
    assert not overdue(NOW - DAY, every, NOW)
    assert not overdue(None, None, NOW)  # no drill_every: never overdue
    assert summarise("wms", [make_record("20261101T000000Z", NOW - 93 * DAY)], every, NOW).overdue


def test_status_reads_newest_and_newest_pass_from_the_keys(ctx: Context) -> None:
    repos = list(ctx.repositories.values())
    every = timedelta(days=92)
    assert drill_status(repos, "wms", every, NOW)["overdue"] is True
    write_drill(repos[0].storage, make_record("20261101T000000Z", NOW - 100 * DAY, "pass"))
    write_drill(repos[1].storage, make_record("20261102T000000Z", NOW - 2 * DAY, "fail"))
    found = drill_status(repos, "wms", every, NOW)
    assert found["newest"]["verdict"] == "fail" and found["newest"]["backup"] == "20261102T000000Z"
    assert found["newest_pass"]["age_s"] == 100 * 86400.0
    assert found["overdue"] is True
    assert found["due_at"] == (NOW - 8 * DAY).isoformat()
    write_drill(repos[1].storage, make_record("20261102T000000Z", NOW - DAY, "pass"))
    assert drill_status(repos, "wms", every, NOW)["overdue"] is False
    assert drill_status(repos, "wms", None, NOW)["drill_every"] is None
