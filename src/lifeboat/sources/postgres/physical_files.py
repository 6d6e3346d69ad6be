"""A physical restore's I/O: the target folders prepared, a backup's files fetched and
extracted (or an incremental chain combined), tablespaces linked, pg_verifybackup's check,
and the first WAL files staged beside the data. physical_restore.py decides the order."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path

from lifeboat.context import Context
from lifeboat.errors import LifeboatError, RestoreError
from lifeboat.pipeline.crypto import Decryptor
from lifeboat.pipeline.tar.extract import TarExtractor
from lifeboat.postgres import wal
from lifeboat.postgres.binaries import PgTools
from lifeboat.postgres.physical import BASE_FORMAT
from lifeboat.postgres.server import postmaster_pid
from lifeboat.repo.catalog import Repository
from lifeboat.repo.manifest import Manifest, StoredObject, TablespaceEntry
from lifeboat.repo.objects import read_plain
from lifeboat.sources.postgres import incremental
from lifeboat.storage.base import Storage
from lifeboat.util.osuser import OsUser
from lifeboat.wal.archive import archived_segments, history_names
from lifeboat.wal.stage import fetch

log = logging.getLogger(__name__)

# the folder in the data directory the first WAL files are staged in
STAGED_WAL = "lifeboat_wal"
STAGED_SEGMENTS_AFTER_BACKUP = 8


def _base_object(manifest: Manifest) -> StoredObject:
    for obj in manifest.objects:
        if obj.format == BASE_FORMAT:
            return obj
    raise RestoreError(f"backup {manifest.id} holds no base backup archive")


def extract(
    ctx: Context,
    repo: Repository,
    manifest: Manifest,
    decryptor: Decryptor,
    into: Path,
    *,
    delta: bool = False,
    owner: OsUser | None = None,
    obj: StoredObject | None = None,
) -> TarExtractor:
    """Read one of a backup's tars (its base, unless obj names another) into a folder."""
    extractor = TarExtractor(
        into, delta=delta, owner=owner.owner if owner else None, keep={STAGED_WAL}
    )
    try:
        with ctx.reporter.task(f"restore {manifest.id} -> {into}") as advance:
            stored = obj or _base_object(manifest)
            read_plain(
                repo, manifest, stored, decryptor, extractor, advance, check_plain_digest=False
            )
        extractor.finish()
    except BaseException:
        extractor.abort()
        raise
    return extractor


def combine(
    ctx: Context,
    repo: Repository,
    backups: list[Manifest],
    decryptors: dict[str, Decryptor],
    pgdata: Path,
    pg_combinebackup: str,
    delta: bool,
) -> None:
    """Extract every backup of an incremental chain beside pgdata and let pg_combinebackup
    write the synthetic full backup, then move it into pgdata (with delta: copy only what
    differs). The chain is plaintext on disk while this runs (pg_combinebackup reads
    folders), in a 0700 folder removed afterwards."""
    staging = pgdata.parent / f".{pgdata.name}.lifeboat-chain"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700)
    try:
        folders = []
        for member in backups:
            folder = staging / member.id
            folder.mkdir(mode=0o700)
            extract(ctx, repo, member, decryptors[member.id], folder)
            folders.append(str(folder))
        combined = staging / "combined"
        result = subprocess.run(
            [pg_combinebackup, "--output", str(combined), *folders],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            detail = result.stderr.strip().splitlines()
            raise RestoreError(
                f"pg_combinebackup could not rebuild {backups[-1].id} from its chain: "
                + (detail[0] if detail else f"exit {result.returncode}")
            )
        if delta:
            _copy_changed(combined, pgdata)
        else:
            pgdata.rmdir()
            combined.rename(pgdata)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _copy_changed(source: Path, target: Path) -> None:
    """Make target a copy of source, writing only the chunks that differ."""
    extractor = TarExtractor(target, delta=True)
    reader = subprocess.Popen(
        ["tar", "--create", "--file=-", f"--directory={source}", "."], stdout=subprocess.PIPE
    )
    if reader.stdout is None:
        raise RestoreError("tar started without an output pipe")
    try:
        while chunk := reader.stdout.read(1 << 20):
            extractor.write(chunk)
        extractor.finish()
    except BaseException:
        reader.kill()
        extractor.abort()
        raise
    finally:
        reader.stdout.close()
        if reader.wait() != 0:
            raise RestoreError(f"reading the combined backup in {source} failed")


def refuse_non_empty(folders: list[tuple[Path, str]], delta: bool, force: bool) -> None:
    """A folder that holds something is rewritten only with --delta or --force."""
    for folder, what in folders:
        if folder.exists() and any(folder.iterdir()) and not (delta or force):
            raise RestoreError(
                f"{what} {folder} is not empty: pass --delta to rewrite only what changed, "
                "or --force to replace its contents"
            )


def prepare_folder(folder: Path, delta: bool, force: bool) -> None:
    """The folder to restore into: kept for delta (with no server running there), emptied
    with force. The caller has refused a non-empty folder without either."""
    if folder.exists() and any(folder.iterdir()):
        if delta:
            pid = postmaster_pid(folder)
            if pid is not None:
                raise RestoreError(f"a server (pid {pid}) is running in {folder}: stop it first")
        elif force:
            shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.chmod(0o700)


def lay_out(
    ctx: Context,
    repo: Repository,
    backups: list[Manifest],
    decryptors: dict[str, Decryptor],
    pgdata: Path,
    spaces: list[tuple[TablespaceEntry, Path]],
    tools: PgTools,
    *,
    delta: bool,
    owner: OsUser | None,
) -> int:
    """Put the files of the newest of backups (its chain combined) into pgdata and its
    tablespaces' folders, with the first WAL files recovery asks for staged beside them;
    returns how many were staged."""
    manifest = backups[-1]
    staged_wal = pgdata / STAGED_WAL
    shutil.rmtree(staged_wal, ignore_errors=True)  # an earlier restore's, with --delta
    if len(backups) > 1:
        # pg_combinebackup wants an empty target: a chain's WAL is staged after it
        combine(ctx, repo, backups, decryptors, pgdata, tools.path("pg_combinebackup"), delta)
        return stage_wal(ctx, repo.storage, manifest.source, manifest, staged_wal)
    # WAL is staged while the files are laid out: it is not in the backup, and the
    # extraction keeps the folder
    stager = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stage")
    staging: Future[int] = stager.submit(
        stage_wal, ctx, repo.storage, manifest.source, manifest, staged_wal
    )
    stager.shutdown(wait=False)
    try:
        _lay_out_one(ctx, repo, manifest, decryptors[manifest.id], pgdata, spaces, delta, owner)
    except BaseException:
        wait([staging])
        raise
    return staging.result()


def _lay_out_one(
    ctx: Context,
    repo: Repository,
    manifest: Manifest,
    decryptor: Decryptor,
    pgdata: Path,
    spaces: list[tuple[TablespaceEntry, Path]],
    delta: bool,
    owner: OsUser | None,
) -> None:
    extractor = extract(ctx, repo, manifest, decryptor, pgdata, delta=delta, owner=owner)
    log.info(
        "%d files: %d bytes written, %d bytes unchanged",
        extractor.files,
        extractor.bytes_written,
        extractor.bytes_unchanged,
    )
    for entry, place in spaces:
        obj = next(o for o in manifest.objects if o.name == entry.object)
        extract(ctx, repo, manifest, decryptor, place, delta=delta, owner=owner, obj=obj)
        link = pgdata / "pg_tblspc" / str(entry.oid)
        link.unlink(missing_ok=True)
        os.symlink(place, link)
        if owner is not None:
            owner.chown(link)
            os.chown(place, *owner.owner)
    if not (pgdata / "backup_manifest").exists():
        # with extra tablespaces pg_basebackup writes it beside the tars, not in base.tar
        with open(pgdata / "backup_manifest", "wb") as handle:
            obj = incremental.manifest_object(manifest)
            read_plain(repo, manifest, obj, decryptor, handle)


def verify_files(pg_verifybackup: str, pgdata: Path, combined: bool) -> None:
    """pg_verifybackup over the laid-out files. A single backup's stream was checked on the
    way in (stored sha256, age, zstd's content checksum): checking that each file is there
    with its size is enough. A combined chain gets the full checksum pass."""
    skip_checksums = [] if combined else ["--skip-checksums"]
    verified = subprocess.run(
        [
            pg_verifybackup,
            "--no-parse-wal",
            *skip_checksums,
            f"--ignore={STAGED_WAL}",
            "--quiet",
            str(pgdata),
        ],
        capture_output=True,
        text=True,
    )
    if verified.returncode != 0:
        raise RestoreError(f"pg_verifybackup rejects the restored files: {verified.stderr.strip()}")


def stage_wal(ctx: Context, storage: Storage, source: str, manifest: Manifest, folder: Path) -> int:
    """Download, before the server starts, what recovery asks for first: every timeline
    history file and the backup's own segments plus a few after them, so the first
    restore_command calls are a copy. Later files come through wal-fetch (and its prefetch).
    The files are checked against their checksums like any fetch; returns how many."""
    span = manifest.physical
    if span is None:
        raise RestoreError(f"backup {manifest.id} is not a physical backup")
    size = span.segment_size
    archived = archived_segments(storage, source, size).get(span.timeline, set())
    first = wal.Segment.parse(span.start_wal, size).number
    last = wal.Segment.parse(span.stop_wal, size).number + STAGED_SEGMENTS_AFTER_BACKUP
    names = history_names(storage, source) + [
        wal.Segment(span.timeline, n).name(size) for n in range(first, last + 1) if n in archived
    ]
    if not names:
        return 0
    folder.mkdir(mode=0o700, exist_ok=True)
    decryptor_for = ctx.decryptor

    def download(name: str) -> bool:
        try:
            fetch(storage, source, name, folder / name, decryptor_for, allow_stream_partial=False)
            return True
        except LifeboatError as exc:
            # left to wal-fetch, which fails recovery there if recovery really needs it
            log.warning("not staging %s: %s", name, exc)
            return False

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="stage-wal") as pool:
        staged = sum(pool.map(download, names))
    log.info("staged %d WAL files for recovery in %s", staged, folder)
    return staged
