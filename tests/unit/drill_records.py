"""Drill records made without a server, for the unit tests of what writes and reads them."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from lifeboat.pipeline.crypto import generate_age_identity
from lifeboat.repo.drills import CheckResult, DrillRecord, Phase, TableComparison, Verdict
from lifeboat.storage.local import LocalStorage
from tests.unit.helpers import initialised


def make_record(
    backup: str,
    started_at: datetime,
    verdict: Verdict = "pass",
    *,
    source: str = "wms",
    drill_id: str | None = None,
    rto_seconds: float | None = 90.0,
    reasons: list[str] | None = None,
) -> DrillRecord:
    """A logical drill of backup that started at started_at and took its RTO plus a minute."""
    took = timedelta(seconds=(rto_seconds or 0.0) + 60)
    return DrillRecord(
        drill_id=drill_id or f"drill-{started_at:%Y%m%dT%H%M%S%f}-{backup}",
        source=source,
        backup=backup,
        kind="logical",
        picked="latest",
        target="scratch PostgreSQL 17",
        depth="standard",
        started_at=started_at,
        finished_at=started_at + took,
        verdict=verdict,
        reasons=reasons if reasons is not None else ([] if verdict == "pass" else ["a check"]),
        phases=[Phase("fetch", 10.0), Phase("restore", 70.0), Phase("checks", 10.0)],
        rto_seconds=rto_seconds,
        rpo_seconds=3600.0,
        rpo_method="snapshot",
        recovered_to=None,
        objectives={"rto_seconds": 14400.0, "rpo_seconds": None},
        checks=[
            CheckResult("every lot has a QC decision", verdict == "pass", "true", 0.5, "wms"),
            CheckResult("recent production recorded", True, "true", 0.2, "wms"),
        ],
        tables=[TableComparison("wms.public.lots", 1200, 1200)],
        postgres_version="17.2",
        lifeboat_version="0.1.0",
        host="drills.internal",
        operator="auditor",
    )


def write_drills_config(folder: Path, drill_every: str | None = "92d") -> Path:
    """folder/lifeboat.toml: the source wms writing to the repository main (folder/main), and
    a copy target offsite (folder/offsite) it does not write to, both initialised; the spool
    in folder/spool; objectives.drill_every as given."""
    for name in ("main", "offsite"):
        initialised(name, LocalStorage(folder / name))
    objectives = f'[sources.wms.objectives]\ndrill_every = "{drill_every}"\n' if drill_every else ""
    config = folder / "lifeboat.toml"
    config.write_text(
        f'[repositories.main]\nurl = "file://{folder / "main"}"\n'
        f'[repositories.offsite]\nurl = "file://{folder / "offsite"}"\n'
        f'[encryption]\nage_recipients = ["{generate_age_identity()[1]}"]\n'
        '[sources.wms]\ntype = "postgres"\ndsn = "postgresql://backup@db.internal:5432/wms"\n'
        'repositories = ["main"]\n'
        f'[sources.wms.archive]\nspool_dir = "{folder / "spool"}"\n'
        f"{objectives}"
        '[logging]\nformat = "plain"\n',
        encoding="utf-8",
    )
    return config
