"""SQLite databases behind the PathSource protocol (sources/base.py): backed up as one
consistent snapshot, restored to a file, drilled and deeply verified by decrypting the
snapshot into a private temporary file and checking it against the backup's evidence."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifeboat.errors import IntegrityError, LifeboatError
from lifeboat.repo.drills import CheckResult, TableComparison
from lifeboat.repo.fetch import fetched, require_free_space
from lifeboat.repo.manifest import SqliteDetails
from lifeboat.sources.sqlite import database, snapshot

if TYPE_CHECKING:
    from lifeboat.config.model import DrillCheckConfig
    from lifeboat.context import Context
    from lifeboat.repo.catalog import Repository
    from lifeboat.repo.commit import BackupResult
    from lifeboat.repo.manifest import Manifest
    from lifeboat.sources.base import (
        DrillRequest,
        DrillRun,
        PathRestoreRequest,
        PathSource,
        PhaseClock,
    )
    from lifeboat.sources.sqlite.restore import SqliteRestoreResult


class SqliteKind:
    """One SQLite database file."""

    @property
    def kind(self) -> str:
        return SqliteDetails.KIND

    def backup(self, ctx: Context, source: str) -> BackupResult:
        from lifeboat.sources.sqlite.backup import backup_sqlite

        return backup_sqlite(ctx, source)

    def restore(
        self, ctx: Context, source: str, request: PathRestoreRequest
    ) -> SqliteRestoreResult:
        from lifeboat.sources.sqlite.restore import restore_sqlite

        return restore_sqlite(ctx, source, request)

    def describe(self, manifest: Manifest) -> dict[str, Any]:
        details = manifest.details_as(SqliteDetails)
        return {
            "path": details.path,
            "tables": len(details.row_counts),
            "rows": sum(details.row_counts.values()),
            "journal_mode": details.journal_mode,
            "method": details.method,
            "sqlite_version": details.sqlite_version,
        }

    def checks(self, ctx: Context, source: str) -> list[str]:
        """The database opens read-only, is one, is not locked past the timeout, and the
        temporary folder has room for its snapshot."""
        from lifeboat.sources.sqlite.backup import sqlite_source

        config = sqlite_source(ctx, source)
        try:
            conn = database.open_source(config.path)
            try:
                size = database.when_free(
                    config.path,
                    config.busy_timeout,
                    lambda: (
                        int(database.pragma(conn, "page_count"))
                        * int(database.pragma(conn, "page_size"))
                    ),
                )
            finally:
                conn.close()
            require_free_space(snapshot.work_dir(), size, f"the snapshot of {config.path}")
        except LifeboatError as exc:
            return [exc.message]
        return []

    def drill(self, ctx: Context, request: DrillRequest, clock: PhaseClock) -> DrillRun:
        from lifeboat.sources.base import DrillRun

        manifest = request.manifest
        details = manifest.details_as(SqliteDetails)
        decryptor = ctx.decryptor_for(manifest)
        work = request.work_dir or snapshot.work_dir()
        run = DrillRun(clock, target=f"a temporary file in {work}")
        # the snapshot holds every commit from before the backup began
        run.restored_to(manifest.started_at, "snapshot", request.started_at)
        obj = manifest.objects[0]
        with contextlib.ExitStack() as stack:
            try:
                with clock.phase("restore"):
                    path = stack.enter_context(
                        fetched(request.repository, manifest, obj, decryptor, work)
                    )
            except IntegrityError as exc:
                run.problems.append(exc.message)  # the stored snapshot is damaged
                return run
            with clock.phase("verify"):
                check = database.check_copy(
                    path, details.row_counts, details.schema_sha256, request.depth == "quick"
                )
            run.problems += check.problems
            actual = check.facts.row_counts if check.facts else {}
            run.tables = [
                TableComparison(table, expected, actual.get(table))
                for table, expected in sorted(details.row_counts.items())
            ]
            if not check.problems:
                clock.ready()
            if request.checks:
                with clock.phase("checks"):
                    run.checks = [run_check(path, check) for check in request.checks]
        return run

    def verify_deep(self, ctx: Context, repo: Repository, manifest: Manifest) -> list[str]:
        details = manifest.details_as(SqliteDetails)
        decryptor = ctx.decryptor(manifest.encryption.method)
        obj = manifest.objects[0]
        with fetched(repo, manifest, obj, decryptor, snapshot.work_dir()) as path:
            check = database.check_copy(path, details.row_counts, details.schema_sha256)
        return [f"{manifest.source}/{manifest.id}: {problem}" for problem in check.problems]


def run_check(path: Path, check: DrillCheckConfig) -> CheckResult:
    """One drill check on the restored copy: its query returns one true value to pass."""
    began = time.monotonic()
    try:
        conn = database.open_copy(path)
        try:
            row = conn.execute(check.sql).fetchone()
        finally:
            conn.close()
    except (sqlite3.Error, LifeboatError) as exc:
        return CheckResult(check.name, False, str(exc), round(time.monotonic() - began, 3))
    value = row[0] if row else None
    return CheckResult(
        check.name, value in (1, True), repr(value), round(time.monotonic() - began, 3)
    )


if TYPE_CHECKING:
    _k: PathSource = SqliteKind()
