"""A repository: the marker, committed manifests, and cleanup of what was never committed."""

from __future__ import annotations

import json
import logging
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from lifeboat import __version__
from lifeboat.errors import (
    BackupNotFoundError,
    IntegrityError,
    NotInitialisedError,
    RepositoryError,
    StorageError,
)
from lifeboat.repo import layout
from lifeboat.repo.manifest import Manifest, decode, encode
from lifeboat.storage.base import NotFound, PermanentError, Storage

log = logging.getLogger(__name__)

STALE_UPLOAD_SECONDS = 24 * 3600


class Repository:
    def __init__(self, name: str, storage: Storage) -> None:
        self.name = name
        self.storage = storage

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
        sources = [source] if source else self.sources()
        manifests = []
        for name in sources:
            for backup in self.committed_ids(name):
                manifests.append(self.load_manifest(name, backup))
        return sorted(manifests, key=lambda m: (layout.backup_order(m.id), m.source))

    def resolve(self, source: str, backup: str) -> Manifest:
        """A backup by id; `latest` is the newest one that is not a restore's safety backup."""
        if backup != "latest":
            return self.load_manifest(source, backup)
        for backup_id in reversed(self.committed_ids(source)):
            manifest = self.load_manifest(source, backup_id)
            if not manifest.safety:
                return manifest
        raise BackupNotFoundError(f"no backup of {source} in repository {self.name}")

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
        self._abort_stale_uploads()
        return removed

    def _abort_stale_uploads(self) -> None:
        """Object stores keep the parts of an upload whose process was killed (and bill
        them). Only day-old ones are aborted: another source may be uploading right now."""
        abort = getattr(self.storage, "abort_incomplete_uploads", None)
        if abort is None:
            return
        try:
            count = abort(STALE_UPLOAD_SECONDS)
        except StorageError as exc:
            log.warning("cannot clean up interrupted uploads in %s: %s", self.name, exc)
            return
        if count:
            log.info("aborted %d interrupted uploads in %s", count, self.name)
