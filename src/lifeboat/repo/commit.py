"""What every backup does around its source's own work, whatever the source: lock its
repositories and clear interrupted runs' leftovers, draw an id, and commit the manifest."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lifeboat import __version__
from lifeboat.errors import LifeboatError, LockedError
from lifeboat.pipeline.crypto import Encryptor
from lifeboat.repo import audit, layout
from lifeboat.repo.catalog import Repository
from lifeboat.repo.manifest import Compression, Details, Encryption, Manifest, StoredObject
from lifeboat.repo.objects import Written

log = logging.getLogger(__name__)


@dataclass
class BackupResult:
    manifest: Manifest
    repository: str  # the first repository that holds the backup
    removed_leftovers: list[str]
    repositories: list[str] = field(default_factory=list)  # every one that holds it
    failed: dict[str, str] = field(default_factory=dict)  # repository -> why it does not


def new_backup_id(repos: Repository | Sequence[Repository], source: str) -> tuple[str, datetime]:
    """An id no repository of the source has a folder for (committed or left over), and the
    moment it stands for. The random suffix makes a clash all but impossible; checking costs
    one listing, and a clash just draws again."""
    targets = [repos] if isinstance(repos, Repository) else repos
    taken = {backup for repo in targets for backup in repo.ids_in_use(source)}
    while True:
        started = datetime.now(UTC)
        backup = layout.backup_id(started)
        if backup not in taken:
            return backup, started


@dataclass
class Prepared:
    """The repositories a backup can go to, locked and cleaned of interrupted runs' leftovers,
    and those that could not even be prepared (unreachable, broken), with why."""

    repos: list[Repository]
    removed: list[str]
    failed: dict[str, BaseException]


@contextlib.contextmanager
def lock_all(repos: Sequence[Repository], source: str, purpose: str) -> Iterator[Prepared]:
    """Every repository's lock of the source, and the leftovers of interrupted runs removed
    from each. A repository that cannot be prepared is left out (the backup goes to the
    others), unless none can; one locked by another run stops everything."""
    with contextlib.ExitStack() as stack:
        prepared = Prepared([], [], {})
        for repo in repos:
            try:
                repo.ensure_initialised()
                stack.enter_context(repo.lock(source, purpose))
                prepared.removed += repo.remove_uncommitted(source)
                repo.remove_stale_uploads(source)
            except LockedError:
                raise
            except (LifeboatError, OSError) as exc:
                if len(repos) == 1:
                    raise
                log.error("repository %s cannot take the backup: %s", repo.name, exc)
                prepared.failed[repo.name] = exc
                continue
            prepared.repos.append(repo)
        if not prepared.repos:
            raise next(iter(prepared.failed.values()))
        yield prepared


def build_manifest(
    *,
    source: str,
    backup_id: str,
    started: datetime,
    details: Details,
    objects: list[StoredObject],
    compression_level: int,
    encryptor: Encryptor,
    tools: dict[str, str],
    labels: dict[str, str] | None = None,
) -> Manifest:
    """The manifest of a backup whose objects are all stored, finished now. Its kind is its
    details' (what only that kind of backup records); `tools` are the versions of the
    programs the source ran, beside Lifeboat's own."""
    return Manifest(
        id=backup_id,
        source=source,
        kind=details.KIND,
        started_at=started,
        finished_at=datetime.now(UTC),
        tool={"lifeboat": __version__, **tools},
        compression=Compression(level=compression_level),
        encryption=Encryption(
            method=encryptor.method,
            recipients=[{"type": r.type, "id": r.id} for r in encryptor.recipients()],
        ),
        objects=objects,
        labels=labels or {},
        details=details,
    )


def commit(manifest: Manifest, written: Written, removed: list[str]) -> BackupResult:
    """The manifest into every repository that holds all the objects: only then is the
    backup there. A repository that fails here is reported like one that failed before."""
    failed = {name: _failure_reason(exc) for name, exc in written.failed.items()}
    committed: list[str] = []
    for repo in written.repos:
        previous = _previous_encryption(repo, manifest)
        try:
            repo.save_manifest(manifest)
            committed.append(repo.name)
        except LifeboatError as exc:
            failed[repo.name] = _failure_reason(exc)
            continue
        audit.append_or_log(
            repo.storage,
            "backup",
            source=manifest.source,
            backup=manifest.id,
            details=backup_event_details(manifest),
            record=layout.manifest_key(manifest.source, manifest.id),
        )
        if previous is not None and previous[1] != manifest.encryption:
            audit.append_or_log(
                repo.storage,
                "key",
                source=manifest.source,
                backup=manifest.id,
                details=key_event_details(manifest, *previous),
                record=layout.manifest_key(manifest.source, manifest.id),
            )
    if not committed:
        raise LifeboatError(
            "the backup could not be committed to any repository: "
            + "; ".join(f"{name}: {why}" for name, why in failed.items())
        )
    for name, why in failed.items():
        log.error(
            "backup %s/%s is NOT in repository %s: %s", manifest.source, manifest.id, name, why
        )
    return BackupResult(manifest, committed[0], removed, committed, failed)


def _previous_encryption(repo: Repository, manifest: Manifest) -> tuple[str, Encryption] | None:
    """The id and encryption of the source's newest backup before this one in repo: a
    backup encrypted to other recipients is a key change, for the audit trail. None for
    the first backup, or when it cannot be read (the backup goes on without the event)."""
    earlier = [b for b in repo.committed_ids(manifest.source) if b != manifest.id]
    if not earlier:
        return None
    newest = layout.sorted_ids(earlier)[-1]
    try:
        return newest, repo.load_manifest(manifest.source, newest).encryption
    except LifeboatError as exc:
        log.warning("cannot read backup %s/%s to compare keys: %s", manifest.source, newest, exc)
        return None


def backup_event_details(manifest: Manifest) -> dict[str, Any]:
    """What the audit trail says of a backup: enough to tell it was whole and encrypted."""
    return {
        "kind": manifest.kind,
        "started_at": manifest.started_at.isoformat(),
        "finished_at": manifest.finished_at.isoformat(),
        "bytes": sum(o.size for o in manifest.objects),
        "encryption": manifest.encryption.method,
        "recipients": manifest.encryption.recipients,
    }


def key_event_details(
    manifest: Manifest, previous_backup: str, previous: Encryption
) -> dict[str, Any]:
    """What the audit trail says of a backup encrypted to other recipients than the one
    before it."""
    return {
        "method": manifest.encryption.method,
        "recipients": manifest.encryption.recipients,
        "previous_backup": previous_backup,
        "previous_method": previous.method,
        "previous_recipients": previous.recipients,
    }


def _failure_reason(exc: BaseException) -> str:
    """Why a repository does not hold the backup, in the report of those that do."""
    if isinstance(exc, LifeboatError):
        return exc.message
    return str(exc) or type(exc).__name__
