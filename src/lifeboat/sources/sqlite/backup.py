"""An SQLite backup: a consistent snapshot in a private folder -> PRAGMA integrity_check ->
sha256 -> zstd -> age/gpg -> sha256 -> storage, then the manifest with the snapshot's
row counts and schema hash."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

from lifeboat.config.model import SqliteSourceConfig
from lifeboat.context import Context
from lifeboat.errors import IntegrityError, UsageError
from lifeboat.repo import layout
from lifeboat.repo.commit import BackupResult, build_manifest, commit, lock_all, new_backup_id
from lifeboat.repo.manifest import SqliteDetails
from lifeboat.repo.objects import Targets, write_plain
from lifeboat.sources.sqlite import database, snapshot
from lifeboat.util.progress import Advance

log = logging.getLogger(__name__)

DATABASE_OBJECT = "database.zst"
DATABASE_FORMAT = "sqlite3"  # the plaintext: an SQLite database file, as is


def sqlite_source(ctx: Context, name: str) -> SqliteSourceConfig:
    config = ctx.source(name)
    if not isinstance(config, SqliteSourceConfig):
        raise UsageError(f"source {name!r} is a {config.type} source, not an SQLite one")
    return config


def backup_sqlite(ctx: Context, source_name: str) -> BackupResult:
    """Back up the source's database: nothing is stored unless its snapshot passes
    PRAGMA integrity_check."""
    source = sqlite_source(ctx, source_name)
    repos = ctx.repositories_for(source_name)
    encryptor = ctx.encryptor()
    compression = ctx.config.compression
    with (
        snapshot.stop_on_sigterm(),
        lock_all(repos, source_name, f"backup of {source_name}") as prepared,
        snapshot.private_folder(snapshot.work_dir(), f"the snapshot of {source.path}") as folder,
    ):
        targets = Targets(prepared.repos, prepared.failed)
        backup, started = new_backup_id(prepared.repos, source_name)
        with ctx.reporter.task(f"snapshot {source_name}") as advance:
            taken = snapshot.take(
                source.path, source.method, folder, source.busy_timeout, _forward_only(advance)
            )
        facts = _checked_facts(source_name, taken.path)
        key = layout.object_key(source_name, backup, DATABASE_OBJECT + encryptor.suffix)
        with (
            taken.path.open("rb") as readable,
            ctx.reporter.task(f"backup {source_name}") as advance,
        ):
            stored = targets.take(
                write_plain(
                    targets.live,
                    key,
                    readable,
                    encryptor,
                    compression,
                    DATABASE_FORMAT,
                    advance,
                )
            )
        manifest = build_manifest(
            source=source_name,
            backup_id=backup,
            started=started,
            details=SqliteDetails(
                path=str(source.path),
                sqlite_version=sqlite3.sqlite_version,
                method=source.method,
                journal_mode=taken.journal_mode,
                row_counts=facts.row_counts,
                schema_sha256=facts.schema_sha256,
            ),
            objects=[stored],
            compression_level=compression.level,
            encryptor=encryptor,
            tools={"sqlite": sqlite3.sqlite_version},
        )
        result = commit(manifest, targets.outcome(stored), prepared.removed)
    log.info("backup %s/%s committed (%d bytes stored)", source_name, backup, stored.size)
    return result


def _forward_only(advance: Advance) -> Callable[[int], None]:
    """Bytes copied so far, shown as progress; a copy SQLite starts over shows nothing
    until it gets past where the last one was."""
    shown = 0

    def step(copied: int) -> None:
        nonlocal shown
        if copied > shown:
            advance(copied - shown)
            shown = copied

    return step


def _checked_facts(source_name: str, path: Path) -> database.Facts:
    """The snapshot's row counts and schema hash, once PRAGMA integrity_check passed."""
    conn = database.open_copy(path)
    try:
        problems = database.integrity_problems(conn)
        if problems:
            raise IntegrityError(
                f"the snapshot of {source_name}: {database.integrity_failure(problems)}; "
                "the database itself is damaged, nothing was stored"
            )
        return database.facts(conn)
    except sqlite3.Error as exc:
        raise database.explain(path, exc) from None
    finally:
        conn.close()
