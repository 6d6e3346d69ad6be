"""Drill records in one repository: their keys, written once, read back oldest first, the
newest verdict of each backup from the keys alone."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from lifeboat.errors import RepositoryError
from lifeboat.repo.drills import (
    DrillVerdict,
    drill_entries,
    drill_key,
    drills_prefix,
    newest_verdicts,
    parse_drill_key,
    read_drills,
    write_drill,
)
from lifeboat.storage.base import Storage
from lifeboat.storage.local import LocalStorage
from lifeboat.storage.memory import MemoryStorage
from tests.unit.drill_records import make_record

pytestmark = pytest.mark.unit

START = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
# a backup id as earlier versions made it, and one as this version makes it
A, B = "20261101T000000Z", "20261102T000000.250000Z-3f9a"


@pytest.fixture(params=["memory", "local"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    return MemoryStorage() if request.param == "memory" else LocalStorage(tmp_path / "repo")


def test_the_key_names_source_backup_start_and_verdict() -> None:
    key = drill_key("wms", A, START, "fail", drill_id="d-1")
    assert key.startswith(f"wms/drills/{A}/20261101T020000.000000Z-")
    assert key.endswith("-fail.json")
    assert key == drill_key("wms", A, START, "fail", drill_id="d-1")  # one key per drill
    assert key != drill_key("wms", A, START, "fail", drill_id="d-2")
    # without a drill id, two keys of one moment still differ
    assert drill_key("wms", A, START, "pass") != drill_key("wms", A, START, "pass")
    entry = parse_drill_key(key)
    assert entry is not None
    assert (entry.source, entry.backup, entry.at, entry.verdict) == ("wms", A, START, "fail")
    assert drills_prefix("wms", A) == f"wms/drills/{A}/"


def test_a_moment_in_another_zone_is_keyed_in_utc() -> None:
    moment = datetime(2026, 11, 1, 5, 0, tzinfo=timezone(timedelta(hours=2)))
    entry = parse_drill_key(drill_key("wms", A, moment, "pass"))
    assert entry is not None and entry.at == datetime(2026, 11, 1, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "key",
    [
        f"wms/drills/{A}/notes.txt",
        f"wms/drills/{A}/20261101T020000.000000Z-abcdef-maybe.json",
        f"wms/drills/{A}/20261301T020000.000000Z-abcdef-pass.json",
        f"wms/drills/{A}/20261101T020000.000000Z-abcdef-pass.json.tmp-0123abcd",
        "wms/drills/not-a-backup/20261101T020000.000000Z-abcdef-pass.json",
        f"wms/checks/{A}/20261101T020000.000000Z-abcdef-pass.json",
        f"wms/drills/{A}/x/20261101T020000.000000Z-abcdef-pass.json",
    ],
)
def test_other_keys_are_not_drill_records(key: str) -> None:
    assert parse_drill_key(key) is None


def test_a_record_is_written_once_and_read_back(storage: Storage) -> None:
    record = make_record(A, START, "fail", reasons=["check failed: every lot has a QC decision"])
    key = write_drill(storage, record)
    assert key == drill_key("wms", A, START, "fail", drill_id=record.drill_id)
    assert write_drill(storage, record) == key  # the same record again: nothing changes
    [back] = read_drills(storage, "wms")
    assert back == record
    assert back.to_json() == record.to_json()

    other = make_record(A, START, "fail", drill_id=record.drill_id, rto_seconds=1.0)
    with pytest.raises(RepositoryError, match="holds another drill record"):
        write_drill(storage, other)
    assert read_drills(storage, "wms") == [record]  # the first stays


def test_records_come_back_oldest_first_per_source_and_backup(storage: Storage) -> None:
    later = make_record(A, START + timedelta(days=2), "pass")
    earlier = make_record(A, START, "fail")
    of_b = make_record(B, START + timedelta(days=1), "pass")
    elsewhere = make_record(A, START, "pass", source="crm")
    for record in (later, earlier, of_b, elsewhere):
        write_drill(storage, record)
    assert read_drills(storage, "wms") == [earlier, of_b, later]
    assert read_drills(storage, "wms", A) == [earlier, later]
    assert read_drills(storage, "crm") == [elsewhere]
    assert read_drills(storage, "sales") == []
    assert [e.verdict for e in drill_entries(storage, "wms")] == ["fail", "pass", "pass"]


def test_an_unreadable_body_is_skipped_with_a_warning(
    storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    good = make_record(A, START, "pass")
    write_drill(storage, good)
    not_json = drill_key("wms", A, START + timedelta(hours=1), "pass")
    storage.write(not_json, [b"{truncated"])
    not_a_record = drill_key("wms", A, START + timedelta(hours=2), "fail")
    storage.write(not_a_record, [b'{"drill_id": "x"}'])
    with caplog.at_level(logging.WARNING, logger="lifeboat"):
        assert read_drills(storage, "wms") == [good]
    warned = caplog.text
    assert not_json in warned and not_a_record in warned


def test_the_newest_drill_of_each_backup_decides_from_the_keys_alone() -> None:
    storage = MemoryStorage()
    write_drill(storage, make_record(A, START, "pass"))
    write_drill(storage, make_record(A, START + timedelta(days=1), "fail"))
    write_drill(storage, make_record(B, START, "fail"))
    write_drill(storage, make_record(B, START + timedelta(days=1), "pass"))
    # bodies that cannot be read change nothing: the verdict is in the key
    for key in list(storage.objects):
        storage.write(key, [b"unreadable"])
    assert newest_verdicts(storage, "wms") == {
        A: DrillVerdict("fail", START + timedelta(days=1)),
        B: DrillVerdict("pass", START + timedelta(days=1)),
    }
    assert newest_verdicts(storage, "crm") == {}


def test_a_time_written_without_offset_is_read_as_utc() -> None:
    storage = MemoryStorage()
    aware = make_record(A, START, "pass")
    naive = make_record(A, START + timedelta(hours=1), "pass")
    write_drill(storage, aware)
    key = drill_key("wms", A, naive.started_at, "pass", drill_id=naive.drill_id)
    body = naive.to_json()
    body["started_at"] = naive.started_at.replace(tzinfo=None).isoformat()
    body["finished_at"] = naive.finished_at.replace(tzinfo=None).isoformat()
    storage.write(key, [json.dumps(body).encode()])
    assert read_drills(storage, "wms") == [aware, naive]
