"""`lifeboat prune`: apply a source's retention policy to one repository, WAL included.

The decisions come from retention.decide (policy/, pure). Applying them takes the source's lock, so
no backup or copy of the source runs meanwhile, and deletes each backup manifest first:
from that moment the backup is no longer listed, and whatever of it is left (after a kill)
is an uncommitted folder that the next prune (or backup) removes. WAL goes last, after the
backups that needed it. Every applied prune writes an audit record before it deletes
anything (the plan) and one when it is done (what was deleted).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from lifeboat.errors import UsageError
from lifeboat.ops.holds import backup_keys, set_object_legal_holds
from lifeboat.policy.retention import (
    Backup,
    Decision,
    Policy,
    decide,
    merged_policy,
    policy_summary,
)
from lifeboat.policy.wal_expiry import expire_wal
from lifeboat.repo import audit, layout
from lifeboat.repo.catalog import Repository
from lifeboat.repo.drills import unproved_backups
from lifeboat.repo.manifest import Manifest, kind_name
from lifeboat.repo.records import (
    actor,
    audit_key,
    checks_prefix,
    current_holds,
    verifications,
    write_record,
)
from lifeboat.repo.wal_files import archived_files
from lifeboat.storage.base import NotFound, Storage
from lifeboat.storage.capabilities import object_locking, tiering
from lifeboat.wal.archive import stream_partials

log = logging.getLogger(__name__)


@dataclass
class WalPlan:
    boundary: str | None = None  # oldest segment kept
    keys: list[str] = field(default_factory=list)  # archive and stream objects to delete
    names: list[str] = field(default_factory=list)  # their WAL file names


@dataclass
class PruneReport:
    repository: str
    source: str
    policy: dict[str, object]
    decisions: list[Decision]
    wal: WalPlan
    applied: bool = False
    deleted: list[str] = field(default_factory=list)
    wal_deleted: int = 0
    leftovers_removed: list[str] = field(default_factory=list)
    uploads_removed: list[str] = field(default_factory=list)  # keys of unfinished uploads
    audit: list[str] = field(default_factory=list)
    expired_holds: set[str] = field(default_factory=set)
    superseded_checks: list[str] = field(default_factory=list)
    held_meanwhile: list[str] = field(default_factory=list)  # held after the plan: kept
    retagged: dict[str, str] = field(default_factory=dict)  # backup id -> its new tier tag
    checks_trimmed: int = 0
    manifests: dict[str, Manifest] = field(default_factory=dict)

    @property
    def to_delete(self) -> list[Decision]:
        return [d for d in self.decisions if not d.keep]

    def summary(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "source": self.source,
            "policy": self.policy,
            "dry_run": not self.applied,
            "backups": [decision_summary(d) for d in self.decisions],
            "delete": layout.sorted_ids(d.backup.id for d in self.to_delete),
            "deleted": self.deleted,
            "wal": {
                "oldest_kept": self.wal.boundary,
                "expired": len(self.wal.names),
                "first_expired": self.wal.names[0] if self.wal.names else None,
                "last_expired": self.wal.names[-1] if self.wal.names else None,
                "deleted": self.wal_deleted,
            },
            "held_meanwhile": self.held_meanwhile,
            "retagged": self.retagged,
            "leftovers_removed": self.leftovers_removed,
            "unfinished_uploads_removed": self.uploads_removed,
            "verification_records_trimmed": self.checks_trimmed,
            "audit_records": self.audit,
        }


def decision_summary(decision: Decision) -> dict[str, Any]:
    backup = decision.backup
    return {
        "id": backup.id,
        "type": backup.kind,
        "started_at": backup.started_at.isoformat(),
        "decision": "keep" if decision.keep else "delete",
        "rules": decision.rules,
        "reasons": decision.explanation,
        "verification_failed": backup.verification_failed,
        "drill_failed": backup.drill_failed,
        "safety": backup.safety_before is not None,
        "held": backup.held,
        "tier": decision.tier if decision.keep else None,
    }


def policy_for(config: Any, source: str, repository: str) -> tuple[Policy, str]:
    layers = [
        config.retention,
        config.sources[source].retention if source in config.sources else None,
        config.repositories[repository].retention if repository in config.repositories else None,
    ]
    resolved = merged_policy(layers)
    if resolved is None:
        raise UsageError(
            f"no retention policy for source {source}: add a [retention] table "
            "(or [sources.NAME.retention]) with keep_last, keep_daily... (see docs/retention.md)"
        )
    return resolved


def plan(
    repo: Repository, source: str, policy: Policy, zone_name: str, now: datetime
) -> PruneReport:
    manifests = {m.id: m for m in repo.list_backups(source)}
    holds = current_holds(repo.storage, source)
    checks = verifications(repo.storage, source)
    failed = checks.failed
    unproved = unproved_backups(repo.storage, source)
    backups = [
        Backup(
            id=m.id,
            kind=kind_name(m.kind),
            started_at=m.started_at,
            parent=m.physical.parent if m.physical else None,
            verification_failed=m.id in failed,
            drill_failed=m.id in unproved,
            held=m.id in holds and holds[m.id].active(now),
            safety_before=safety_before(m),
            wal_base=m.physical is not None,
        )
        for m in manifests.values()
    ]
    zone = ZoneInfo(zone_name)
    decisions = decide(backups, policy, now, zone)
    # the legal holds of an expired hold are Lifeboat's own: prune releases them
    expired_holds = {backup for backup, held in holds.items() if not held.active(now)}
    candidates = [manifests[d.backup.id] for d in decisions if not d.keep]
    locks = _object_lock_until(repo.storage, candidates, expired_holds)
    if locks:
        backups = [replace(b, locked_until=locks[b.id]) if b.id in locks else b for b in backups]
        decisions = decide(backups, policy, now, zone)
    kept_physical = [manifests[d.backup.id] for d in decisions if d.keep and d.backup.wal_base]
    return PruneReport(
        repository=repo.name,
        source=source,
        policy=policy_summary(policy, zone_name),
        decisions=decisions,
        wal=_wal_plan(repo.storage, source, kept_physical),
        superseded_checks=checks.superseded,
        expired_holds=expired_holds,
        manifests=manifests,
    )


def safety_before(manifest: Manifest) -> str | None:
    """What a restore's safety backup was taken before, for prune's reasons; None for any
    other backup."""
    if not manifest.safety:
        return None
    restored = manifest.labels.get("before_restore_of", "an unknown backup")
    return f"restore of {restored} into {manifest.labels.get('database', manifest.database)}"


def _object_lock_until(
    storage: Storage, manifests: list[Manifest], own_legal_holds: set[str]
) -> dict[str, datetime]:
    """The latest Object Lock retain-until (or a legal hold, as far in the future as can be,
    unless it is one of own_legal_holds) among each backup's objects, where the storage has
    Object Lock."""
    locking = object_locking(storage)
    if locking is None:
        return {}
    found: dict[str, datetime] = {}
    for manifest in manifests:
        for key in backup_keys(manifest):
            try:
                until, legal_hold = locking.object_lock_state(key)
            except NotFound:
                continue
            if legal_hold and manifest.id not in own_legal_holds:
                until = datetime.max.replace(tzinfo=UTC)
            if until is not None:
                found[manifest.id] = max(until, found.get(manifest.id, until))
    return found


def _wal_plan(storage: Storage, source: str, kept_physical: list[Manifest]) -> WalPlan:
    spans = [m.physical for m in kept_physical if m.physical is not None]
    if not spans:
        return WalPlan()
    by_name: dict[str, list[str]] = {}
    for archived in archived_files(storage, source):
        by_name.setdefault(archived.name, []).append(archived.key)
    for partial in stream_partials(storage, source):
        by_name.setdefault(partial.segment + ".partial", []).append(partial.key)
    expiry = expire_wal(by_name, [span.start_wal for span in spans], spans[0].segment_size)
    keys = [key for name in expiry.expired for key in by_name[name]]
    return WalPlan(expiry.boundary, sorted(keys), expiry.expired)


def prune(
    repo: Repository,
    source: str,
    policy: Policy,
    zone_name: str,
    dry_run: bool,
    now: datetime | None = None,
) -> PruneReport:
    repo.ensure_initialised()
    if dry_run:
        return plan(repo, source, policy, zone_name, now or datetime.now(UTC))
    with repo.lock(source, f"prune of {source}"):
        # a prune or backup killed earlier may have left folders without a manifest, and
        # any writer killed mid-upload an unfinished upload
        leftovers = repo.remove_uncommitted(source)
        uploads = repo.remove_stale_uploads(source)
        report = plan(repo, source, policy, zone_name, now or datetime.now(UTC))
        report.leftovers_removed = leftovers
        report.uploads_removed = [upload.key for upload in uploads]
        report.applied = True
        _audit(repo, report, "prune-started")
        for decision in sorted(report.to_delete, key=lambda d: d.backup.started_at):
            backup = decision.backup.id
            if _held_since_the_plan(repo, source, backup, report):
                continue
            if backup in report.expired_holds:
                set_object_legal_holds(repo, report.manifests[backup], False)
            _delete_backup(repo, source, backup)
            report.deleted.append(decision.backup.id)
        for key in report.wal.keys:
            repo.storage.delete(key)
            report.wal_deleted += 1
        _retag(repo, report)
        deleted = set(report.deleted)
        for key in report.superseded_checks:
            if key.split("/")[2] not in deleted:  # those went with their backup
                repo.storage.delete(key)
                report.checks_trimmed += 1
        _audit(repo, report, "prune")
    return report


def _retag(repo: Repository, report: PruneReport) -> None:
    """Where the storage tags objects by tier (S3, for lifecycle rules by tier), move each
    kept backup's data to the tier its rules give it: a backup uploaded as daily that is
    now the week's (month's, year's) is tagged so."""
    tags = tiering(repo.storage)
    if tags is None:
        return
    for decision in report.decisions:
        if not decision.keep or decision.backup.id in report.held_meanwhile:
            continue
        manifest = report.manifests[decision.backup.id]
        for obj in manifest.objects:
            key = layout.object_key(manifest.source, manifest.id, obj.name)
            if tags.tier(key) != decision.tier:
                tags.set_tier(key, decision.tier)
                report.retagged[manifest.id] = decision.tier


def _held_since_the_plan(repo: Repository, source: str, backup: str, report: PruneReport) -> bool:
    """hold does not take the source's lock (a backup may run for hours): a hold placed
    while prune runs is honoured up to the moment its backup would be deleted."""
    held = current_holds(repo.storage, source).get(backup)
    if held is None or not held.active(datetime.now(UTC)):
        return False
    log.warning("%s/%s was held while prune ran (%s): kept", source, backup, held.reason)
    report.held_meanwhile.append(backup)
    return True


def _delete_backup(repo: Repository, source: str, backup: str) -> None:
    """The manifest first: from then on the backup is not listed, and a kill leaves an
    uncommitted folder for the next run to remove."""
    storage = repo.storage
    storage.delete(layout.manifest_key(source, backup))
    for info in list(storage.list(layout.backup_prefix(source, backup))):
        storage.delete(info.key)
    for info in list(storage.list(checks_prefix(source, backup))):
        storage.delete(info.key)
    # its drill records stay: they are audit evidence, kept for as long as the repository
    # (docs/retention.md)
    log.info("pruned backup %s/%s from %s", source, backup, repo.name)


def _audit(repo: Repository, report: PruneReport, action: str) -> None:
    now = datetime.now(UTC)
    body = {
        "action": action,
        "at": now.isoformat(),
        "by": actor(),
        **report.summary(),
    }
    body.pop("audit_records", None)
    key = write_record(repo.storage, audit_key(now, action, report.source), body)
    report.audit.append(key)
    if action != "prune":
        return  # the plan changed nothing: the chain gets what was done
    decisions = {d.backup.id: d for d in report.to_delete}
    for backup in report.deleted:  # in the order they went
        audit.append(
            repo.storage,
            "prune",
            source=report.source,
            backup=backup,
            details={"policy": report.policy, **decision_summary(decisions[backup])},
            record=key,
        )
