"""backup_many: every source of --all or a group, at most N at a time, past a failure, each
in a Context of its own; the outcomes in the sources' order and told on the caller's
thread. The sources are backed up by a stand-in here (a real backup needs a server: see
tests/integration/test_backup_all.py), which lets the test hold them while it counts."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from lifeboat.config.load import load_config
from lifeboat.context import Context
from lifeboat.errors import DatabaseError, UsageError
from lifeboat.ops.backup_many import SourceOutcome, backup_many, sources_of
from lifeboat.ops.backup_one import SourceBackup
from lifeboat.sources.registry import BackupOptions
from tests.unit.config.test_source_types import EVERY_KIND, HEAD

SOURCES = ["wms", "cache", "media", "inventory"]


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    path = tmp_path / "lifeboat.toml"
    path.write_text(HEAD + EVERY_KIND + '[groups]\nfast = ["media", "cache"]\n', encoding="utf-8")
    return Context.load(path)


def done(source: str, backup_type: str, failed: dict[str, str] | None = None) -> SourceBackup:
    summary = {"id": f"{source}-1", "stored_size": 100, "plain_size": 300}
    summary |= {"repositories": ["local"], "failed_repositories": failed or {}}
    return SourceBackup(source, backup_type, summary, failed or {})


def test_all_is_every_source_in_order_and_a_group_its_members(ctx: Context) -> None:
    assert sources_of(ctx.config, True, None) == SOURCES
    assert sources_of(ctx.config, False, "fast") == ["media", "cache"]
    with pytest.raises(UsageError, match=r"unknown group 'slow' \(groups: fast\)"):
        sources_of(ctx.config, False, "slow")


def test_all_without_sources_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "lifeboat.toml"
    path.write_text(HEAD, encoding="utf-8")
    with pytest.raises(UsageError, match="no source is configured"):
        sources_of(load_config(path), True, None)


def test_at_most_parallel_sources_run_at_once(ctx: Context) -> None:
    lock = threading.Lock()
    running = [0]
    most = [0]
    # each backup waits for a second one to be running beside it: with a bound of 2 the
    # four pass two by two; with no second one it would time out and fail the test
    pair = threading.Barrier(2, timeout=30)

    def back_up(own: Context, source: str, options: BackupOptions) -> SourceBackup:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        pair.wait()
        with lock:
            running[0] -= 1
        return done(source, "x")

    report = backup_many(ctx, SOURCES, parallel=2, back_up_one=back_up)
    assert [o.ok for o in report.outcomes] == [True] * 4
    assert most[0] == 2


def test_a_failure_does_not_stop_the_others(ctx: Context) -> None:
    contexts: list[Context] = []
    told: list[tuple[str, str]] = []

    def back_up(own: Context, source: str, options: BackupOptions) -> SourceBackup:
        contexts.append(own)
        if source == "cache":
            raise DatabaseError("cannot reach redis://127.0.0.1:1")
        if source == "inventory":
            return done(source, "sqlite", {"offsite": "access denied"})
        return done(source, own.source(source).type)

    def on_done(outcome: SourceOutcome) -> None:
        told.append((outcome.source, threading.current_thread().name))

    report = backup_many(ctx, SOURCES, parallel=1, on_done=on_done, back_up_one=back_up)

    assert [o.source for o in report.outcomes] == SOURCES
    assert [o.ok for o in report.outcomes] == [True, False, True, False]
    assert [o.source for o in report.failed] == ["cache", "inventory"]
    cache, inventory = report.failed
    assert cache.problem == "cannot reach redis://127.0.0.1:1"
    assert cache.backup_type == "redis"
    assert inventory.problem == "repository offsite did not get the backup: access denied"
    # each source in a Context of its own, none the caller's
    assert len({id(c) for c in contexts}) == 4
    assert all(c is not ctx for c in contexts)
    # told on the caller's thread, once each
    assert sorted(s for s, _ in told) == sorted(SOURCES)
    assert {t for _, t in told} == {threading.current_thread().name}
    # the notifications `backup SOURCE` sends
    events = {o.source: o.event() for o in report.outcomes}
    assert events["wms"].kind == "backup_succeeded"
    assert events["cache"].kind == "backup_failed"
    assert events["cache"].details["type"] == "redis"
    assert "offsite" in events["inventory"].summary

    summary = report.summary()
    assert summary["totals"] | {"seconds": 0} == {
        "sources": 4,
        "succeeded": 2,
        "failed": 2,
        "stored_size": 300,
        "seconds": 0,
    }
    first = summary["sources"][0]
    assert first["id"] == "wms-1" and first["type"] == "logical" and first["error"] is None
    assert summary["sources"][1]["id"] is None


def test_an_unknown_source_or_bound_is_refused_before_any_backup(ctx: Context) -> None:
    def back_up(own: Context, source: str, options: BackupOptions) -> SourceBackup:
        raise AssertionError("no backup may start")

    with pytest.raises(UsageError, match="unknown source 'ghost'"):
        backup_many(ctx, ["wms", "ghost"], back_up_one=back_up)
    with pytest.raises(UsageError, match="--parallel must be at least 1"):
        backup_many(ctx, ["wms"], parallel=0, back_up_one=back_up)
