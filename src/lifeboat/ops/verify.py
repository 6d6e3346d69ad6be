"""Verification: stored bytes against the manifest (no key), and deep checks of the plaintext."""

from __future__ import annotations

import hashlib
import io
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lifeboat.config.model import PostgresSourceConfig
from lifeboat.context import Context
from lifeboat.errors import (
    DecryptionKeyError,
    IntegrityError,
    LifeboatError,
    NotInitialisedError,
    StorageError,
    ToolError,
)
from lifeboat.pipeline.crypto import Decryptor
from lifeboat.pipeline.stream import ProcessInput
from lifeboat.pipeline.tar.parser import TarMember, TarParser
from lifeboat.policy.retention import duration_text
from lifeboat.postgres import wal
from lifeboat.postgres.binaries import find_tools
from lifeboat.postgres.physical import BASE_FORMAT
from lifeboat.repo.catalog import Repository, age
from lifeboat.repo.manifest import GLOBALS_FORMAT, Manifest
from lifeboat.repo.objects import check_stored, read_plain
from lifeboat.storage.base import PermanentError, TransientError
from lifeboat.storage.capabilities import PendingUpload
from lifeboat.util.crc32c import Crc32c

log = logging.getLogger(__name__)


@dataclass
class BackupCheck:
    repository: str
    source: str
    backup: str
    deep: bool
    problems: list[str] = field(default_factory=list)
    # the check could not be completed (storage unreachable, no key, missing tool): its
    # problems say nothing about the backup itself
    inconclusive: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "source": self.source,
            "id": self.backup,
            "deep": self.deep,
            "ok": self.ok,
            "problems": self.problems,
        }


@dataclass
class VerifyReport:
    checks: list[BackupCheck] = field(default_factory=list)
    # (repository, upload) of every unfinished upload found: a warning, not a failure
    unfinished_uploads: list[tuple[str, PendingUpload]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


class _Discard:
    def write(self, data: bytes) -> int:
        return len(data)


class _ArchiveLister(ProcessInput):
    """`pg_restore --list` reading the plaintext from stdin: proves pg_restore accepts it."""

    def failed(self) -> Exception:
        return IntegrityError(f"pg_restore cannot read the archive: {self.failure()}")


class ManifestFiles:
    """The files a backup_manifest lists, checked off as the backup's tars stream by."""

    def __init__(self, backup_manifest: bytes) -> None:
        try:
            files = json.loads(backup_manifest)["Files"]
            self.expected = {
                str(f["Path"]): (int(f["Size"]), f.get("Checksum-Algorithm"), f.get("Checksum"))
                for f in files
            }
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(f"the backup_manifest cannot be read: {exc}") from None
        self.problems: list[str] = []
        self.seen: set[str] = set()

    def archive(self, prefix: str = "") -> ArchiveChecker:
        """A sink for one tar; prefix is where its members sit in the data directory."""
        return ArchiveChecker(self, prefix)

    def finish(self) -> list[str]:
        missing = sorted(set(self.expected) - self.seen)
        if missing:
            self.problems.append(
                f"{len(missing)} files of the backup_manifest are missing, e.g. {missing[0]}"
            )
        return self.problems


class _ManifestCrc32c(Crc32c):
    """CRC32C as a backup_manifest writes it: the 4 bytes in the server's (little-endian)
    byte order, in hex."""

    def hexdigest(self) -> str:
        return self.digest("little").hex()


def manifest_checksum(algorithm: str) -> Any:
    """A hasher for one of the algorithms pg_basebackup's --manifest-checksums names."""
    if algorithm == "CRC32C":
        return _ManifestCrc32c()
    if algorithm in {"SHA224", "SHA256", "SHA384", "SHA512"}:
        return hashlib.new(algorithm.lower())
    raise IntegrityError(f"the backup_manifest uses an unknown checksum algorithm {algorithm!r}")


class ArchiveChecker(TarParser):
    """Checks every file of one tar against the backup_manifest (size and checksum), as
    pg_verifybackup does on disk, without writing anything."""

    def __init__(self, files: ManifestFiles, prefix: str) -> None:
        super().__init__()
        self.files = files
        self.prefix = prefix
        self._name = ""
        self._size = 0
        self._hash: Any = None

    def write(self, data: bytes) -> int:
        self.feed(memoryview(data))
        return len(data)

    def member(self, member: TarMember) -> None:
        self._name = self.prefix + member.name
        self._size = 0
        self._hash = None
        if not member.is_file or self._name == "backup_manifest":
            return
        self.files.seen.add(self._name)
        wanted = self.files.expected.get(self._name)
        if wanted is None:
            self.files.problems.append(
                f"{self._name} is in the backup but not in its backup_manifest"
            )
        elif wanted[1]:
            self._hash = manifest_checksum(wanted[1])

    def data(self, piece: memoryview) -> None:
        self._size += len(piece)
        if self._hash is not None:
            self._hash.update(piece)

    def member_end(self) -> None:
        wanted = self.files.expected.get(self._name)
        if wanted is None or self._name not in self.files.seen:
            return
        if self._size != wanted[0]:
            self.files.problems.append(
                f"{self._name}: {self._size} bytes, backup_manifest says {wanted[0]}"
            )
        elif self._hash is not None and self._hash.hexdigest() != wanted[2]:
            self.files.problems.append(f"{self._name}: checksum does not match the backup_manifest")


def _check_physical_deep(
    ctx: Context, repo: Repository, manifest: Manifest, decryptor: Decryptor
) -> list[str]:
    """Every file of the base backup against its backup_manifest; the incremental chain."""
    from lifeboat.sources.postgres import incremental

    problems = []
    try:
        incremental.chain(repo, manifest)
    except LifeboatError as exc:
        problems.append(str(exc))
    archives = [(o, "") for o in manifest.objects if o.format == BASE_FORMAT]
    assert manifest.physical is not None
    for space in manifest.physical.tablespaces:
        obj = next((o for o in manifest.objects if o.name == space.object), None)
        if obj is None:
            problems.append(f"the object of tablespace {space.name} is missing from the manifest")
        else:
            archives.append((obj, f"pg_tblspc/{space.oid}/"))
    try:
        manifest_obj = incremental.manifest_object(manifest)
    except LifeboatError:
        # taken before Lifeboat kept the backup_manifest beside the archive: the stream
        # checksums are all there is
        for obj, _ in archives:
            with ctx.reporter.task(f"verify {manifest.source}/{manifest.id}") as advance:
                read_plain(repo, manifest, obj, decryptor, _Discard(), advance)
        return problems
    captured = io.BytesIO()
    read_plain(repo, manifest, manifest_obj, decryptor, captured)
    files = ManifestFiles(captured.getvalue())
    for obj, prefix in archives:
        with ctx.reporter.task(f"verify {manifest.source}/{manifest.id}") as advance:
            read_plain(repo, manifest, obj, decryptor, files.archive(prefix), advance)
    return problems + files.finish()


def _check_one(ctx: Context, repo: Repository, manifest: Manifest, deep: bool) -> BackupCheck:
    check = BackupCheck(repo.name, manifest.source, manifest.id, deep)
    check.problems = _problems(ctx, repo, manifest, deep, check)
    return check


OPERATIONAL_ERRORS = (TransientError, PermanentError, DecryptionKeyError, ToolError)


def _problems(
    ctx: Context, repo: Repository, manifest: Manifest, deep: bool, check: BackupCheck
) -> list[str]:
    problems = []
    if manifest.physical is not None:
        from lifeboat.wal.archive import archived_segments, continuity_problems

        span = manifest.physical
        size = span.segment_size
        problems += continuity_problems(
            archived_segments(repo.storage, manifest.source, size),
            span.timeline,
            wal.Segment.parse(span.start_wal, size).number,
            wal.Segment.parse(span.stop_wal, size).number,
            size,
        )
    if deep and not manifest.postgres:
        return problems + _other_kind_deep(ctx, repo, manifest, check)
    for obj in manifest.objects:
        try:
            if not deep:
                check_stored(repo, manifest, obj)
                continue
            decryptor = ctx.decryptor_for(manifest)
            source = ctx.config.sources.get(manifest.source)
            if obj.format == GLOBALS_FORMAT:
                # a SQL script: its plaintext sha256 is the whole check
                read_plain(repo, manifest, obj, decryptor, _Discard())
                continue
            if manifest.physical is not None:
                if obj.format == BASE_FORMAT:
                    problems += _check_physical_deep(ctx, repo, manifest, decryptor)
                continue
            tools = find_tools(
                int(manifest.tool.get("pg_dump_major", "0")),
                source.pg_bin_dir if isinstance(source, PostgresSourceConfig) else None,
                tools=("pg_restore",),
            )
            lister = _ArchiveLister([tools.path("pg_restore"), "--list"])
            try:
                with ctx.reporter.task(f"verify {manifest.source}/{manifest.id}") as advance:
                    read_plain(repo, manifest, obj, decryptor, lister, advance)
            except BaseException:
                lister.kill()
                raise
            lister.finish()
        except LifeboatError as exc:
            problems.append(str(exc))
            if isinstance(exc, OPERATIONAL_ERRORS):
                check.inconclusive = True
    return problems


def _other_kind_deep(
    ctx: Context, repo: Repository, manifest: Manifest, check: BackupCheck
) -> list[str]:
    """A backup of a kind besides PostgreSQL's, read back and checked by its kind."""
    from lifeboat.sources.registry import deep_verifier

    try:
        ctx.decryptor_for(manifest)  # a key that cannot open it is told before any read
        return deep_verifier(manifest).verify_deep(ctx, repo, manifest)
    except LifeboatError as exc:
        if isinstance(exc, OPERATIONAL_ERRORS):
            check.inconclusive = True
        return [str(exc)]


WAL_ARCHIVE_CHECK = "wal-archive"


def _check_wal(ctx: Context, repo: Repository, source: str) -> BackupCheck | None:
    """Every archived WAL file decrypted and checked against its plaintext sha256; None
    when the source has no WAL archive."""
    from lifeboat.wal.archive import check_archive

    check = BackupCheck(repo.name, source, WAL_ARCHIVE_CHECK, deep=True)
    checked, check.problems = check_archive(repo.storage, source, ctx.decryptor)
    if not checked:
        return None
    log.info("%s: %d archived WAL files checked", source, checked)
    for problem in check.problems:
        log.error("%s WAL archive: %s", source, problem)
    return check


def verify(
    ctx: Context, source: str | None = None, deep: bool = False, repository: str | None = None
) -> VerifyReport:
    """Every backup (of source) in every configured repository, copy targets included, or
    in `repository` alone."""
    report = VerifyReport()
    repos = ctx.repositories_to_read(source, repository)
    for repo in repos:
        try:
            repo.ensure_initialised()
        except LifeboatError as exc:
            if not ctx.may_pass_over(source, repository, repo):
                raise
            if not isinstance(exc, NotInitialisedError):  # else: another source's repository
                # a copy that cannot be read is what verify is there to notice
                log.error("repository %s cannot be read: %s", repo.name, exc.message)
                report.checks.append(
                    BackupCheck(
                        repo.name,
                        source or "",
                        "repository",
                        deep,
                        [f"cannot be read: {exc.message}"],
                        inconclusive=True,
                    )
                )
            continue
        sources = [source] if source else repo.sources()
        for name in sources:
            for backup in repo.committed_ids(name):
                try:
                    manifest = repo.load_manifest(name, backup)
                except LifeboatError as exc:
                    check = BackupCheck(repo.name, name, backup, deep, [str(exc)])
                    check.inconclusive = not isinstance(exc, IntegrityError)
                else:
                    check = _check_one(ctx, repo, manifest, deep)
                for problem in check.problems:
                    log.error("%s/%s: %s", name, backup, problem)
                if not check.inconclusive:
                    _record(repo, check)
                report.checks.append(check)
            wal_check = _check_wal(ctx, repo, name) if deep else None
            if wal_check is not None:
                report.checks.append(wal_check)
        report.unfinished_uploads += [(repo.name, u) for u in _unfinished_uploads(repo)]
    return report


def _unfinished_uploads(repo: Repository) -> list[PendingUpload]:
    """Warn about each upload a killed writer left: it takes space, and it goes with the
    next backup, copy or prune of its source once older than the grace period."""
    try:
        uploads = repo.pending_uploads()
    except StorageError as exc:
        log.warning("cannot look for unfinished uploads in %s: %s", repo.name, exc)
        return []
    for upload in uploads:
        size = f", {upload.size} bytes" if upload.size else ""
        log.warning(
            "%s: unfinished upload of %s, %s old%s (left by a killed writer; removed by "
            "the next backup, copy or prune of its source once older than %s)",
            repo.name,
            upload.key,
            age(upload),
            size,
            duration_text(repo.upload_grace),
        )
    return uploads


def _record(repo: Repository, check: BackupCheck) -> None:
    """The outcome, in the repository, for prune: a backup whose newest verification failed
    counts for no retention rule."""
    from lifeboat.repo import audit
    from lifeboat.repo.records import actor, check_key, write_record

    now = datetime.now(UTC)
    body = {**check.summary(), "by": actor(), "at": now.isoformat()}
    try:
        key = write_record(repo.storage, check_key(check.source, check.backup, now, check.ok), body)
        audit.append_or_log(
            repo.storage,
            "verify",
            source=check.source,
            backup=check.backup,
            details={"ok": check.ok, "deep": check.deep, "problems": check.problems},
            record=key,
        )
    except StorageError as exc:
        log.warning("cannot record the verification of %s/%s: %s", check.source, check.backup, exc)
