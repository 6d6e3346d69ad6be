"""tests/history.py writes what Lifeboat itself would have written: a short history (90 days,
two drills, two holds) is read back by the commands and the functions that read real
repositories (the seven-year one is bench/bench_report.py's)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from lifeboat.ops.prune import plan as prune_plan
from lifeboat.repo import audit, layout
from lifeboat.repo.catalog import Repository
from lifeboat.repo.drills import read_drills
from lifeboat.repo.records import current_holds
from lifeboat.storage.local import LocalStorage
from tests.history import History, HistoryPlan, config_text, write_history
from tests.unit.helpers import new_age_key, run

pytestmark = pytest.mark.unit

PLAN = HistoryPlan(days=90, drills=2, holds=2, realistic_sizes=False)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[History, Path]:
    folder = tmp_path_factory.mktemp("history")
    history = write_history(folder / "repositories", PLAN)
    key = new_age_key(folder)
    config = folder / "lifeboat.toml"
    config.write_text(config_text(history, key.identity_file, key.public))
    return history, config


def repository(history: History, name: str) -> Repository:
    return Repository(name, LocalStorage(history.repositories[name]))


def test_the_audit_chains_verify_and_hold_the_times_of_history(
    written: tuple[History, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    history, config = written
    assert run(["--config", str(config), "audit", "verify", "--json"]) == 0
    reports = {r["repository"]: r for r in json.loads(capsys.readouterr().out)}
    assert {name: r["events"] for name, r in reports.items()} == history.events
    assert all(r["whole"] for r in reports.values())
    events = audit.read_events(repository(history, "main").storage)
    first = datetime.combine(PLAN.first_day, time(), ZoneInfo(PLAN.zone))
    last = datetime.combine(PLAN.last_day + timedelta(days=1), time(), ZoneInfo(PLAN.zone))
    assert all(first <= e.at < last for e in events)
    assert [e.at for e in events] == sorted(e.at for e in events)
    kinds = Counter(e.event for e in events)
    assert kinds["backup"] == len(history.created["wms"])
    assert kinds["prune"] == sum(p.repository == "main" for p in history.pruned)
    assert (kinds["drill"], kinds["hold"], kinds["release"]) == (2, 2, 1)
    assert kinds["verify"] > 0 and kinds["config"] == 2 and kinds["genesis"] == 1
    copies = Counter(e.event for e in audit.read_events(repository(history, "offsite").storage))
    assert copies["copy"] == len(history.created["wms"])


def test_list_shows_the_kept_backups_and_verify_finds_them_whole(
    written: tuple[History, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    history, config = written
    assert run(["--config", str(config), "list", "--json"]) == 0
    listed: dict[tuple[str, str], list[str]] = {}
    for backup in json.loads(capsys.readouterr().out):
        listed.setdefault((backup["repository"], backup["source"]), []).append(backup["id"])
    assert listed == history.kept
    pruned = {p.backup for p in history.pruned}
    assert pruned and not pruned & {b for ids in listed.values() for b in ids}
    assert run(["--config", str(config), "verify", "--repo", "main"]) == 0


def test_the_prune_deletions_follow_the_policy(written: tuple[History, Path]) -> None:
    """Lifeboat's own prune, planned from what the history left on disk at its last prune,
    deletes nothing more: what is left is what the policy keeps (holds, verifications and
    drills read back from their records); every deletion explained by no rule."""
    history, _ = written
    zone = ZoneInfo(PLAN.zone)
    last_prune = max(p.at for p in history.pruned)
    assert last_prune.astimezone(zone).date() == PLAN.last_day
    for name in history.repositories:
        planned = prune_plan(repository(history, name), "wms", PLAN.policy, PLAN.zone, last_prune)
        assert [d.backup.id for d in planned.to_delete] == []
        assert {d.backup.id for d in planned.decisions} == set(history.kept[(name, "wms")])
    for deleted in history.pruned:
        assert deleted.rules == ["kept by no rule"] or "counted by no rule" in deleted.rules[0]
    main = repository(history, "main").storage
    # the newest logical backup of each of the last keep_daily days is kept
    logical = [b for b in history.created["wms"] if history.kinds[b] == "logical"]
    newest_of_day = {layout.backup_time(b).astimezone(zone).date(): b for b in logical}
    last_days = sorted(newest_of_day)[-PLAN.policy.keep_daily :]
    assert len(last_days) == PLAN.policy.keep_daily
    assert {newest_of_day[d] for d in last_days} <= set(history.kept[("main", "wms")])
    assert set(current_holds(main, "wms")) <= set(history.kept[("main", "wms")])


def test_the_drills_read_back_as_written(written: tuple[History, Path]) -> None:
    history, _ = written
    for name in history.repositories:
        records = read_drills(repository(history, name).storage, "wms")
        assert [r.to_json() for r in records] == [r.to_json() for r in history.drills]


def test_the_same_seed_writes_the_same_history(tmp_path: Path) -> None:
    short = HistoryPlan(days=20, drills=1, holds=1, offsite=False)
    first = write_history(tmp_path / "first", short)
    again = write_history(tmp_path / "again", short)
    assert first.kept == again.kept and first.created == again.created
    assert [r.to_json() for r in first.drills] == [r.to_json() for r in again.drills]
    with pytest.raises(FileExistsError):
        write_history(tmp_path / "first", short)
