"""Write-once records: holds and verification outcomes, read back from a repository."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lifeboat.repo.records import (
    CHECKS_KEPT,
    check_key,
    current_holds,
    hold_key,
    verifications,
    write_record,
)
from lifeboat.storage.memory import MemoryStorage

pytestmark = pytest.mark.unit

START = datetime(2026, 11, 1, tzinfo=UTC)
# a backup id as earlier versions made it, and one as this version makes it
A, B = "20261101T000000Z", "20261102T000000.250000Z-3f9a"


def test_the_newest_verification_decides_and_old_ones_are_superseded() -> None:
    storage = MemoryStorage()
    keys_a = [
        write_record(
            storage, check_key("wms", A, START + timedelta(hours=i), ok=i < 11), {"ok": i < 11}
        )
        for i in range(CHECKS_KEPT + 2)
    ]
    write_record(storage, check_key("wms", B, START, ok=False), {"ok": False})
    write_record(storage, check_key("wms", B, START + timedelta(hours=1), ok=True), {"ok": True})
    found = verifications(storage, "wms")
    assert set(found.failed) == {A}
    assert found.failed[A].startswith("20261101T110000")
    assert found.superseded == keys_a[:2]


def test_a_hold_is_in_force_until_released_or_expired() -> None:
    storage = MemoryStorage()
    now = datetime.now(UTC)
    write_record(
        storage,
        hold_key("wms", A, START, "hold"),
        {"action": "hold", "reason": "recall", "until": None, "by": "x@y", "at": START.isoformat()},
    )
    later = START + timedelta(days=1)
    write_record(storage, hold_key("wms", B, START, "hold"), {"action": "hold", "reason": "r"})
    write_record(storage, hold_key("wms", B, later, "release"), {"action": "release"})
    holds = current_holds(storage, "wms")
    assert set(holds) == {A}
    assert holds[A].active(now) and holds[A].reason == "recall"

    until = (now - timedelta(seconds=1)).isoformat()
    write_record(
        storage,
        hold_key("wms", B, later + timedelta(days=1), "hold"),
        {"action": "hold", "reason": "short", "until": until},
    )
    assert not current_holds(storage, "wms")[B].active(now)
