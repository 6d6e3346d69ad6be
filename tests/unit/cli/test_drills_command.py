"""What the command line shows of drill records written directly into the repositories:
`drills` (history and summary), the newest drill in `list` and `show`, and in `status` the
newest drill, the newest pass and an overdue drill as a problem."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lifeboat.repo.catalog import Repository
from lifeboat.repo.drills import write_drill
from lifeboat.repo.manifest import Manifest
from lifeboat.storage.local import LocalStorage
from tests.unit.drill_records import make_record, write_drills_config
from tests.unit.helpers import one_error_line, run
from tests.unit.repo.test_repository import make_manifest

pytestmark = pytest.mark.unit

NOW = datetime.now(UTC)
DAY = timedelta(days=1)
SLOW = "RTO 5h33m20s exceeds the objective 4h00m: the restore took longer than allowed"


def setup(tmp_path: Path, drill_every: str | None = "92d") -> tuple[Path, Manifest, Manifest]:
    """Two backups in main; the older passed a drill 100 days ago, the newer passed one 3
    days ago and failed one (too slow, and a check) a day ago."""
    config = write_drills_config(tmp_path, drill_every)
    main = Repository("main", LocalStorage(tmp_path / "main"))
    older, newer = make_manifest(when=NOW - 120 * DAY), make_manifest(when=NOW - 4 * DAY)
    for manifest in (older, newer):
        main.save_manifest(manifest)
    write_drill(main.storage, make_record(older.id, NOW - 100 * DAY, "pass", rto_seconds=60.0))
    write_drill(main.storage, make_record(newer.id, NOW - 3 * DAY, "pass", rto_seconds=120.0))
    write_drill(
        main.storage,
        make_record(newer.id, NOW - DAY, "fail", rto_seconds=20000.0, reasons=[SLOW, "a check"]),
    )
    return config, older, newer


def test_drills_prints_the_history_and_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, older, newer = setup(tmp_path)
    assert run(["--config", str(config), "drills", "wms"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    rows = [line for line in lines if older.id in line or newer.id in line]
    assert [older.id in rows[0], newer.id in rows[1], newer.id in rows[2]] == [True] * 3
    assert "pass" in rows[0] and "1m00s" in rows[0] and "2/2" in rows[0]
    assert "fail" in rows[2] and "5h33m" in rows[2] and "1/2" in rows[2]
    assert "RTO 5h33m20s exceeds" in rows[2] and "(+1" in out
    assert lines[-1] == (
        "wms: 3 drills, 2 passed (67%); RTO median 2m00s, max 5h33m (of 3 drills, any "
        f"verdict); newest pass {NOW - 3 * DAY:%Y-%m-%d} (backup {newer.id}); "
        "drill every 92d: on time"
    )


def test_drills_json_has_every_record_and_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, older, newer = setup(tmp_path)
    # the copy target holds the newest drill too: it is listed once
    offsite = Repository("offsite", LocalStorage(tmp_path / "offsite"))
    offsite.save_manifest(newer)
    write_drill(
        offsite.storage,
        make_record(newer.id, NOW - DAY, "fail", rto_seconds=20000.0, reasons=[SLOW, "a check"]),
    )
    assert run(["--config", str(config), "drills", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [r["backup"] for r in document["records"]] == [older.id, newer.id, newer.id]
    assert [r["verdict"] for r in document["records"]] == ["pass", "pass", "fail"]
    summary = document["summary"]["wms"]
    assert (summary["drills"], summary["passed"], summary["overdue"]) == (3, 2, False)
    assert (summary["rto_median_s"], summary["rto_max_s"], summary["rto_of"]) == (
        120.0,
        20000.0,
        3,
    )
    assert summary["newest_pass"]["backup"] == newer.id
    assert document["unreadable_repositories"] == {}


def test_drills_without_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_drills_config(tmp_path, drill_every=None)
    assert run(["--config", str(config), "drills"]) == 0
    assert capsys.readouterr().out == "wms: no drills recorded\n"


def test_drills_of_an_unknown_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_drills_config(tmp_path)
    assert run(["--config", str(config), "drills", "crm"]) == 2
    assert "unknown source 'crm'" in one_error_line(capsys.readouterr().err)


def test_drills_names_an_unreadable_repository_after_the_others(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, older, newer = setup(tmp_path)
    offsite = Repository("offsite", LocalStorage(tmp_path / "offsite"))
    write_drill(offsite.storage, make_record(newer.id, NOW - DAY, "fail"))
    shutil.rmtree(tmp_path / "main")
    assert run(["--config", str(config), "drills", "wms"]) == 1
    out, err = capsys.readouterr()
    assert newer.id in out and older.id not in out
    line = one_error_line(err.splitlines()[-1] + "\n")
    assert "repository main cannot be read" in line and "the drills of the others" in line


def test_list_and_show_give_each_backups_newest_drill(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, older, newer = setup(tmp_path)
    assert run(["--config", str(config), "list", "--repo", "main"]) == 0
    out = capsys.readouterr().out
    [older_row] = [line for line in out.splitlines() if older.id in line]
    [newer_row] = [line for line in out.splitlines() if newer.id in line]
    assert f"pass {NOW - 100 * DAY:%Y-%m-%d}" in older_row
    assert f"fail {NOW - DAY:%Y-%m-%d}" in newer_row

    assert run(["--config", str(config), "list", "--json"]) == 0
    listed = {b["id"]: b["drill"] for b in json.loads(capsys.readouterr().out)}
    assert listed[older.id] == {"verdict": "pass", "at": (NOW - 100 * DAY).isoformat()}
    assert listed[newer.id]["verdict"] == "fail"

    assert run(["--config", str(config), "show", newer.id]) == 0
    assert f"newest drill: fail, started {NOW - DAY:%Y-%m-%d %H:%M} UTC" in capsys.readouterr().out
    assert run(["--config", str(config), "show", older.id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["drill"]["verdict"] == "pass"


def test_show_a_backup_never_drilled(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_drills_config(tmp_path)
    manifest = make_manifest(when=NOW - DAY)
    Repository("main", LocalStorage(tmp_path / "main")).save_manifest(manifest)
    assert run(["--config", str(config), "show", manifest.id]) == 0
    assert "newest drill: none" in capsys.readouterr().out
    assert run(["--config", str(config), "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["drill"] is None


def test_status_shows_the_newest_drill_and_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, _, newer = setup(tmp_path)
    # the newest drill of a kept backup failed: shown, and a problem for monitoring
    assert run(["--config", str(config), "status", "--json"]) == 1
    [report] = json.loads(capsys.readouterr().out)
    drills = report["drills"]
    assert (drills["newest"]["verdict"], drills["newest"]["backup"]) == ("fail", newer.id)
    assert drills["newest_pass"]["backup"] == newer.id
    assert (drills["drill_every"], drills["overdue"]) == ("92d", False)
    assert drills["failing"] == [newer.id]
    assert run(["--config", str(config), "status"]) == 1
    out, err = capsys.readouterr()
    assert f"fail, backup {newer.id}, started 1.0d ago" in out
    assert "newest pass" in out and "every 92d, next by" in out
    assert f"newest restore drill failed for wms/{newer.id}" in one_error_line(err)


def test_status_calls_an_overdue_drill_a_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, _, _ = setup(tmp_path, drill_every="30d")
    run(["--config", str(config), "status"])
    # passed 3 days ago: on time (the exit is for the failed drill of the setup)
    assert "OVERDUE" not in capsys.readouterr().out
    config, _, _ = setup(tmp_path / "late", drill_every="2d")
    assert run(["--config", str(config), "status"]) == 1
    out, err = capsys.readouterr()
    assert "OVERDUE (every 2d)" in out
    line = one_error_line(err)
    assert f"restore drill overdue for wms (newest pass {NOW - 3 * DAY:%Y-%m-%d}" in line
    assert run(["--config", str(config), "status", "--json"]) == 1
    out, _ = capsys.readouterr()
    assert json.loads(out)[0]["drills"]["overdue"] is True


def test_status_with_drill_every_and_no_drill_is_overdue(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_drills_config(tmp_path, drill_every="92d")
    assert run(["--config", str(config), "status"]) == 1
    out, err = capsys.readouterr()
    assert re.search(r"newest drill +│ none", out) and re.search(r"newest pass +│ none", out)
    assert "no drill passed yet, drill every 92d" in one_error_line(err)
    config = write_drills_config(tmp_path / "none", drill_every=None)
    assert run(["--config", str(config), "status"]) == 0
