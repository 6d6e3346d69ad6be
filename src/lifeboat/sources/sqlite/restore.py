"""Restore an SQLite backup to a file: decrypted into a private folder beside the target,
synced and checked against the backup's evidence, then renamed over the target.

Nothing at the target changes before the copy passed its checks. An existing database (and
a -wal, -shm or -journal file beside it) is replaced only with --yes: those files belong to
the old database, and SQLite would apply an old -wal or roll back an old -journal into the
restored one, so they are removed with it, before the rename. The application must be
stopped first (docs/sqlite.md)."""

from __future__ import annotations

import errno
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lifeboat.context import Context
from lifeboat.errors import InsufficientSpaceError, RestoreError, UsageError
from lifeboat.repo.catalog import Repository
from lifeboat.repo.choice import first_that_serves
from lifeboat.repo.fetch import require_room
from lifeboat.repo.manifest import Manifest, SqliteDetails
from lifeboat.repo.objects import read_plain
from lifeboat.sources.base import PathRestoreRequest
from lifeboat.sources.sqlite import database, snapshot
from lifeboat.sources.sqlite.backup import sqlite_source
from lifeboat.util.fs import fsync_dir

# files SQLite keeps beside a database, which belong to the database they were made with
SIDECARS = ("-wal", "-shm", "-journal")


@dataclass
class SqliteRestoreResult:
    manifest: Manifest
    repository: str
    target: Path
    replaced: bool
    removed: list[str] = field(default_factory=list)  # the old database's -wal, -shm...
    row_counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "backup": self.manifest.id,
            "source": self.manifest.source,
            "repository": self.repository,
            "target": str(self.target),
            "replaced": self.replaced,
            "removed": self.removed,
            "verified": True,
            "tables": self.row_counts,
            "seconds": round(self.seconds, 3),
        }

    def lines(self) -> list[str]:
        rows = sum(self.row_counts.values())
        found = [
            f"restored {self.manifest.source}/{self.manifest.id} from {self.repository} to "
            f"{self.target} ({len(self.row_counts)} tables, {rows} rows, integrity_check ok, "
            "counts and schema as in the backup)"
        ]
        if self.replaced:
            found.append("the database that was there is replaced")
        found += [f"removed {name} of the replaced database" for name in self.removed]
        return found


def restore_sqlite(
    ctx: Context, source_name: str, request: PathRestoreRequest
) -> SqliteRestoreResult:
    began = time.monotonic()
    sqlite_source(ctx, source_name)
    target = request.to.absolute()
    sidecars = _refuse_unless_replaceable(target, request.assume_yes)

    def find(repo: Repository) -> Manifest:
        repo.ensure_initialised()
        manifest = repo.resolve(source_name, request.backup)
        manifest.details_as(SqliteDetails)
        return manifest

    repo, manifest = first_that_serves(
        ctx.repositories_to_read(source_name, request.repository), find
    )
    details = manifest.details_as(SqliteDetails)
    decryptor = ctx.decryptor_for(manifest)
    obj = manifest.objects[0]
    require_room(target.parent, manifest, obj)
    replaced = target.exists()
    what = f"the restore of {manifest.source}/{manifest.id}"
    with (
        snapshot.stop_on_sigterm(),
        snapshot.private_folder(target.parent, what) as folder,
    ):
        copy = folder / target.name
        try:
            fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with (
                open(fd, "wb") as sink,
                ctx.reporter.task(f"restore {manifest.source}/{manifest.id}") as advance,
            ):
                # the stored bytes' sha256, age's authentication and zstd's checksum prove
                # the plaintext; the copy is checked against the evidence below
                read_plain(repo, manifest, obj, decryptor, sink, advance, check_plain_digest=False)
                sink.flush()
                os.fsync(sink.fileno())
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise InsufficientSpaceError(
                    f"{target.parent} filled up while writing {what}: {target} was left as it was"
                ) from None
            raise RestoreError(
                f"cannot write {what} into {target.parent}: {exc.strerror}"
            ) from None
        check = database.check_copy(copy, details.row_counts, details.schema_sha256)
        if check.problems or check.facts is None:
            raise RestoreError(
                f"the restored copy of {manifest.source}/{manifest.id} does not match its "
                f"backup ({'; '.join(check.problems)}): {target} was left as it was"
            )
        if replaced:
            _keep_owner_and_mode(target, copy)
        removed = []
        for sidecar in sidecars:
            sidecar.unlink(missing_ok=True)
            removed.append(sidecar.name)
        os.replace(copy, target)
        fsync_dir(target.parent)
    return SqliteRestoreResult(
        manifest,
        repo.name,
        target,
        replaced,
        removed,
        check.facts.row_counts,
        time.monotonic() - began,
    )


def _refuse_unless_replaceable(target: Path, assume_yes: bool) -> list[Path]:
    """What is at target and beside it that the restore would replace (the database, its
    -wal, -shm, -journal), refused without assume_yes; a target that cannot be a database
    file is refused whatever."""
    if target.is_symlink():
        raise UsageError(f"{target} is a symbolic link: give the path of the file it points to")
    if target.is_dir():
        raise UsageError(f"{target} is a folder: give the path of the database file")
    if not target.parent.is_dir():
        raise UsageError(f"{target.parent}: no such folder")
    sidecars = [target.with_name(target.name + suffix) for suffix in SIDECARS]
    present = [path for path in [target, *sidecars] if path.exists()]
    if present and not assume_yes:
        names = ", ".join(path.name for path in present)
        raise RestoreError(
            f"{target.parent} already holds {names}: stop the application, then restore "
            "again with --yes to replace them (an old -wal, -shm or -journal is removed, "
            "it belongs to the old database)"
        )
    return [path for path in sidecars if path.exists()]


def _keep_owner_and_mode(old: Path, new: Path) -> None:
    """The restored file gets the owner and mode of the one it replaces, so the
    application can still open it."""
    info = old.stat()
    try:
        os.chown(new, info.st_uid, info.st_gid)
    except PermissionError:
        raise RestoreError(
            f"cannot give the restored file the owner of {old} (uid {info.st_uid}): restore "
            f"as that user or as root; {old} was left as it was"
        ) from None
    os.chmod(new, info.st_mode & 0o7777)
