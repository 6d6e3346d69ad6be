"""A repository: the marker, committed manifests, and cleanup of what was never committed."""

from __future__ import annotations

import json
import logging
import uuid
from collections import defaultdict
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from lifeboat import __version__
from lifeboat.errors import (
    BackupNotFoundError,
    IntegrityError,
    NotInitialisedError,
    RepositoryError,
    StorageError,
    UsageError,
)
from lifeboat.repo import layout
from lifeboat.repo.lock import STALE_AFTER, repository_lock
from lifeboat.repo.manifest import BackupType, Manifest, decode, encode
from lifeboat.repo.records import AUDIT_PREFIX
from lifeboat.storage.base import NotFound, PermanentError, Storage
from lifeboat.storage.capabilities import PendingUpload, upload_janitor

log = logging.getLogger(__name__)

# A pending upload younger than this is left alone: its writer may be alive, and writers
# that take no lock (wal-push, wal-stream, hold, verify's records) write meanwhile.
UPLOAD_GRACE = timedelta(hours=1)


@dataclass(frozen=True)
class Damaged:
    """A committed backup whose manifest cannot be read, and why."""

    source: str
    backup: str
    error: IntegrityError


class Repository:
    def __init__(
        self,
        name: str,
        storage: Storage,
        *,
        lock_stale_after: timedelta = STALE_AFTER,
        upload_grace: timedelta = UPLOAD_GRACE,
    ) -> None:
        self.name = name
        self.storage = storage
        self.lock_stale_after = lock_stale_after
        self.upload_grace = upload_grace

    def lock(self, source: str, purpose: str) -> AbstractContextManager[None]:
        """The source's lock in this repository (see repo/lock.py), for the block."""
        return repository_lock(self.storage, source, purpose, self.lock_stale_after)

    # --- marker --------------------------------------------------------------------------

    def marker(self) -> dict[str, Any] | None:
        try:
            with self.storage.read(layout.MARKER) as stream:
                data = stream.read()
        except NotFound:
            return None
        try:
            marker: dict[str, Any] = json.loads(data)
        except ValueError:
            raise RepositoryError(
                f"{self.storage.url}: {layout.MARKER} is not valid JSON"
            ) from None
        return marker

    def init(self) -> tuple[bool, dict[str, Any]]:
        """Create the marker; (False, marker) when the repository already exists."""
        existing = self.marker()
        if existing is not None:
            self._check_format(existing)
            return False, existing
        marker = {
            "format_version": layout.FORMAT_VERSION,
            "repository_id": str(uuid.uuid4()),
            "created_at": datetime.now(UTC).isoformat(),
            "created_by": f"lifeboat {__version__}",
        }
        self.storage.write(layout.MARKER, [json.dumps(marker, indent=2).encode() + b"\n"])
        return True, marker

    def _check_format(self, marker: dict[str, Any]) -> None:
        version = marker.get("format_version")
        if not isinstance(version, int):
            raise RepositoryError(f"{self.storage.url}: {layout.MARKER} has no format_version")
        if version > layout.FORMAT_VERSION:
            raise RepositoryError(
                f"{self.storage.url} has repository format {version}; "
                f"this Lifeboat reads up to {layout.FORMAT_VERSION}: upgrade Lifeboat"
            )

    def ensure_initialised(self) -> None:
        marker = self.marker()
        if marker is None:
            raise NotInitialisedError(
                f"repository {self.name} ({self.storage.url}) is not initialised: "
                "run `lifeboat init`"
            )
        self._check_format(marker)

    # --- manifests -------------------------------------------------------------------------

    def save_manifest(self, manifest: Manifest) -> None:
        """The commit point: the twin copy first, then the manifest itself."""
        data = encode(manifest)
        self.storage.write(layout.manifest_copy_key(manifest.source, manifest.id), [data])
        self.storage.write(layout.manifest_key(manifest.source, manifest.id), [data])

    def load_manifest(self, source: str, backup: str) -> Manifest:
        key = layout.manifest_key(source, backup)
        try:
            return self._read_manifest(key)
        except NotFound:
            raise BackupNotFoundError(
                f"backup {backup} of {source} not found in {self.name}"
            ) from None
        except IntegrityError as first:
            log.warning("%s; trying its copy", first)
            try:
                return self._read_manifest(layout.manifest_copy_key(source, backup))
            except (NotFound, IntegrityError):
                raise first from None

    def _read_manifest(self, key: str) -> Manifest:
        where = f"{self.storage.url}/{key}"
        with self.storage.read(key) as stream:
            manifest = decode(stream.read(), where)
        source, backup, _ = layout.parse_backup_key(key) or ("", "", "")
        if (manifest.source, manifest.id) != (source, backup):
            # a manifest moved to another folder would be listed, sorted and restored as
            # a backup it is not
            raise IntegrityError(
                f"manifest {where} describes backup {manifest.id} of {manifest.source}, "
                "not the one of its folder"
            )
        return manifest

    def committed_ids(self, source: str) -> list[str]:
        """The source's backups, oldest first."""
        return layout.sorted_ids(self._folder_ids(source, committed=True))

    def ids_in_use(self, source: str) -> set[str]:
        """Every id with a folder: committed backups and leftovers alike."""
        return self._folder_ids(source, committed=False)

    def _folder_ids(self, source: str, committed: bool) -> set[str]:
        ids = set()
        for info in self.storage.list(layout.backups_prefix(source)):
            parsed = layout.parse_backup_key(info.key)
            if parsed and (not committed or parsed[2] == layout.MANIFEST):
                ids.add(parsed[1])
        return ids

    def sources(self) -> list[str]:
        found = set()
        for info in self.storage.list(""):
            parsed = layout.parse_backup_key(info.key)
            if parsed and parsed[2] == layout.MANIFEST:
                found.add(parsed[0])
        return sorted(found)

    def list_backups(self, source: str | None = None) -> list[Manifest]:
        manifests, damaged = self.scan_backups(source)
        if damaged:
            raise damaged[0].error
        return manifests

    def scan_backups(self, source: str | None = None) -> tuple[list[Manifest], list[Damaged]]:
        """Every committed backup's manifest, and apart those whose manifest and its copy
        cannot be read: one damaged backup does not hide the others."""
        sources = [source] if source else self.sources()
        manifests = []
        damaged = []
        for name in sources:
            for backup in self.committed_ids(name):
                try:
                    manifests.append(self.load_manifest(name, backup))
                except IntegrityError as exc:
                    damaged.append(Damaged(name, backup, exc))
        manifests.sort(key=lambda m: (layout.backup_order(m.id), m.source))
        damaged.sort(key=lambda d: (layout.backup_order(d.backup), d.source))
        return manifests, damaged

    def resolve(self, source: str, backup: str, kind: BackupType | None = None) -> Manifest:
        """A backup by id; `latest` is the newest one that is not a restore's safety backup
        (of that kind, when one is named). An id of another kind is refused."""
        if backup != "latest":
            manifest = self.load_manifest(source, backup)
            if kind is not None and manifest.type != kind:
                raise UsageError(
                    f"backup {backup} of {source} is a {manifest.type} backup, not a {kind} one"
                    + (": restore it with --pgdata DIR" if manifest.type == "physical" else "")
                )
            return manifest
        for backup_id in reversed(self.committed_ids(source)):
            manifest = self.load_manifest(source, backup_id)
            if not manifest.safety and kind in (None, manifest.type):
                return manifest
        what = f"{kind} backup" if kind else "backup"
        raise BackupNotFoundError(f"no {what} of {source} in repository {self.name}")

    def find(self, backup: str) -> Manifest:
        matches = [s for s in self.sources() if backup in self.committed_ids(s)]
        if not matches:
            raise BackupNotFoundError(f"backup {backup} not found in repository {self.name}")
        if len(matches) > 1:
            raise BackupNotFoundError(
                f"backup {backup} exists for several sources ({', '.join(matches)}): "
                "name the source"
            )
        return self.load_manifest(matches[0], backup)

    # --- leftovers ---------------------------------------------------------------------------

    def remove_uncommitted(
        self, source: str, keep: set[str] | frozenset[str] = frozenset()
    ) -> list[str]:
        """Delete backup folders that have no manifest (an interrupted run's leftovers).

        The caller holds the source's lock, so no other run is writing one of them."""
        keys: dict[str, list[str]] = defaultdict(list)
        committed = set()
        for info in self.storage.list(layout.backups_prefix(source)):
            parsed = layout.parse_backup_key(info.key)
            if parsed is None:
                continue
            keys[parsed[1]].append(info.key)
            if parsed[2] == layout.MANIFEST:
                committed.add(parsed[1])
        removed = []
        for backup in layout.sorted_ids(keys):
            names = keys[backup]
            if backup in committed or backup in keep:
                continue
            try:
                for key in names:
                    self.storage.delete(key)
            except PermanentError as exc:
                # a backup host's credential may create but not delete (see the writer
                # policy in cloud-storage.md): the leftovers wait for a stronger credential
                log.warning(
                    "cannot remove leftovers of interrupted backup %s/%s in %s: %s",
                    source,
                    backup,
                    self.name,
                    exc,
                )
                continue
            removed.append(backup)
            log.info("removed leftovers of interrupted backup %s/%s", source, backup)
        return removed

    def pending_uploads(self, prefix: str = "") -> list[PendingUpload]:
        """Uploads begun and never finished under prefix (a writer killed mid-write), on
        backends where they can be left behind."""
        janitor = upload_janitor(self.storage)
        return list(janitor.pending_uploads(prefix)) if janitor is not None else []

    def remove_stale_uploads(self, source: str) -> list[PendingUpload]:
        """Remove the pending uploads older than upload_grace under the source's folder and
        the repository-wide ones (locks, audit records, the marker). The caller holds the
        source's lock, so no backup, copy or prune of it writes meanwhile; the grace spares
        the writers that take no lock."""
        janitor = upload_janitor(self.storage)
        if janitor is None:
            return []
        cutoff = datetime.now(UTC) - self.upload_grace
        removed = []
        for prefix in (f"{source}/", "locks/", AUDIT_PREFIX, layout.MARKER):
            try:
                stale = [u for u in janitor.pending_uploads(prefix) if u.started <= cutoff]
            except StorageError as exc:
                # a cleanup: it must not fail the run that does it
                log.warning("cannot look for unfinished uploads in %s: %s", self.name, exc)
                continue
            for upload in stale:
                try:
                    janitor.remove_pending_upload(upload)
                except StorageError as exc:
                    log.warning(
                        "cannot remove the unfinished upload of %s in %s: %s",
                        upload.key,
                        self.name,
                        exc,
                    )
                    continue
                removed.append(upload)
                log.info(
                    "removed the unfinished upload of %s in %s (%s old)",
                    upload.key,
                    self.name,
                    age(upload),
                )
        return removed


def age(upload: PendingUpload) -> str:
    """How old a pending upload is (from its last write, or its start where that is all a
    backend tells), to the minute: `2d4h`, `3h12m`, `5m`."""
    minutes = max(0, int((datetime.now(UTC) - upload.started).total_seconds()) // 60)
    days, minutes = divmod(minutes, 1440)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days}d{hours}h"
    return f"{hours}h{minutes}m" if hours else f"{minutes}m"
