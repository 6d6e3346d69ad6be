"""Every writer that changes a repository or proves something about it appends its event to
the audit chain, naming the record it wrote (memory repositories: the chain's behaviour on
real storage is tests/integration/test_audit_chain.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lifeboat.ops.drill_records import record_drill
from lifeboat.ops.holds import hold, release
from lifeboat.ops.prune import prune
from lifeboat.ops.verify import BackupCheck, _record
from lifeboat.policy.retention import Policy
from lifeboat.repo import audit, layout
from lifeboat.repo.catalog import Repository
from lifeboat.repo.commit import commit
from lifeboat.repo.copy import copy_repository
from lifeboat.repo.objects import Written
from lifeboat.storage.memory import MemoryStorage
from tests.unit.backups import commit_physical, physical_manifest, stored_entry
from tests.unit.drill_records import make_record

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def repository(name: str) -> Repository:
    repo = Repository(name, MemoryStorage(name))
    repo.init()
    return repo


def chain(repo: Repository) -> list[audit.AuditEvent]:
    report, _ = audit.verify_chain(repo.storage)
    assert report.whole, report.problems
    return audit.read_events(repo.storage)


def recorded(repo: Repository, event: audit.AuditEvent) -> bool:
    assert event.record is not None
    return any(info.key == event.record for info in repo.storage.list(event.record))


def test_a_committed_backup_and_its_copy_are_events() -> None:
    main, dr = repository("main"), repository("dr")
    manifest = physical_manifest(1, objects=[stored_entry("base.tar.zst.age", b"data")])
    main.storage.write(layout.object_key("wms", manifest.id, "base.tar.zst.age"), [b"data"])
    commit(manifest, Written(manifest.objects[0], [main], {}), [])
    genesis, backup = chain(main)
    assert genesis.event == "genesis" and genesis.details["repository_id"]
    assert (backup.event, backup.source, backup.backup) == ("backup", "wms", manifest.id)
    assert backup.details["encryption"] == manifest.encryption.method
    assert recorded(main, backup)
    copy_repository(main, dr, ["wms"])
    [_, copied] = chain(dr)
    assert (copied.event, copied.backup, copied.details["from"]) == ("copy", manifest.id, "main")
    assert recorded(dr, copied)


def test_holds_releases_and_verifications_are_events() -> None:
    repo = repository("main")
    manifest = commit_physical(repo, 1)
    hold(repo, manifest, "litigation", None)
    release(repo, manifest, "settled")
    _record(repo, BackupCheck("main", "wms", manifest.id, deep=False, problems=["bad"]))
    events = chain(repo)[1:]
    assert [e.event for e in events] == ["hold", "release", "verify"]
    assert events[0].details["reason"] == "litigation"
    assert events[2].details == {"ok": False, "deep": False, "problems": ["bad"]}
    assert all(recorded(repo, e) for e in events)


def test_each_pruned_backup_is_an_event_with_its_rule() -> None:
    repo = repository("main")
    manifests = [commit_physical(repo, hours) for hours in (1, 2, 3)]
    report = prune(repo, "wms", Policy(keep_last=1), "UTC", dry_run=False)
    events = [e for e in chain(repo) if e.event == "prune"]
    assert [e.backup for e in events] == [m.id for m in manifests[:2]] == report.deleted
    assert all(e.details["decision"] == "delete" and e.details["reasons"] for e in events)
    assert all(e.record in report.audit for e in events)


def test_a_drill_is_an_event_in_every_repository_it_is_recorded_in() -> None:
    main, dr = repository("main"), repository("dr")
    record = make_record("20261130T000000Z-abcdef", NOW - timedelta(days=1))
    record_drill([main, dr], record)
    for repo in (main, dr):
        [_, drill] = chain(repo)
        assert (drill.event, drill.details["drill_id"]) == ("drill", record.drill_id)
        assert recorded(repo, drill)


def test_a_backup_encrypted_to_other_recipients_is_a_key_change() -> None:
    repo = repository("main")
    commit_physical(repo, 1)  # saved without commit(): the backup the next is compared with
    data = b"data"
    for hours, recipients in ((2, []), (3, [{"type": "age", "id": "age1new"}])):
        manifest = physical_manifest(hours, objects=[stored_entry("base.tar.zst.age", data)])
        manifest.encryption.recipients = recipients
        repo.storage.write(layout.object_key("wms", manifest.id, "base.tar.zst.age"), [data])
        commit(manifest, Written(manifest.objects[0], [repo], {}), [])
    events = chain(repo)[1:]
    assert [e.event for e in events] == ["backup", "backup", "key"]
    key = events[-1]
    assert key.backup == manifest.id and key.details["previous_recipients"] == []
    assert key.details["recipients"] == [{"type": "age", "id": "age1new"}]
    assert key.details["previous_backup"] == layout.sorted_ids(repo.committed_ids("wms"))[1]


def test_a_changed_configuration_is_a_config_event() -> None:
    repo = repository("main")
    for fingerprint in ("a" * 64, "a" * 64, "b" * 64, "a" * 64):
        audit.note_config(repo.storage, fingerprint, "wms")
    events = chain(repo)[1:]
    assert [(e.event, e.details["fingerprint"], e.details["previous"]) for e in events] == [
        ("config", "a" * 64, None),
        ("config", "b" * 64, "a" * 64),
        ("config", "a" * 64, "b" * 64),  # back to an earlier one is a change too
    ]


def test_an_event_can_carry_the_time_it_happened() -> None:
    """What a history written afterwards (tests/history.py) needs: the times of history
    in the chain, the genesis included, each linked as append links it."""
    main = repository("main")
    then = datetime(2019, 12, 1, 3, 4, 5, 678901, tzinfo=UTC)
    appended = audit.append(main.storage, "config", source="wms", at=then)
    noted = audit.note_config(main.storage, "f" * 64, "wms", at=then + timedelta(days=1))
    assert noted is not None
    genesis, first, second = chain(main)
    assert (genesis.at, first, second) == (then, appended, noted)
    assert second.at == then + timedelta(days=1) and second.prev == first.hash
    following = audit.next_event(second, "verify", at=then + timedelta(days=2))
    rival = audit.next_event(second, "drill", at=then + timedelta(days=2))
    assert audit.write_event(main.storage, following)
    assert not audit.write_event(main.storage, rival)  # its sequence number is taken
    assert chain(main)[-1] == following
