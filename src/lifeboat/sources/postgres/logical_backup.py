"""A logical backup: pg_dump -> sha256 -> zstd -> age/gpg -> sha256 -> storage, then manifest."""

from __future__ import annotations

import logging
import threading

from lifeboat.context import Context
from lifeboat.errors import LifeboatError
from lifeboat.postgres import dbprops, logical, roles
from lifeboat.postgres.binaries import find_tools
from lifeboat.postgres.conn import PgEndpoint
from lifeboat.repo import layout
from lifeboat.repo.commit import (
    BackupResult,
    build_manifest,
    commit,
    lock_all,
    new_backup_id,
)
from lifeboat.repo.manifest import GLOBALS_FORMAT, Evidence, PostgresLogicalDetails
from lifeboat.repo.objects import Targets, write_plain
from lifeboat.wal.cluster_guard import confirm_for_backup

log = logging.getLogger(__name__)

DUMP_OBJECT = "dump.zst"
GLOBALS_OBJECT = "globals.sql.zst"


def backup_logical(
    ctx: Context,
    source_name: str,
    *,
    endpoint: PgEndpoint | None = None,
    labels: dict[str, str] | None = None,
    accept_new_cluster: bool = False,
) -> BackupResult:
    """Back up one database of a source. `endpoint` overrides the source's DSN (a restore's
    safety backup of its target uses it: that server need not be the source's cluster, so
    it is not checked against the source's cluster record, nor recorded)."""
    source = ctx.postgres_source(source_name, "a logical backup")
    own_server = endpoint is None
    repos = ctx.repositories_for(source_name)
    encryptor = ctx.encryptor()
    endpoint = endpoint or PgEndpoint.from_dsn(source.dsn, source.password_file)
    compression = ctx.config.compression

    with lock_all(repos, source_name, f"backup of {source_name}") as prepared:
        repos, removed = prepared.repos, prepared.removed
        targets = Targets(repos, prepared.failed)
        backup, started = new_backup_id(repos, source_name)
        conn = endpoint.connect(autocommit=True)
        try:
            server = logical.server_info(conn)
            if own_server:
                confirm_for_backup(
                    repos, source_name, conn, endpoint, "logical", accept_new_cluster
                )
            tools = find_tools(
                logical.server_major(server), source.pg_bin_dir, tools=("pg_dump", "pg_dumpall")
            )
            # the roles first: a backup that cannot carry them fails (see docs/logical-backups.md)
            globals_key = layout.object_key(source_name, backup, GLOBALS_OBJECT + encryptor.suffix)
            stored_globals = targets.take(
                write_plain(
                    targets.live,
                    globals_key,
                    roles.GlobalsStream(tools, endpoint, source.globals_with_passwords),
                    encryptor,
                    compression,
                    GLOBALS_FORMAT,
                )
            )
            snapshot = logical.export_snapshot(conn)
            properties = dbprops.read_properties(conn)  # in the dump's snapshot
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
                    stored_object = targets.take(
                        write_plain(
                            targets.live,
                            key,
                            dump,
                            encryptor,
                            compression,
                            logical.DUMP_FORMAT,
                            advance,
                        )
                    )
            except BaseException:
                dump.kill()
                counter.join()
                targets.discard([globals_key])
                raise
            counter.join()
            outcome = evidence_box[0]
            if isinstance(outcome, BaseException):
                targets.discard([globals_key, key])
                if isinstance(outcome, LifeboatError):
                    raise outcome
                raise LifeboatError(f"counting rows for the manifest failed: {outcome}")
            conn.execute("ROLLBACK")
        finally:
            conn.close()

        manifest = build_manifest(
            source=source_name,
            backup_id=backup,
            started=started,
            details=PostgresLogicalDetails(
                server=server,
                database=endpoint.dbname,
                evidence=outcome,
                database_properties=properties,
                globals=stored_globals.name,
            ),
            objects=[stored_object, stored_globals],  # the dump first: restores read objects[0]
            compression_level=compression.level,
            encryptor=encryptor,
            tools={"pg_dump": tools.version, "pg_dump_major": str(tools.major)},
            labels=labels,
        )
        result = commit(manifest, targets.outcome(stored_object), removed)
        log.info(
            "backup %s/%s committed (%d bytes stored)", source_name, backup, stored_object.size
        )
        return result
