"""`status` as a health report: each type's newest backup against how often one is
expected, the recovery point against the RPO objective, verification, the spool, and
anomalies; exit 1 with the reasons when a source is unhealthy."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lifeboat.ops.health import anomalies, other_reasons
from lifeboat.repo.manifest import Manifest
from tests.history import HistoryPlan, config_text, write_history
from tests.unit.backups import physical_manifest, stored_entry
from tests.unit.helpers import new_age_key, run

pytestmark = pytest.mark.unit


def backup(hours: int, size: int, minutes: float = 5) -> Manifest:
    manifest = physical_manifest(hours, objects=[stored_entry("base", b"x" * size)])
    return manifest.model_copy(
        update={"finished_at": manifest.started_at + timedelta(minutes=minutes)}
    )


def test_a_backup_much_smaller_or_slower_than_the_ten_before_is_an_anomaly() -> None:
    usual = [backup(hours, 1000 + hours) for hours in range(12)]
    assert anomalies(usual) == []
    assert anomalies([*usual, backup(12, 1010, minutes=9)]) == []
    smaller = anomalies([*usual, backup(12, 400)])
    assert smaller == ["stored 400 bytes, under half the median of the 10 before it (1006)"]
    slower = anomalies([*usual, backup(12, 1010, minutes=11)])
    assert slower == ["took 11 min, over twice the median of the 10 before it (5 min)"]
    # too few before it to tell
    assert anomalies([backup(0, 1000), backup(1, 1000), backup(2, 10)]) == []


def test_a_full_spool_and_an_unreadable_repository_are_reasons() -> None:
    report: dict[str, Any] = {
        "source": "wms",
        "repositories": [
            {"name": "main", "error": None, "verification": {"failing": 0}},
            {"name": "offsite", "error": "access denied", "verification": {"failing": 0}},
        ],
        "rpo": {"breached": False},
        "spool": {"queued": 64, "capacity": 64},
    }
    assert other_reasons(report) == [
        "wms: repository offsite cannot be read: access denied",
        "wms: the WAL spool is full (64 of 64 segments): wal-push uploads synchronously",
    ]


def test_an_old_history_is_overdue_and_past_its_rpo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The history's last day five days ago: daily backups are overdue; once the archive's
    WAL is as old, the recovery point is past the 36 h objective too."""
    last_day = datetime.now(UTC).date() - timedelta(days=5)
    plan = HistoryPlan(days=40, last_day=last_day, drills=0, holds=0, realistic_sizes=False)
    history = write_history(tmp_path / "repositories", plan)
    key = new_age_key(tmp_path)
    config = tmp_path / "lifeboat.toml"
    config.write_text(config_text(history, key.identity_file, key.public))
    assert run(["--config", str(config), "status", "wms", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)[0]
    assert report["healthy"] is False
    assert report["expected_backups"] == {"logical": 86400, "physical": 86400}
    main = report["repositories"][0]
    assert main["backups"]["logical"]["overdue"] and main["backups"]["physical"]["overdue"]
    assert main["backups"]["logical"]["count"] == sum(
        history.kinds[b] == "logical" for b in history.kept[("main", "wms")]
    )
    overdue = [r for r in report["reasons"] if "backup in main finished" in r]
    assert len(overdue) == 2 and all(r.endswith("(expected every 1 d)") for r in overdue)
    assert report["rpo"]["breached"] is False  # the WAL files were just written

    # the archive as old as the history: the newest restorable moment is days old
    old = time.time() - 5 * 86400
    for folder, _, files in os.walk(history.repositories["main"] / "wms" / "wal"):
        for name in files:
            os.utime(Path(folder) / name, (old, old))
    assert run(["--config", str(config), "status", "wms"]) == 1
    captured = capsys.readouterr()
    assert "UNHEALTHY" in captured.out
    assert "over the RPO objective of 1 d 12 h" in captured.err
    assert "newest logical backup in main finished" in captured.err
