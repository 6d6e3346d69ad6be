"""A logical backup: pg_dump -> sha256 -> zstd -> age/gpg -> sha256 -> storage, then manifest."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from lifeboat import __version__
from lifeboat.context import Context
from lifeboat.errors import LifeboatError
from lifeboat.objects import write_plain
from lifeboat.postgres import logical
from lifeboat.postgres.binaries import find_tools
from lifeboat.postgres.conn import PgEndpoint
from lifeboat.repo import layout
from lifeboat.repo.catalog import Repository
from lifeboat.repo.lock import repository_lock
from lifeboat.repo.manifest import (
    Compression,
    Encryption,
    Evidence,
    Manifest,
)

log = logging.getLogger(__name__)

DUMP_OBJECT = "dump.zst"


@dataclass
class BackupResult:
    manifest: Manifest
    repository: str
    removed_leftovers: list[str]


def new_backup_id(repo: Repository, source: str) -> tuple[str, datetime]:
    taken = set(repo.committed_ids(source))
    while True:
        started = datetime.now(UTC)
        backup = layout.backup_id(started)
        if backup not in taken:
            return backup, started
        time.sleep(1.05 - started.microsecond / 1e6)


def backup_logical(
    ctx: Context,
    source_name: str,
    *,
    endpoint: PgEndpoint | None = None,
    labels: dict[str, str] | None = None,
) -> BackupResult:
    """Back up one database of a source. `endpoint` overrides the source's DSN (a restore's
    safety backup of its target uses it)."""
    source = ctx.source(source_name)
    repo = ctx.repository_for(source_name)
    repo.ensure_initialised()
    encryptor = ctx.encryptor()
    endpoint = endpoint or PgEndpoint.from_dsn(source.dsn, source.password_file)
    compression = ctx.config.compression

    with repository_lock(repo.storage, source_name, f"backup of {source_name}"):
        removed = repo.remove_uncommitted(source_name)
        backup, started = new_backup_id(repo, source_name)
        conn = endpoint.connect(autocommit=True)
        try:
            server = logical.server_info(conn)
            tools = find_tools(logical.server_major(server), source.pg_bin_dir)
            snapshot = logical.export_snapshot(conn)
            dump = logical.DumpStream(tools, endpoint, snapshot)
            evidence_box: list[Evidence | BaseException] = []

            def count_rows() -> None:
                try:
                    evidence_box.append(logical.collect_evidence(conn))
                except BaseException as exc:
                    evidence_box.append(exc)

            # counted in the exported snapshot while pg_dump reads the same one
            counter = threading.Thread(target=count_rows, name="evidence", daemon=True)
            counter.start()
            key = layout.object_key(source_name, backup, DUMP_OBJECT + encryptor.suffix)
            try:
                with ctx.reporter.task(f"backup {source_name}/{endpoint.dbname}") as advance:
                    stored_object = write_plain(
                        repo, key, dump, encryptor, compression, logical.DUMP_FORMAT, advance
                    )
            except BaseException:
                dump.kill()
                counter.join()
                raise
            counter.join()
            outcome = evidence_box[0]
            if isinstance(outcome, BaseException):
                repo.storage.delete(key)
                if isinstance(outcome, LifeboatError):
                    raise outcome
                raise LifeboatError(f"counting rows for the manifest failed: {outcome}")
            conn.execute("ROLLBACK")
        finally:
            conn.close()

        manifest = Manifest(
            id=backup,
            source=source_name,
            type="logical",
            started_at=started,
            finished_at=datetime.now(UTC),
            database=endpoint.dbname,
            server=server,
            tool={
                "lifeboat": __version__,
                "pg_dump": tools.version,
                "pg_dump_major": str(tools.major),
            },
            compression=Compression(level=compression.level),
            encryption=Encryption(
                method=encryptor.method,
                recipients=[{"type": r.type, "id": r.id} for r in encryptor.recipients()],
            ),
            objects=[stored_object],
            evidence=outcome,
            labels=labels or {},
        )
        repo.save_manifest(manifest)
        log.info(
            "backup %s/%s committed (%d bytes stored)", source_name, backup, stored_object.size
        )
        return BackupResult(manifest, repo.name, removed)
