"""Point-in-time recovery's decisions, without I/O: the recovery target and its settings,
the base backup to start from, where each tablespace goes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from lifeboat.errors import BackupNotFoundError, UsageError
from lifeboat.postgres import wal
from lifeboat.postgres.server import Action
from lifeboat.repo import layout
from lifeboat.repo.manifest import Manifest, TablespaceEntry

TargetKind = Literal["latest", "time", "lsn", "xid", "name", "immediate"]


# PostgreSQL's settings that each name where recovery stops; at most one may be set
TARGET_SETTINGS = (
    "recovery_target",
    "recovery_target_lsn",
    "recovery_target_name",
    "recovery_target_time",
    "recovery_target_xid",
)


@dataclass(frozen=True)
class RecoveryTarget:
    kind: TargetKind = "latest"
    value: str | None = None
    action: Action = "promote"
    timeline: str = "latest"

    def settings(self) -> dict[str, str]:
        """recovery_target_* settings for postgresql.auto.conf. Every target but this one is
        emptied first: a cluster once restored to a point keeps that target in its
        postgresql.auto.conf, and its base backups carry it; left alone, it would stop this
        recovery there (or refuse it). Emptied before the one set, as PostgreSQL refuses a
        second target, even an empty one, after a first."""
        chosen = {
            "latest": None,
            "immediate": "recovery_target",
        }.get(self.kind, f"recovery_target_{self.kind}")
        values: dict[str, str] = {name: "" for name in TARGET_SETTINGS if name != chosen}
        values["recovery_target_timeline"] = self.timeline
        if self.kind == "immediate":
            values["recovery_target"] = "immediate"
        elif self.kind != "latest":
            values[f"recovery_target_{self.kind}"] = self.given_value()
        if self.kind != "latest":
            values["recovery_target_action"] = self.action
        return values

    @property
    def has_target(self) -> bool:
        """Whether recovery stops before the end of the WAL (and then acts as told)."""
        return self.kind != "latest"

    def given_value(self) -> str:
        """The target's value, which every kind but latest and immediate has."""
        if self.value is None:
            raise UsageError(f"a recovery target by {self.kind} needs a value")
        return self.value


def parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError:
        raise UsageError(
            f"--to-time {text!r} is not a time like '2026-03-03 14:30:00+00'"
        ) from None
    if moment.tzinfo is None:
        raise UsageError(f"--to-time {text!r} needs a time zone, e.g. +00")
    return moment


def choose_base_backup(manifests: list[Manifest], target: RecoveryTarget) -> Manifest:
    """The newest physical backup that recovery can start from and still reach target:
    for a time, one finished before it; for an LSN, one ending at or before it; for any
    other target, the newest (an incremental one too: restore combines its chain)."""
    physical = sorted(
        (m for m in manifests if m.physical is not None), key=lambda m: layout.backup_order(m.id)
    )
    if target.kind == "time":
        moment = parse_time(target.given_value())
        physical = [m for m in physical if m.finished_at <= moment]
        why = f"finished before {target.value}"
    elif target.kind == "lsn":
        limit = wal.parse_lsn(target.given_value())
        physical = [m for m in physical if _stop_lsn(m) <= limit]
        why = f"ending at or before LSN {target.value}"
    else:
        why = "in the repository"
    if not physical:
        raise BackupNotFoundError(f"no physical backup {why}")
    return physical[-1]


def _stop_lsn(manifest: Manifest) -> int:
    span = manifest.physical
    if span is None:  # filtered out above; here for the type checker
        raise BackupNotFoundError(f"backup {manifest.id} is not a physical backup")
    return wal.parse_lsn(span.stop_lsn)


def tablespace_targets(
    manifest: Manifest, mapping: dict[str, Path]
) -> list[tuple[TablespaceEntry, Path]]:
    """Where each extra tablespace goes: --tablespace-map NAME|OID=DIR, else where it was."""
    spaces = manifest.physical.tablespaces if manifest.physical else []
    known = {t.name for t in spaces} | {str(t.oid) for t in spaces}
    unknown = sorted(set(mapping) - known)
    if unknown:
        have = ", ".join(f"{t.name} ({t.oid})" for t in spaces) or "none"
        raise UsageError(
            f"--tablespace-map names {unknown[0]!r}, which backup {manifest.id} does not have "
            f"(its tablespaces: {have})"
        )
    return [
        (t, (mapping.get(t.name) or mapping.get(str(t.oid)) or Path(t.location)).absolute())
        for t in spaces
    ]
