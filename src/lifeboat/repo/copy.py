"""`lifeboat copy`: replicate what one repository has and another lacks.

Backups are copied oldest first (an incremental's parent before it), each object checked
against the sha256 its manifest records while it streams through, the manifest last: a
copy interrupted at any point leaves no backup listed in the target, and the next run
copies it again. A backup is the same in both when its id and its manifest's checksum are:
a target that holds another backup under the same id keeps it, and that backup (with the
incrementals built on it and its hold records) is reported as a conflict, never skipped in
silence; so is a backup whose manifest cannot be read in the origin, while the rest still
goes. WAL and history files are copied by key (their names carry their plaintext
sha256); a key the target already has with the same size is skipped. Hold records follow
the same way, so that a backup held in the origin is held in the target. Nothing is
decrypted: copying needs no key.

The source's cluster records (repo/cluster.py) go first, by key and never rewritten: the
target then holds the cluster the copied backups and WAL are of. A target whose records
went another way (a record the origin lacks, or names another cluster under the same
number: it holds another cluster) gets nothing of that source, which is reported as one
error line once the other sources are copied."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lifeboat.errors import IntegrityError, LifeboatError
from lifeboat.pipeline.checksum import Tap
from lifeboat.repo import audit, cluster, layout
from lifeboat.repo.catalog import Repository
from lifeboat.repo.drills import drills_prefix
from lifeboat.repo.manifest import Manifest, digest
from lifeboat.repo.records import holds_prefix
from lifeboat.storage.base import NotFound, ObjectInfo, temporary_target

log = logging.getLogger(__name__)

READ_SIZE = 1 << 20


class CopyConflictError(LifeboatError):
    """The target holds a different backup under an id the origin has, or another cluster
    for a source."""


@dataclass
class CopyReport:
    source: str
    backups_copied: list[str] = field(default_factory=list)
    backups_present: int = 0
    conflicts: dict[str, str] = field(default_factory=dict)  # backup id -> why not copied
    refused: str | None = None  # why nothing of the source was copied
    cluster_records_copied: int = 0
    wal_copied: int = 0
    wal_present: int = 0
    hold_records_copied: int = 0
    drill_records_copied: int = 0
    bytes_copied: int = 0
    leftovers_removed: list[str] = field(default_factory=list)
    uploads_removed: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "backups_copied": self.backups_copied,
            "backups_already_there": self.backups_present,
            "conflicts": [{"backup": b, "why": why} for b, why in self.conflicts.items()],
            "refused": self.refused,
            "cluster_records_copied": self.cluster_records_copied,
            "wal_files_copied": self.wal_copied,
            "wal_files_already_there": self.wal_present,
            "hold_records_copied": self.hold_records_copied,
            "drill_records_copied": self.drill_records_copied,
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
            reports.append(report)
            # what a copy (or backup) killed earlier left in the target
            report.leftovers_removed = target.remove_uncommitted(source)
            report.uploads_removed = [u.key for u in target.remove_stale_uploads(source)]
            report.refused = _copy_cluster_records(origin, target, source, report)
            if report.refused is not None:
                log.error("%s: nothing copied: %s", source, report.refused)
                continue
            _copy_backups(origin, target, source, report)
            _copy_wal(origin, target, source, report)
            _copy_holds(origin, target, source, report)
            _copy_drills(origin, target, source, report)
    return reports


def _copy_cluster_records(
    origin: Repository, target: Repository, source: str, report: CopyReport
) -> str | None:
    """Copy the records the target lacks; why the source is refused, or None."""
    theirs = {record.number: record for record, _ in cluster.history(target.storage, source)}
    ours = cluster.history(origin.storage, source)
    by_number = {record.number: record for record, _ in ours}
    for number, record in sorted(theirs.items()):
        mine = by_number.get(number)
        if mine is None or mine.system_identifier != record.system_identifier:
            in_force = max(theirs.values(), key=lambda r: r.number)
            origin_in_force = (
                f"the cluster with system identifier {ours[-1][0].system_identifier}"
                if ours
                else "no cluster record"
            )
            return (
                f"{target.name} holds source {source} as the cluster with system identifier "
                f"{in_force.describe()}, but {origin.name} holds {origin_in_force}: "
                "refusing to mix them"
            )
    for record, data in ours:
        if record.number not in theirs and cluster.create_once(target.storage, record.key, data):
            report.cluster_records_copied += 1
    return None


def _copy_backups(origin: Repository, target: Repository, source: str, report: CopyReport) -> None:
    present = set(target.committed_ids(source))
    for backup in origin.committed_ids(source):  # oldest first: parents before incrementals
        try:
            manifest = origin.load_manifest(source, backup)
        except LifeboatError as exc:
            # one damaged backup must not keep the rest, WAL and holds included, from going
            report.conflicts[backup] = f"unreadable in origin: {exc.message}"
            log.error("backup %s/%s not copied to %s: %s", source, backup, target.name, exc)
            continue
        conflict = _conflict(target, manifest, present, report.conflicts)
        if conflict is not None:
            report.conflicts[backup] = conflict
            log.error("backup %s/%s not copied to %s: %s", source, backup, target.name, conflict)
            continue
        if backup in present:
            report.backups_present += 1
            continue
        for obj in manifest.objects:
            key = layout.object_key(source, backup, obj.name)
            report.bytes_copied += _copy_object(origin, target, key, obj.size, obj.sha256)
        target.save_manifest(manifest)  # the commit point in the target
        audit.append_or_log(
            target.storage,
            "copy",
            source=source,
            backup=backup,
            details={"from": origin.name, "from_url": origin.storage.url},
            record=layout.manifest_key(source, backup),
        )
        report.backups_copied.append(backup)
        log.info("copied backup %s/%s from %s to %s", source, backup, origin.name, target.name)


def _conflict(
    target: Repository, manifest: Manifest, present: set[str], conflicts: dict[str, str]
) -> str | None:
    """Why the backup cannot go to the target, or None. Ids are unique, yet two repositories
    can hold different backups under one id: ids of older Lifeboat versions were per second,
    and a repository may have been restored from somewhere else."""
    parent = manifest.physical.parent if manifest.physical else None
    if parent in conflicts:
        return f"it builds on {parent}, which is not copied either"
    if manifest.id not in present:
        return None
    try:
        theirs = digest(target.load_manifest(manifest.source, manifest.id))
    except LifeboatError as exc:
        return f"its manifest in {target.name} cannot be read: {exc.message}"
    if theirs != digest(manifest):
        return f"{target.name} holds a different backup under the same id (manifests differ)"
    return None


def raise_conflicts(reports: list[CopyReport]) -> None:
    """One error for every source refused and every backup left out for a conflict, once
    the rest is copied."""
    refused = [f"source {r.source}: {r.refused}" for r in reports if r.refused is not None]
    if refused:
        raise CopyConflictError(
            f"{len(refused)} source(s) not copied (everything else was): " + "; ".join(refused)
        )
    found = [f"{r.source}/{backup}: {why}" for r in reports for backup, why in r.conflicts.items()]
    if found:
        raise CopyConflictError(
            f"{len(found)} backup(s) not copied (everything else was): " + "; ".join(found)
        )


def _copy_wal(origin: Repository, target: Repository, source: str, report: CopyReport) -> None:
    for prefix in (f"{source}/wal/", layout.stream_prefix(source)):
        copied, present = _copy_missing(origin, target, prefix, report)
        report.wal_copied += copied
        report.wal_present += present


def _copy_holds(origin: Repository, target: Repository, source: str, report: CopyReport) -> None:
    """Hold and release records go along (each written once, so copied by key): a backup
    held in the origin is held in the target too, for prune there."""
    prefix = holds_prefix(source)

    def of_a_conflict(key: str) -> bool:  # <source>/holds/<backup id>/<record>
        return key[len(prefix) :].split("/", 1)[0] in report.conflicts

    report.hold_records_copied, _ = _copy_missing(origin, target, prefix, report, of_a_conflict)


def _copy_drills(origin: Repository, target: Repository, source: str, report: CopyReport) -> None:
    """Drill records go along too (one key per drill in every repository, written once): the
    evidence travels with the backups, and prune in the target knows a failed drill."""
    prefix = drills_prefix(source)

    def of_a_conflict(key: str) -> bool:  # <source>/drills/<backup id>/<record>
        return key[len(prefix) :].split("/", 1)[0] in report.conflicts

    report.drill_records_copied, _ = _copy_missing(origin, target, prefix, report, of_a_conflict)


def _copy_missing(
    origin: Repository,
    target: Repository,
    prefix: str,
    report: CopyReport,
    leave_out: Callable[[str], bool] = lambda key: False,
) -> tuple[int, int]:
    """Objects under prefix that the target lacks (or has with another size), by key,
    except those leave_out names: (copied, already there)."""
    have = {info.key: info.size for info in target.storage.list(prefix)}
    copied = present = 0
    for info in origin.storage.list(prefix):
        if _is_temporary(info) or leave_out(info.key):
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
