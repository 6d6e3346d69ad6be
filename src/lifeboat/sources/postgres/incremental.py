"""Incremental base backups (PostgreSQL >= 17): the parent's backup_manifest going in, the
chain of backups coming out at restore.

pg_basebackup --incremental needs the parent's backup_manifest in plaintext, while backups
are encrypted to public keys the database host cannot decrypt with. So every physical backup
keeps its backup_manifest twice: encrypted in the repository (readable wherever the private
key is) and in the local state folder of the host that took it (metadata the host already
has: file names, sizes, checksums). The local copy is checked against the sha256 the
repository records before it is used."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from lifeboat.errors import BackupNotFoundError, IntegrityError, LifeboatError
from lifeboat.pipeline.crypto import Decryptor
from lifeboat.postgres.pgcontrol import unsigned_system_identifier
from lifeboat.repo import layout
from lifeboat.repo.catalog import Repository
from lifeboat.repo.manifest import Manifest, StoredObject
from lifeboat.repo.objects import read_plain
from lifeboat.util.fs import state_home, write_atomically

BACKUP_MANIFEST_OBJECT = "backup_manifest.zst"
MIN_SERVER_VERSION = 170000


class IncrementalError(LifeboatError):
    """An incremental backup cannot be taken or restored."""


def state_dir() -> Path:
    return state_home() / "backup_manifests"


def local_copy(source: str, backup: str) -> Path:
    return state_dir() / source / f"{backup}.backup_manifest"


def keep_local_copy(source: str, backup: str, data: bytes) -> None:
    """Best effort: without it, the next incremental reads the repository copy (needs the key)."""
    target = local_copy(source, backup)
    try:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomically(target, data)
    except OSError:
        return


def manifest_object(manifest: Manifest) -> StoredObject:
    for obj in manifest.objects:
        if obj.name.startswith(BACKUP_MANIFEST_OBJECT):
            return obj
    raise IncrementalError(
        f"backup {manifest.id} does not hold its backup_manifest (taken by an older Lifeboat): "
        "take a full physical backup to start a new chain"
    )


def _same_cluster(manifest: Manifest, system_identifier: str) -> bool:
    """Manifests written before identifiers were read unsigned may hold a negative one."""
    recorded = manifest.server.system_identifier
    if recorded is None:
        return False
    return unsigned_system_identifier(recorded) == unsigned_system_identifier(system_identifier)


def choose_parent(repo: Repository, source: str, system_identifier: str | None) -> Manifest:
    """The newest committed physical backup of the same cluster."""
    candidates = [
        m
        for m in repo.list_backups(source)
        if m.physical is not None
        and not m.safety
        and (system_identifier is None or _same_cluster(m, system_identifier))
    ]
    if not candidates:
        raise IncrementalError(
            f"no physical backup of {source} to build an incremental on: take a full one first "
            f"(`lifeboat backup {source} --type physical`)"
        )
    return max(candidates, key=lambda m: layout.backup_order(m.id))


def parent_backup_manifest(
    repo: Repository, parent: Manifest, decryptor: Decryptor | None
) -> bytes:
    """The parent's backup_manifest: the local copy if intact, else read from the repository."""
    obj = manifest_object(parent)
    try:
        data = local_copy(parent.source, parent.id).read_bytes()
        if hashlib.sha256(data).hexdigest() == obj.plain_sha256:
            return data
    except OSError:
        pass
    if decryptor is None:
        raise IncrementalError(
            f"the backup_manifest of {parent.id} is not on this host and no private key is "
            "configured to read it from the repository: set encryption.age_identity_file (or "
            "gpg) or take a full physical backup"
        )
    sink = io.BytesIO()
    read_plain(repo, parent, obj, decryptor, sink)
    return sink.getvalue()


def chain(repo: Repository, newest: Manifest) -> list[Manifest]:
    """The backups a restore of newest combines, oldest (the full one) first."""
    backups = [newest]
    while backups[-1].physical is not None and backups[-1].physical.parent:
        parent_id = backups[-1].physical.parent
        try:
            parent = repo.load_manifest(newest.source, parent_id)
        except BackupNotFoundError:
            raise IntegrityError(
                f"backup {backups[-1].id} is incremental on {parent_id}, which is missing from "
                "the repository: the chain cannot be restored"
            ) from None
        if len(backups) > 1000 or any(b.id == parent.id for b in backups):
            raise IntegrityError(f"the incremental chain of {newest.id} loops at {parent.id}")
        backups.append(parent)
    return list(reversed(backups))
