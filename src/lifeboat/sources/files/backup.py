"""A files backup: the configured paths as one tar (PAX) archive, then their index, each
through sha256 -> zstd -> age/gpg -> sha256 into every repository at once."""

from __future__ import annotations

import logging
import os

from lifeboat.config.model import FilesSourceConfig
from lifeboat.context import Context
from lifeboat.errors import LifeboatError, UsageError
from lifeboat.repo import layout
from lifeboat.repo.commit import BackupResult, build_manifest, commit, lock_all, new_backup_id
from lifeboat.repo.manifest import FilesDetails
from lifeboat.repo.objects import Targets, write_plain
from lifeboat.sources.files.index import (
    ARCHIVE_FORMAT,
    ARCHIVE_OBJECT,
    INDEX_FORMAT,
    INDEX_OBJECT,
)
from lifeboat.sources.files.producer import ArchiveProducer, ProducerRequest
from lifeboat.sources.files.scratch import private_folder
from lifeboat.sources.files.select import archive_name

log = logging.getLogger(__name__)


def files_source(ctx: Context, name: str) -> FilesSourceConfig:
    source = ctx.source(name)
    if not isinstance(source, FilesSourceConfig):
        raise UsageError(f"source {name!r} is a {source.type} source, not a files source")
    return source


def missing_paths(source: FilesSourceConfig) -> list[str]:
    """The configured paths that are not there (a symlink counts: it is backed up as one)."""
    return [str(path) for path in source.paths if not os.path.lexists(path)]


def backup_files(ctx: Context, source_name: str) -> BackupResult:
    source = files_source(ctx, source_name)
    missing = missing_paths(source)
    if missing:
        raise LifeboatError(f"{source_name}: {', '.join(missing)}: no such file or directory")
    repos = ctx.repositories_for(source_name)
    encryptor = ctx.encryptor()
    compression = ctx.config.compression
    roots = [str(path) for path in source.paths]

    with lock_all(repos, source_name, f"backup of {source_name}") as prepared:
        targets = Targets(prepared.repos, prepared.failed)
        backup, started = new_backup_id(prepared.repos, source_name)
        archive_key = layout.object_key(source_name, backup, ARCHIVE_OBJECT + encryptor.suffix)
        index_key = layout.object_key(source_name, backup, INDEX_OBJECT + encryptor.suffix)
        # the index waits here while the archive is written
        with private_folder() as scratch:
            index_path = scratch / "index.jsonl"
            producer = ArchiveProducer(
                ProducerRequest(
                    roots=roots,
                    exclude=list(source.exclude),
                    one_file_system=source.one_file_system,
                    index=str(index_path),
                    tally=str(scratch / "tally.json"),
                ),
                scratch,
            )
            try:
                with ctx.reporter.task(f"backup {source_name}") as advance:
                    archive = targets.take(
                        write_plain(
                            targets.live,
                            archive_key,
                            producer,
                            encryptor,
                            compression,
                            ARCHIVE_FORMAT,
                            advance,
                        )
                    )
            finally:
                producer.kill()  # when the archive was not read to its end
            tally = producer.tally()
            try:
                with index_path.open("rb") as index_in:
                    index = targets.take(
                        write_plain(
                            targets.live, index_key, index_in, encryptor, compression, INDEX_FORMAT
                        )
                    )
            except BaseException:
                targets.discard([archive_key])
                raise

        for name in tally.changed:
            log.warning("%s %s while it was read", name, tally.changes.get(name, "changed"))
        for name, why in tally.skipped.items():
            log.warning("%s left out: %s", name, why)
        if tally.changed or tally.skipped:
            log.warning(
                "backup of %s: %d files changed or vanished while read, %d left out "
                "(named in the manifest's changed and skipped)",
                source_name,
                len(tally.changed),
                len(tally.skipped),
            )
        manifest = build_manifest(
            source=source_name,
            backup_id=backup,
            started=started,
            details=FilesDetails(
                paths=[archive_name(root) for root in roots],
                files=tally.files,
                directories=tally.directories,
                symlinks=tally.symlinks,
                total_bytes=tally.total_bytes,
                index=index.name,
                changed=tally.changed,
                skipped=tally.skipped,
            ),
            objects=[archive, index],  # the archive first: restores read objects[0]
            compression_level=compression.level,
            encryptor=encryptor,
            tools={},
        )
        result = commit(manifest, targets.outcome(archive), prepared.removed)
        log.info(
            "backup %s/%s committed: %d files, %d bytes stored",
            source_name,
            backup,
            tally.files,
            archive.size + index.size,
        )
        return result
