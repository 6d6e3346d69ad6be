"""How often backups of Redis, files and SQLite sources are expected: under their own
type (not PostgreSQL's logical), from their own jobs and from the jobs of a group they are
in, else from the retention policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from lifeboat.config.load import load_config
from lifeboat.ops.backup_intervals import backup_intervals
from tests.unit.helpers import AgeKey
from tests.unit.kind_backups import KIND_JOBS, mixed_config

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

JOBS = KIND_JOBS + "[retention]\nkeep_daily = 7\n"


def test_each_kind_is_expected_under_its_own_type(tmp_path: Path, age_key: AgeKey) -> None:
    config = load_config(mixed_config(tmp_path, age_key, JOBS))
    assert backup_intervals(config, "cache", ["redis"], NOW) == {"redis": timedelta(hours=1)}
    # scheduled through its group: the group job's interval, under the member's own type
    assert backup_intervals(config, "media", [], NOW) == {"files": timedelta(days=1)}
    assert backup_intervals(config, "wms", [], NOW) == {"logical": timedelta(days=1)}
    # no job: the retention's shortest tier, for the type it will hold before it holds any
    assert backup_intervals(config, "inventory", [], NOW) == {"sqlite": timedelta(days=1)}
