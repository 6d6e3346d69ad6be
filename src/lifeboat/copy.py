"""`lifeboat copy`: replicate what one repository has and another lacks.

Backups are copied oldest first (an incremental's parent before it), each object checked
against the sha256 its manifest records while it streams through, the manifest last: a
copy interrupted at any point leaves no backup listed in the target, and the next run
copies it again. WAL and history files are copied by key (their names carry their
plaintext sha256); a key the target already has with the same size is skipped. Hold
records follow the same way, so that a backup held in the origin is held in the target.
Nothing is decrypted: copying needs no key."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from lifeboat.errors import IntegrityError, LifeboatError
from lifeboat.pipeline.checksum import Tap
from lifeboat.repo import layout
from lifeboat.repo.catalog import Repository
from lifeboat.repo.records import holds_prefix
from lifeboat.storage.base import NotFound, ObjectInfo, temporary_target

log = logging.getLogger(__name__)

READ_SIZE = 1 << 20


@dataclass
class CopyReport:
    source: str
    backups_copied: list[str] = field(default_factory=list)
    backups_present: int = 0
    wal_copied: int = 0
    wal_present: int = 0
    hold_records_copied: int = 0
    bytes_copied: int = 0
    leftovers_removed: list[str] = field(default_factory=list)
    uploads_removed: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "backups_copied": self.backups_copied,
            "backups_already_there": self.backups_present,
            "wal_files_copied": self.wal_copied,
            "wal_files_already_there": self.wal_present,
            "hold_records_copied": self.hold_records_copied,
            "bytes_copied": self.bytes_copied,
            "leftovers_removed": self.leftovers_removed,
            "unfinished_uploads_removed": self.uploads_removed,
        }


def copy_repository(origin: Repository, target: Repository, sources: list[str]) -> list[CopyReport]:
    """Copy every source's backups and WAL that target lacks; one report per source."""
    if origin.storage.url == target.storage.url:
        raise LifeboatError(f"{origin.name} and {target.name} are the same repository")
    origin.ensure_initialised()
    target.ensure_initialised()
    reports = []
    for source in sources:
        with target.lock(source, f"copy of {source} from {origin.name}"):
            report = CopyReport(source)
            # what a copy (or backup) killed earlier left in the target
            report.leftovers_removed = target.remove_uncommitted(source)
            report.uploads_removed = [u.key for u in target.remove_stale_uploads(source)]
            _copy_backups(origin, target, source, report)
            _copy_wal(origin, target, source, report)
            _copy_holds(origin, target, source, report)
            reports.append(report)
    return reports


def _copy_backups(origin: Repository, target: Repository, source: str, report: CopyReport) -> None:
    present = set(target.committed_ids(source))
    for backup in origin.committed_ids(source):  # oldest first: parents before incrementals
        if backup in present:
            report.backups_present += 1
            continue
        manifest = origin.load_manifest(source, backup)
        for obj in manifest.objects:
            key = layout.object_key(source, backup, obj.name)
            report.bytes_copied += _copy_object(origin, target, key, obj.size, obj.sha256)
        target.save_manifest(manifest)  # the commit point in the target
        report.backups_copied.append(backup)
        log.info("copied backup %s/%s from %s to %s", source, backup, origin.name, target.name)


def _copy_wal(origin: Repository, target: Repository, source: str, report: CopyReport) -> None:
    for prefix in (f"{source}/wal/", layout.stream_prefix(source)):
        copied, present = _copy_missing(origin, target, prefix, report)
        report.wal_copied += copied
        report.wal_present += present


def _copy_holds(origin: Repository, target: Repository, source: str, report: CopyReport) -> None:
    """Hold and release records go along (each written once, so copied by key): a backup
    held in the origin is held in the target too, for prune there."""
    report.hold_records_copied, _ = _copy_missing(origin, target, holds_prefix(source), report)


def _copy_missing(
    origin: Repository, target: Repository, prefix: str, report: CopyReport
) -> tuple[int, int]:
    """Objects under prefix that the target lacks (or has with another size), by key:
    (copied, already there)."""
    have = {info.key: info.size for info in target.storage.list(prefix)}
    copied = present = 0
    for info in origin.storage.list(prefix):
        if _is_temporary(info):
            continue
        if have.get(info.key) == info.size:
            present += 1
            continue
        report.bytes_copied += _copy_object(origin, target, info.key, info.size, None)
        copied += 1
    return copied, present


def _is_temporary(info: ObjectInfo) -> bool:
    """A write in progress (or killed) in the origin: not an object to copy."""
    return info.key.rsplit("/", 1)[-1].startswith(".") or temporary_target(info.key) is not None


def _copy_object(
    origin: Repository, target: Repository, key: str, size: int, sha256: str | None
) -> int:
    """Stream one object across, checked on the way: against the manifest's sha256 when
    there is one, and the size the target reports against what went through."""
    tap = Tap()

    def chunks() -> Any:
        try:
            stream = origin.storage.read(key)
        except NotFound:
            raise IntegrityError(f"{origin.name}: {key} is missing") from None
        with stream:
            while data := stream.read(READ_SIZE):
                tap.update(data)
                yield data
        if tap.size != size or (sha256 is not None and tap.sha256 != sha256):
            # raised inside the iterator: the target's write is abandoned, nothing is left
            raise IntegrityError(
                f"{origin.name}: {key} does not match its manifest (corrupted or truncated): "
                "not copied"
            )

    info = target.storage.write(key, chunks())
    if info.size != tap.size:
        target.storage.delete(key)
        raise IntegrityError(f"{target.name}: {key} holds {info.size} bytes, {tap.size} were sent")
    return tap.size


def sources_to_copy(origin: Repository, configured: list[str], only: str | None) -> list[str]:
    if only is not None:
        return [only]
    found = set(origin.sources())
    for source in configured:
        if next(iter(origin.storage.list(f"{source}/wal/")), None) is not None:
            found.add(source)
    return sorted(found)
