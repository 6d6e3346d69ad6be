"""Retention counts the backups of each kind it is given on its own, whatever the kinds are:
kinds no source makes yet are kept by the same policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lifeboat.policy.retention import Backup, Decision, Policy, decide
from lifeboat.repo.manifest import kind_name

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


def backup(kind: str, hours_ago: int, wal_base: bool = False) -> Backup:
    started = NOW - timedelta(hours=hours_ago)
    return Backup(
        id=f"{started:%Y%m%dT%H%M%S}Z-{kind}",
        kind=kind,
        started_at=started,
        wal_base=wal_base,
    )


def kept(decisions: list[Decision]) -> set[str]:
    return {d.backup.id for d in decisions if d.keep}


def test_each_kind_keeps_its_own_last_backups() -> None:
    backups = [
        backup(kind, hours) for hours in range(1, 6) for kind in ("redis", "files", "sqlite")
    ]
    decisions = decide(backups, Policy(keep_last=2), NOW, UTC)
    assert kept(decisions) == {
        backup(kind, hours).id for kind in ("redis", "files", "sqlite") for hours in (1, 2)
    }
    newest = {d.backup.kind: d.explanation[0] for d in decisions if "newest" in d.rules}
    assert newest == {
        "redis": "the newest good redis backup",
        "files": "the newest good files backup",
        "sqlite": "the newest good sqlite backup",
    }


def test_a_new_kind_does_not_take_the_place_of_another_kinds_backups() -> None:
    logical = [backup("logical", hours) for hours in (30, 40)]
    redis = [backup("redis", hours) for hours in (1, 2, 3)]
    decisions = decide([*logical, *redis], Policy(keep_last=1), NOW, UTC)
    assert kept(decisions) == {logical[0].id, redis[0].id}


def test_the_pitr_window_keeps_bases_of_any_kind_and_only_bases() -> None:
    # a future kind with point-in-time recovery, and one without
    bases = [backup("redis", hours, wal_base=True) for hours in (10, 50, 90)]
    plain = [backup("files", hours) for hours in (10, 50, 90)]
    decisions = decide([*bases, *plain], Policy(pitr_window=timedelta(hours=48)), NOW, UTC)
    pitr = {d.backup.id for d in decisions if "pitr" in d.rules}
    assert pitr == {bases[1].id}, "the newest base that started before the window's start"
    assert kept(decisions) == {bases[0].id, bases[1].id, plain[0].id}


def test_kinds_are_named_as_people_read_them() -> None:
    assert kind_name("postgres-logical") == "logical"
    assert kind_name("postgres-physical") == "physical"
    assert kind_name("redis") == "redis"
