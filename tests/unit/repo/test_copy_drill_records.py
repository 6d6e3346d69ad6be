"""`lifeboat copy` takes the drill records along, by key: the evidence travels with the
backups, and the target's prune knows a failed drill. Those of a conflicting backup stay."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from lifeboat.repo import layout
from lifeboat.repo.copy import copy_repository
from lifeboat.repo.drills import read_drills, write_drill
from tests.unit.drill_records import make_record
from tests.unit.helpers import local_repository

from .test_copy import store_backup
from .test_repository import T0

pytestmark = pytest.mark.unit


def test_drill_records_are_copied_once_and_not_those_of_a_conflict(tmp_path: Path) -> None:
    origin, target = local_repository(tmp_path, "primary"), local_repository(tmp_path, "dr")
    kept = store_backup(origin, "wms", 1)
    clashing = store_backup(origin, "wms", 2)
    # the target holds another backup under the clashing id: a conflict, left alone
    other = store_backup(target, "wms", 2)
    target.storage.write(layout.manifest_key("wms", other.id), [b'{"other": true}'])
    target.storage.write(layout.manifest_copy_key("wms", other.id), [b'{"other": true}'])
    passed = make_record(kept.id, T0 + timedelta(days=1), "pass")
    failed = make_record(kept.id, T0 + timedelta(days=2), "fail")
    for record in (passed, failed, make_record(clashing.id, T0 + timedelta(days=1), "pass")):
        write_drill(origin.storage, record)

    [report] = copy_repository(origin, target, ["wms"])
    assert list(report.conflicts) == [clashing.id]
    assert report.drill_records_copied == 2
    assert report.summary()["drill_records_copied"] == 2
    assert read_drills(target.storage, "wms") == [passed, failed]

    [again] = copy_repository(origin, target, ["wms"])
    assert again.drill_records_copied == 0
