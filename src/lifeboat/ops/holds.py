"""`lifeboat hold` and `release`: keep a backup out of prune's reach, with a reason.

A hold is a record in the repository (repo/records.py) that prune reads; where the storage
has Object Lock (S3), every object of the backup also gets a legal hold, so that not even a
credential allowed to delete can remove it while it is held. A hold with `until` ends by
itself at that moment for prune; the S3 legal holds, which have no end date, are released
by prune before it deletes the backup, or by `release`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lifeboat.errors import UsageError
from lifeboat.repo import audit, layout
from lifeboat.repo.catalog import Repository
from lifeboat.repo.manifest import Manifest
from lifeboat.repo.records import (
    actor,
    audit_key,
    current_holds,
    hold_key,
    write_record,
)
from lifeboat.storage.base import NotFound
from lifeboat.storage.capabilities import legal_holds

log = logging.getLogger(__name__)


@dataclass
class HoldResult:
    repository: str
    source: str
    backup: str
    action: str
    reason: str
    until: datetime | None
    legal_holds: int  # objects whose S3 legal hold was set (or released)

    def summary(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "source": self.source,
            "backup": self.backup,
            "action": self.action,
            "reason": self.reason,
            "until": self.until.isoformat() if self.until else None,
            "object_legal_holds": self.legal_holds,
        }


def backup_keys(manifest: Manifest) -> list[str]:
    return [
        layout.manifest_key(manifest.source, manifest.id),
        layout.manifest_copy_key(manifest.source, manifest.id),
        *(layout.object_key(manifest.source, manifest.id, o.name) for o in manifest.objects),
    ]


def set_object_legal_holds(repo: Repository, manifest: Manifest, on: bool) -> int:
    """Set (or release) the storage's legal hold on every object of a backup; 0 where the
    storage has none."""
    holds = legal_holds(repo.storage)
    if holds is None:
        return 0
    count = 0
    for key in backup_keys(manifest):
        try:
            holds.set_legal_hold(key, on)
        except NotFound:
            continue  # the copy of the manifest is missing in some older backups
        count += 1
    return count


def hold(repo: Repository, manifest: Manifest, reason: str, until: datetime | None) -> HoldResult:
    if not reason.strip():
        raise UsageError("a hold needs a reason (--reason), for whoever finds it later")
    now = datetime.now(UTC)
    if until is not None and until <= now:
        raise UsageError(f"--until {until:%Y-%m-%d} is not in the future")
    details = {"until": until.isoformat() if until else None}
    return _record(repo, manifest, "hold", reason, details, until)


def release(repo: Repository, manifest: Manifest, reason: str) -> HoldResult:
    existing = current_holds(repo.storage, manifest.source).get(manifest.id)
    if existing is None:
        raise UsageError(f"backup {manifest.id} of {manifest.source} in {repo.name} is not held")
    return _record(repo, manifest, "release", reason, {"held_for": existing.reason}, None)


def _record(
    repo: Repository,
    manifest: Manifest,
    action: str,
    reason: str,
    details: dict[str, Any],
    until: datetime | None,
) -> HoldResult:
    """Legal holds first (on for a hold, off for a release), then the hold record and its
    audit copy: a record never claims a legal hold that was not set."""
    now = datetime.now(UTC)
    legal = set_object_legal_holds(repo, manifest, action == "hold")
    body = {
        "action": action,
        "source": manifest.source,
        "backup": manifest.id,
        "reason": reason,
        **details,
        "by": actor(),
        "at": now.isoformat(),
        "object_legal_holds": legal,
    }
    key = write_record(repo.storage, hold_key(manifest.source, manifest.id, now, action), body)
    write_record(repo.storage, audit_key(now, action, manifest.source), body)
    details = {k: v for k, v in body.items() if k not in ("action", "source", "backup", "by", "at")}
    audit.append(
        repo.storage,
        action,
        source=manifest.source,
        backup=manifest.id,
        details=details,
        record=key,
    )
    return HoldResult(repo.name, manifest.source, manifest.id, action, reason, until, legal)
