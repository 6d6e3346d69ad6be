"""`lifeboat restore SOURCE --to DIR [--path P]`: a files backup extracted under DIR, each
member checked against the backup's index as it is written (see extract.py for what is
refused)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lifeboat.context import Context
from lifeboat.errors import RestoreError, UsageError
from lifeboat.pipeline.crypto import Decryptor
from lifeboat.repo.catalog import Repository
from lifeboat.repo.choice import first_that_serves
from lifeboat.repo.manifest import FilesDetails, Manifest
from lifeboat.repo.objects import read_plain
from lifeboat.sources.base import PathRestoreRequest
from lifeboat.sources.files.backup import files_source
from lifeboat.sources.files.extract import (
    Restorer,
    is_empty_folder,
    normalise_selection,
    selected,
)
from lifeboat.sources.files.index import read_index
from lifeboat.sources.files.readback import fetched_index

log = logging.getLogger(__name__)


@dataclass
class FilesRestoreOutcome:
    source: str
    backup: str
    repository: str
    to: Path
    paths: tuple[str, ...]
    restored: int
    files: int
    directories: int
    symlinks: int
    bytes: int
    seconds: float
    changed_at_backup: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "backup": self.backup,
            "repository": self.repository,
            "to": str(self.to),
            "paths": list(self.paths),
            "restored": self.restored,
            "files": self.files,
            "directories": self.directories,
            "symlinks": self.symlinks,
            "bytes": self.bytes,
            "seconds": self.seconds,
            "changed_at_backup": self.changed_at_backup,
        }

    def lines(self) -> list[str]:
        what = ", ".join(self.paths) if self.paths else "everything"
        lines = [
            f"restored {what} of {self.source}/{self.backup} (repository {self.repository}) "
            f"into {self.to}: {self.files} files, {self.directories} folders, "
            f"{self.symlinks} symlinks, {self.bytes} bytes, each checked against the index, "
            f"in {self.seconds:.1f} s"
        ]
        if self.changed_at_backup:
            lines.append(
                f"note: {len(self.changed_at_backup)} files changed while the backup read them "
                "(kept as read): " + ", ".join(self.changed_at_backup[:5])
            )
        return lines


def choose_backup(
    ctx: Context, source: str, backup: str, repository: str | None
) -> tuple[Repository, Manifest]:
    def find(repo: Repository) -> Manifest:
        repo.ensure_initialised()
        manifest = repo.resolve(source, backup)
        if manifest.kind != "files":
            raise UsageError(f"backup {manifest.id} of {source} is a {manifest.kind} backup")
        return manifest

    return first_that_serves(ctx.repositories_to_read(source, repository), find)


def restore_files(ctx: Context, source: str, request: PathRestoreRequest) -> FilesRestoreOutcome:
    started = time.monotonic()
    files_source(ctx, source)
    selection = normalise_selection(request.paths)
    target = request.to
    if target.exists() and not target.is_dir():
        raise UsageError(f"--to {target}: not a folder")
    if not request.assume_yes and not is_empty_folder(target):
        raise UsageError(
            f"--to {target} is not empty: give --yes to restore into it (files of the "
            "backup replace those with the same names)"
        )
    repo, manifest = choose_backup(ctx, source, request.backup, request.repository)
    decryptor = ctx.decryptor_for(manifest)
    restorer = extract_backup(repo, manifest, decryptor, target, selection)
    failures = restorer.problems.all() + restorer.refused.all()
    if failures:
        for line in failures:
            log.error("%s", line)
        raise RestoreError(
            f"restore of {source}/{manifest.id} into {target}: {len(failures)} problems, "
            f"the rest is restored: {'; '.join(failures[:3])}"
        )
    counts = restorer.counts
    details = manifest.details_as(FilesDetails)
    return FilesRestoreOutcome(
        source=source,
        backup=manifest.id,
        repository=repo.name,
        to=target,
        paths=selection,
        restored=restorer.restored,
        files=counts.files,
        directories=counts.directories,
        symlinks=counts.symlinks,
        bytes=counts.total_bytes,
        seconds=round(time.monotonic() - started, 3),
        changed_at_backup=[name for name in details.changed if selected(name, selection)],
    )


def extract_backup(
    repo: Repository,
    manifest: Manifest,
    decryptor: Decryptor,
    target: Path,
    selection: tuple[str, ...] = (),
) -> Restorer:
    """The backup (or its selected paths) written under target and checked; the restorer
    tells what it restored and what went wrong. --path values the backup lacks are a usage
    error, before anything is written."""
    details = manifest.details_as(FilesDetails)
    with fetched_index(repo, manifest, decryptor) as index_path:
        if selection:
            found = {chosen: False for chosen in selection}
            for entry in read_index(index_path):
                for chosen in selection:
                    if selected(entry.path, (chosen,)):
                        found[chosen] = True
            lacking = [chosen for chosen, there in found.items() if not there]
            if lacking:
                raise UsageError(
                    f"--path {', '.join(lacking)}: not in backup {manifest.id} (its paths: "
                    f"{', '.join(details.paths)}; name them without or with the leading /)"
                )
        target.mkdir(parents=True, exist_ok=True)
        restorer = Restorer(read_index(index_path), target, selection, details.paths)
        try:
            # each file's content is checked against its sha256 in the index, the stream by
            # the stored bytes' sha256, age and zstd: a whole-archive hash adds nothing
            read_plain(
                repo, manifest, manifest.objects[0], decryptor, restorer, check_plain_digest=False
            )
        finally:
            restorer.abort()
        restorer.finish()
    if not selection:
        restorer.compare(details)
    return restorer
