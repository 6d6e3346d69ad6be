"""A physical base backup: pg_basebackup's tar -> sha256 -> zstd -> age/gpg -> sha256 -> storage,
committed only once every WAL segment it needs is in the archive."""

from __future__ import annotations

import io
import logging
import shutil
import tempfile
import time
from pathlib import Path

from lifeboat.context import Context
from lifeboat.errors import ToolError
from lifeboat.pipeline.tar.sniff import TarSniffer
from lifeboat.postgres import logical, physical, wal
from lifeboat.postgres.binaries import PgTools, find_tools
from lifeboat.postgres.conn import PgEndpoint
from lifeboat.repo import layout
from lifeboat.repo.catalog import Repository
from lifeboat.repo.commit import (
    BackupResult,
    build_manifest,
    commit,
    lock_all,
    new_backup_id,
)
from lifeboat.repo.manifest import (
    Manifest,
    PostgresPhysicalDetails,
    Server,
    StoredObject,
    TablespaceEntry,
)
from lifeboat.repo.objects import Targets, write_plain
from lifeboat.sources.postgres import incremental
from lifeboat.storage.base import Storage
from lifeboat.wal.archive import is_archived
from lifeboat.wal.cluster_guard import confirm_for_backup

log = logging.getLogger(__name__)

BASE_OBJECT = "base.tar.zst"
DEFAULT_WAL_TIMEOUT = 120.0


ArchivingNotReadyError = physical.ArchivingNotReadyError


def require_archiving(facts: physical.ClusterFacts, endpoint: PgEndpoint, source_name: str) -> None:
    """A base backup is only restorable with its WAL: archiving must be on."""
    if facts.archive_mode == "off":
        raise ArchivingNotReadyError(
            f"archive_mode is off on {endpoint.describe()}: a physical backup needs WAL "
            f"archiving (see `lifeboat setup-archiving {source_name}`)"
        )


def wait_for_wal_everywhere(
    storages: dict[str, Storage],
    source: str,
    needed: list[wal.Segment],
    segment_size: int,
    timeout: float,
) -> dict[str, ArchivingNotReadyError]:
    """Wait until every repository has every segment; those still missing one when the
    time is up are returned, each with an error naming its first missing segment."""
    deadline = time.monotonic() + timeout
    pending = {name: [s.name(segment_size) for s in needed] for name in storages}
    while True:
        for name, storage in storages.items():
            pending[name] = [seg for seg in pending[name] if not is_archived(storage, source, seg)]
        late = {name: segments for name, segments in pending.items() if segments}
        if not late or time.monotonic() > deadline:
            return {
                name: ArchivingNotReadyError(
                    f"WAL segment {segments[0]} did not reach the archive within {timeout:.0f} "
                    "s: check archive_command and pg_stat_archiver (`lifeboat check`)"
                )
                for name, segments in late.items()
            }
        time.sleep(0.25)


def _incremental_base(
    ctx: Context, repos: list[Repository], source_name: str, server: Server, summarize_wal: bool
) -> tuple[Manifest, bytes]:
    """The parent backup and its backup_manifest, or a clear reason why not."""
    if server.version_num < incremental.MIN_SERVER_VERSION:
        raise incremental.IncrementalError(
            f"incremental backups need PostgreSQL 17 or later; the server runs {server.version}: "
            "take full physical backups"
        )
    if not summarize_wal:
        raise incremental.IncrementalError(
            "summarize_wal is off on the server: set summarize_wal = on (no restart needed) "
            "and take a full physical backup, then incrementals can follow"
        )
    repo = repos[0]
    parent = incremental.choose_parent(repo, source_name, server.system_identifier)
    for other in repos[1:]:
        if parent.id not in other.committed_ids(source_name):
            raise incremental.IncrementalError(
                f"the parent backup {parent.id} is in repository {repo.name} but not in "
                f"{other.name}: copy it there (`lifeboat copy --from {repo.name} --to "
                f"{other.name}`) or take a full physical backup"
            )
    enc = ctx.config.encryption
    has_key = parent.encryption.method == "gpg" or enc.age_identity_file is not None
    decryptor = ctx.decryptor(parent.encryption.method) if has_key else None
    return parent, incremental.parent_backup_manifest(repo, parent, decryptor)


def backup_physical(
    ctx: Context,
    source_name: str,
    *,
    wal_timeout: float = DEFAULT_WAL_TIMEOUT,
    incremental_backup: bool = False,
    accept_new_cluster: bool = False,
) -> BackupResult:
    source = ctx.postgres_source(source_name, "a physical backup")
    encryptor = ctx.encryptor()
    endpoint = PgEndpoint.from_dsn(source.dsn, source.password_file)

    with lock_all(
        ctx.repositories_for(source_name), source_name, f"physical backup of {source_name}"
    ) as prepared:
        repos, removed = prepared.repos, prepared.removed
        targets = Targets(repos, prepared.failed)
        backup, started = new_backup_id(repos, source_name)
        with endpoint.connect(autocommit=True) as conn:
            server = logical.server_info(conn)
            facts = physical.cluster_facts(conn)
            # before anything streams: the base backup's own WAL must be taken by wal-push
            confirm_for_backup(repos, source_name, conn, endpoint, "physical", accept_new_cluster)
        require_archiving(facts, endpoint, source_name)
        if facts.extra_tablespaces and incremental_backup:
            names = ", ".join(t.name for t in facts.extra_tablespaces)
            raise incremental.IncrementalError(
                f"incremental backups of clusters with extra tablespaces ({names}) are not "
                "supported: take full physical backups"
            )
        tools = find_tools(
            logical.server_major(server), source.pg_bin_dir, tools=("pg_basebackup",)
        )
        parent: Manifest | None = None
        with tempfile.TemporaryDirectory(prefix="lifeboat-incremental-") as scratch:
            parent_manifest_file: Path | None = None
            if incremental_backup:
                parent, parent_data = _incremental_base(
                    ctx, repos, source_name, server, facts.summarize_wal
                )
                parent_manifest_file = Path(scratch) / "parent_backup_manifest"
                parent_manifest_file.write_bytes(parent_data)
            if facts.extra_tablespaces:
                stored_objects, span, backup_manifest = _stream_with_tablespaces(
                    ctx, targets, source_name, backup, tools, endpoint, facts, wal_timeout
                )
            else:
                stored, span, backup_manifest = _stream_base_backup(
                    ctx,
                    targets,
                    source_name,
                    backup,
                    tools,
                    endpoint,
                    parent_manifest_file,
                    wal_timeout,
                )
                stored_objects = [stored]
        keys = [layout.object_key(source_name, backup, o.name) for o in stored_objects]
        keys.append(
            layout.object_key(
                source_name, backup, incremental.BACKUP_MANIFEST_OBJECT + encryptor.suffix
            )
        )
        try:
            manifest_stored = targets.take(
                write_plain(
                    targets.live,
                    keys[-1],
                    io.BytesIO(backup_manifest),
                    encryptor,
                    ctx.config.compression,
                    "pg_backup_manifest",
                )
            )
            size = facts.segment_size
            needed = list(wal.segments_between(span.timeline, span.start_lsn, span.stop_lsn, size))
            late = wait_for_wal_everywhere(
                {repo.name: repo.storage for repo in targets.live},
                source_name,
                needed,
                size,
                wal_timeout,
            )
            for name, error in late.items():
                targets.drop(name, error)
            if not targets.live:
                raise next(iter(late.values()))
        except BaseException:
            targets.discard(keys)
            raise
        # what a repository that dropped out holds of this backup is of no use
        targets.discard(keys, dropped_only=True)
        incremental.keep_local_copy(source_name, backup, backup_manifest)
        manifest = build_manifest(
            source=source_name,
            backup_id=backup,
            started=started,
            details=PostgresPhysicalDetails(
                server=server,
                timeline=span.timeline,
                start_lsn=wal.format_lsn(span.start_lsn),
                stop_lsn=wal.format_lsn(span.stop_lsn),
                start_wal=needed[0].name(size),
                stop_wal=needed[-1].name(size),
                segment_size=size,
                data_checksums=facts.data_checksums,
                parent=parent.id if parent else None,
                tablespaces=[
                    TablespaceEntry(
                        oid=t.oid,
                        name=t.name,
                        location=t.location,
                        object=tablespace_object(t.oid, encryptor.suffix),
                    )
                    for t in facts.extra_tablespaces
                ],
            ),
            objects=[*stored_objects, manifest_stored],
            compression_level=ctx.config.compression.level,
            encryptor=encryptor,
            tools={"pg_basebackup": tools.version, "pg_basebackup_major": str(tools.major)},
        )
        result = commit(manifest, targets.outcome(manifest_stored), removed)
        log.info(
            "%s backup %s/%s committed (%d bytes stored)",
            f"incremental (on {parent.id})" if parent else "physical",
            source_name,
            backup,
            sum(o.size for o in stored_objects),
        )
        return result


def _stream_base_backup(
    ctx: Context,
    targets: Targets,
    source_name: str,
    backup: str,
    tools: PgTools,
    endpoint: PgEndpoint,
    parent_manifest: Path | None,
    wal_timeout: float,
) -> tuple[StoredObject, physical.WalRange, bytes]:
    """pg_basebackup's tar into the repository; returns it, its WAL range and backup_manifest."""
    encryptor = ctx.encryptor()
    label = f"lifeboat {source_name}/{backup}"
    checksums = ctx.postgres_source(source_name).manifest_checksums
    stream = physical.BaseBackupStream(tools, endpoint, label, checksums, parent_manifest)
    sniffer = TarSniffer(stream, {"backup_manifest"})
    watchdog = physical.ArchiveWaitWatchdog(endpoint, label, stream, wal_timeout)
    key = layout.object_key(source_name, backup, BASE_OBJECT + encryptor.suffix)
    what = "incremental backup" if parent_manifest else "physical backup"
    try:
        with watchdog, ctx.reporter.task(f"{what} {source_name}") as advance:
            stored = targets.take(
                write_plain(
                    targets.live,
                    key,
                    sniffer,
                    encryptor,
                    ctx.config.compression,
                    physical.BASE_FORMAT,
                    advance,
                )
            )
    except BaseException:
        stream.kill()
        if watchdog.reason:
            raise ArchivingNotReadyError(watchdog.reason) from None
        raise
    backup_manifest = sniffer.members.get("backup_manifest")
    try:
        span = physical.wal_range(backup_manifest)
    except BaseException:
        targets.discard([key])
        raise
    assert backup_manifest is not None
    return stored, span, backup_manifest


def tablespace_object(oid: int, encryption_suffix: str) -> str:
    return f"tablespace-{oid}.tar.zst{encryption_suffix}"


def _stream_with_tablespaces(
    ctx: Context,
    targets: Targets,
    source_name: str,
    backup: str,
    tools: PgTools,
    endpoint: PgEndpoint,
    facts: physical.ClusterFacts,
    wal_timeout: float,
) -> tuple[list[StoredObject], physical.WalRange, bytes]:
    """One object per tablespace, each tar streamed through a named pipe."""
    from concurrent.futures import ThreadPoolExecutor

    encryptor = ctx.encryptor()
    source = ctx.postgres_source(source_name, "a physical backup")
    label = f"lifeboat {source_name}/{backup}"
    oids = [t.oid for t in facts.extra_tablespaces]
    names = {"base.tar": BASE_OBJECT + encryptor.suffix} | {
        f"{oid}.tar": tablespace_object(oid, encryptor.suffix) for oid in oids
    }
    with tempfile.TemporaryDirectory(prefix="lifeboat-basebackup-") as scratch:
        folder = Path(scratch) / "out"
        for attempt in range(3):
            try:
                process = physical.BaseBackupToFifos(
                    tools, endpoint, label, folder, oids, source.manifest_checksums
                )
                break
            except ToolError as exc:
                if "retry" not in str(exc) or attempt == 2:
                    raise
                shutil.rmtree(folder, ignore_errors=True)
        watchdog = physical.ArchiveWaitWatchdog(endpoint, label, process, wal_timeout)
        stored: list[StoredObject] = []
        try:
            with (
                watchdog,
                ctx.reporter.task(f"physical backup {source_name}") as advance,
                ThreadPoolExecutor(len(names), thread_name_prefix="tablespace") as pool,
            ):
                writing_to = targets.live
                futures = [
                    pool.submit(
                        write_plain,
                        writing_to,
                        layout.object_key(source_name, backup, object_name),
                        process.reader(archive),
                        encryptor,
                        ctx.config.compression,
                        physical.BASE_FORMAT
                        if archive == "base.tar"
                        else physical.TABLESPACE_FORMAT,
                        advance,
                    )
                    for archive, object_name in names.items()
                ]
                try:
                    stored = [targets.take(future.result()) for future in futures]
                except BaseException:
                    process.kill()
                    raise
                backup_manifest = process.finish()
        except BaseException:
            process.kill()
            targets.discard([layout.object_key(source_name, backup, n) for n in names.values()])
            if watchdog.reason:
                raise ArchivingNotReadyError(watchdog.reason) from None
            raise
    return stored, physical.wal_range(backup_manifest), backup_manifest
