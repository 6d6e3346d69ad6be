"""A physical base backup: pg_basebackup's tar -> sha256 -> zstd -> age/gpg -> sha256 -> storage,
committed only once every WAL segment it needs is in the archive."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from lifeboat import __version__
from lifeboat.backup import BackupResult, new_backup_id
from lifeboat.context import Context
from lifeboat.errors import LifeboatError
from lifeboat.objects import write_plain
from lifeboat.pipeline.tarsniff import TarSniffer
from lifeboat.postgres import logical, physical, wal
from lifeboat.postgres.binaries import find_tools
from lifeboat.postgres.conn import PgEndpoint
from lifeboat.repo import layout
from lifeboat.repo.lock import repository_lock
from lifeboat.repo.manifest import Compression, Encryption, Manifest, Physical
from lifeboat.storage.base import Storage
from lifeboat.wal_archive import is_archived

log = logging.getLogger(__name__)

BASE_OBJECT = "base.tar.zst"
DEFAULT_WAL_TIMEOUT = 120.0


ArchivingNotReadyError = physical.ArchivingNotReadyError


def wait_for_wal(
    storage: Storage,
    source: str,
    needed: list[wal.Segment],
    segment_size: int,
    timeout: float,
) -> None:
    """Block until every segment is in the archive, or fail naming the first missing one."""
    deadline = time.monotonic() + timeout
    pending = [s.name(segment_size) for s in needed]
    while pending:
        pending = [name for name in pending if not is_archived(storage, source, name)]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise ArchivingNotReadyError(
                f"WAL segment {pending[0]} did not reach the archive within {timeout:.0f} s: "
                "check archive_command and pg_stat_archiver (`lifeboat check`)"
            )
        time.sleep(0.25)


def backup_physical(
    ctx: Context, source_name: str, *, wal_timeout: float = DEFAULT_WAL_TIMEOUT
) -> BackupResult:
    source = ctx.source(source_name)
    repo = ctx.repository_for(source_name)
    repo.ensure_initialised()
    encryptor = ctx.encryptor()
    endpoint = PgEndpoint.from_dsn(source.dsn, source.password_file)

    with repository_lock(repo.storage, source_name, f"physical backup of {source_name}"):
        removed = repo.remove_uncommitted(source_name)
        backup, started = new_backup_id(repo, source_name)
        with endpoint.connect(autocommit=True) as conn:
            server = logical.server_info(conn)
            facts = physical.cluster_facts(conn)
        if facts.archive_mode == "off":
            raise ArchivingNotReadyError(
                f"archive_mode is off on {endpoint.describe()}: a physical backup needs WAL "
                f"archiving (see `lifeboat setup-archiving {source_name}`)"
            )
        if facts.extra_tablespaces:
            raise LifeboatError(
                "physical backups of clusters with extra tablespaces "
                f"({', '.join(facts.extra_tablespaces)}) are not supported yet"
            )
        tools = find_tools(
            logical.server_major(server), source.pg_bin_dir, tools=("pg_basebackup",)
        )
        label = f"lifeboat {source_name}/{backup}"
        stream = physical.BaseBackupStream(tools, endpoint, label)
        sniffer = TarSniffer(stream, {"backup_manifest"})
        watchdog = physical.ArchiveWaitWatchdog(endpoint, label, stream, wal_timeout)
        key = layout.object_key(source_name, backup, BASE_OBJECT + encryptor.suffix)
        try:
            with watchdog, ctx.reporter.task(f"physical backup {source_name}") as advance:
                stored = write_plain(
                    repo,
                    key,
                    sniffer,
                    encryptor,
                    ctx.config.compression,
                    physical.BASE_FORMAT,
                    advance,
                )
        except BaseException:
            stream.kill()
            if watchdog.reason:
                raise ArchivingNotReadyError(watchdog.reason) from None
            raise
        span = stream.wal_range(sniffer.members.get("backup_manifest"))
        size = facts.segment_size
        needed = list(wal.segments_between(span.timeline, span.start_lsn, span.stop_lsn, size))
        try:
            wait_for_wal(repo.storage, source_name, needed, size, wal_timeout)
        except BaseException:
            repo.storage.delete(key)
            raise
        manifest = Manifest(
            id=backup,
            source=source_name,
            type="physical",
            started_at=started,
            finished_at=datetime.now(UTC),
            database="",
            server=server,
            tool={
                "lifeboat": __version__,
                "pg_basebackup": tools.version,
                "pg_basebackup_major": str(tools.major),
            },
            compression=Compression(level=ctx.config.compression.level),
            encryption=Encryption(
                method=encryptor.method,
                recipients=[{"type": r.type, "id": r.id} for r in encryptor.recipients()],
            ),
            objects=[stored],
            physical=Physical(
                timeline=span.timeline,
                start_lsn=wal.format_lsn(span.start_lsn),
                stop_lsn=wal.format_lsn(span.stop_lsn),
                start_wal=needed[0].name(size),
                stop_wal=needed[-1].name(size),
                segment_size=size,
                data_checksums=facts.data_checksums,
            ),
        )
        repo.save_manifest(manifest)
        log.info(
            "physical backup %s/%s committed (%d bytes stored)", source_name, backup, stored.size
        )
        return BackupResult(manifest, repo.name, removed)
