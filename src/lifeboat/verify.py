"""Verification: stored bytes against the manifest (no key), and deep checks of the plaintext."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from lifeboat.context import Context
from lifeboat.errors import IntegrityError, LifeboatError
from lifeboat.objects import check_stored, read_plain
from lifeboat.pipeline.crypto import Recipient
from lifeboat.pipeline.stream import ProcessInput
from lifeboat.postgres import wal
from lifeboat.postgres.binaries import find_tools
from lifeboat.repo.catalog import Repository
from lifeboat.repo.manifest import Manifest

log = logging.getLogger(__name__)


@dataclass
class BackupCheck:
    repository: str
    source: str
    backup: str
    deep: bool
    problems: list[str] = field(default_factory=list)

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


def _check_one(ctx: Context, repo: Repository, manifest: Manifest, deep: bool) -> list[str]:
    problems = []
    if manifest.physical is not None:
        from lifeboat.wal_archive import archived_segments, continuity_problems

        span = manifest.physical
        size = span.segment_size
        problems += continuity_problems(
            archived_segments(repo.storage, manifest.source),
            span.timeline,
            wal.Segment.parse(span.start_wal, size).number,
            wal.Segment.parse(span.stop_wal, size).number,
        )
    for obj in manifest.objects:
        try:
            if not deep:
                check_stored(repo, manifest, obj)
                continue
            decryptor = ctx.decryptor(manifest.encryption.method)
            decryptor.check_can_decrypt(
                [Recipient(r["type"], r["id"]) for r in manifest.encryption.recipients]
            )
            source = ctx.config.sources.get(manifest.source)
            if manifest.physical is not None:
                with ctx.reporter.task(f"verify {manifest.source}/{manifest.id}") as advance:
                    read_plain(repo, manifest, obj, decryptor, _Discard(), advance)
                continue
            tools = find_tools(
                int(manifest.tool.get("pg_dump_major", "0")),
                source.pg_bin_dir if source else None,
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
    return problems


def verify(ctx: Context, source: str | None = None, deep: bool = False) -> VerifyReport:
    report = VerifyReport()
    repos = [ctx.repository_for(source)] if source else list(ctx.repositories.values())
    for repo in repos:
        repo.ensure_initialised()
        sources = [source] if source else repo.sources()
        for name in sources:
            for backup in repo.committed_ids(name):
                check = BackupCheck(repo.name, name, backup, deep)
                try:
                    manifest = repo.load_manifest(name, backup)
                except LifeboatError as exc:
                    check.problems.append(str(exc))
                else:
                    check.problems += _check_one(ctx, repo, manifest, deep)
                for problem in check.problems:
                    log.error("%s/%s: %s", name, backup, problem)
                report.checks.append(check)
    return report
