"""Files and directories behind the PathSource protocol (sources/base.py)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from lifeboat.repo.manifest import FilesDetails

if TYPE_CHECKING:
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
    from lifeboat.sources.files.restore import FilesRestoreOutcome


class FilesKind:
    """The configured paths as one tar (PAX) archive, with a per-file sha256 index."""

    @property
    def kind(self) -> str:
        return FilesDetails.KIND

    def backup(self, ctx: Context, source: str) -> BackupResult:
        from lifeboat.sources.files.backup import backup_files

        return backup_files(ctx, source)

    def restore(
        self, ctx: Context, source: str, request: PathRestoreRequest
    ) -> FilesRestoreOutcome:
        from lifeboat.sources.files.restore import restore_files

        return restore_files(ctx, source, request)

    def describe(self, manifest: Manifest) -> dict[str, Any]:
        details = manifest.details
        if not isinstance(details, FilesDetails):
            return {}
        return {
            "paths": details.paths,
            "files": details.files,
            "directories": details.directories,
            "symlinks": details.symlinks,
            "total_bytes": details.total_bytes,
            "changed": len(details.changed),
            "skipped": len(details.skipped),
        }

    def checks(self, ctx: Context, source: str) -> list[str]:
        """Each configured path is there and readable."""
        from lifeboat.sources.files.backup import files_source

        problems = []
        for path in files_source(ctx, source).paths:
            if not os.path.lexists(path):
                problems.append(f"{path}: no such file or directory")
            elif not os.access(path, os.R_OK, follow_symlinks=False):
                problems.append(f"{path}: not readable by this user")
        return problems

    def drill(self, ctx: Context, request: DrillRequest, clock: PhaseClock) -> DrillRun:
        from lifeboat.sources.files.drill import drill_files

        return drill_files(ctx, request, clock)

    def verify_deep(self, ctx: Context, repo: Repository, manifest: Manifest) -> list[str]:
        from lifeboat.sources.files.readback import check_backup

        return check_backup(repo, manifest, ctx.decryptor_for(manifest))


if TYPE_CHECKING:
    _k: PathSource = FilesKind()
