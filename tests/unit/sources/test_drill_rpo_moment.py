"""The newest moment a physical drill's restored cluster holds, from which its data-loss
window is measured: never missing, so an RPO objective is always judged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lifeboat.sources.postgres.drill_physical import newest_restored

BACKUP_START = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
COMMIT = BACKUP_START + timedelta(hours=5)


def test_the_last_replayed_commit_is_the_newest_moment() -> None:
    assert newest_restored(COMMIT, None, BACKUP_START) == (COMMIT, "last replayed commit")


def test_a_commit_right_after_a_beat_is_the_heartbeat_s_own() -> None:
    beat = COMMIT - timedelta(milliseconds=3)
    assert newest_restored(COMMIT, beat, BACKUP_START) == (COMMIT, "heartbeat")


def test_a_commit_long_after_the_last_beat_is_another_one() -> None:
    beat = COMMIT - timedelta(minutes=10)
    assert newest_restored(COMMIT, beat, BACKUP_START) == (COMMIT, "last replayed commit")


def test_without_a_commit_time_the_beat_tells() -> None:
    beat = COMMIT - timedelta(minutes=10)
    assert newest_restored(None, beat, BACKUP_START) == (beat, "heartbeat")


def test_with_nothing_replayed_the_backup_start_bounds_the_window() -> None:
    # no commit since the backup began: the copy holds at least the backup's start, and a
    # window measured from it is at least the real one, never an unjudged "none"
    assert newest_restored(None, None, BACKUP_START) == (
        BACKUP_START,
        "backup start (no commit replayed)",
    )
