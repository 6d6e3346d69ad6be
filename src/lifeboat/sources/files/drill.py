"""A drill of a files backup: the whole archive restored into a private folder, every file
checked against the index (sha256, size, type), the members per backed-up path compared;
the folder removed whatever happens (and a killed drill's by the next one)."""

from __future__ import annotations

from lifeboat.context import Context
from lifeboat.errors import IntegrityError, RestoreError
from lifeboat.postgres.workspace import DrillWorkspace
from lifeboat.repo.drills import TableComparison
from lifeboat.repo.manifest import FilesDetails
from lifeboat.sources.base import DrillRequest, DrillRun, PhaseClock
from lifeboat.sources.files.restore import extract_backup


def drill_files(ctx: Context, request: DrillRequest, clock: PhaseClock) -> DrillRun:
    manifest = request.manifest
    details = manifest.details_as(FilesDetails)
    decryptor = ctx.decryptor_for(manifest)
    run = DrillRun(clock)
    with DrillWorkspace(request.work_dir, f"{manifest.source}-{manifest.id}") as space:
        target = space.path / "restore"
        run.target = "a temporary folder"
        try:
            with clock.phase("restore+verify"):
                restorer = extract_backup(request.repository, manifest, decryptor, target)
        except (IntegrityError, RestoreError) as exc:
            run.problems.append(exc.message)  # the stored archive or index is damaged
            return _finish(run, request)
        run.problems += restorer.problems.all() + restorer.refused.all()
        run.tables = [
            TableComparison(
                f"{path} (members)",
                restorer.expected_per_group.get(path, 0),
                restorer.per_group.get(path, 0),
            )
            for path in details.paths
        ]
        if not run.problems and all(table.ok for table in run.tables):
            clock.ready()
    return _finish(run, request)


def _finish(run: DrillRun, request: DrillRequest) -> DrillRun:
    """The data-loss window: the files were read from the backup's start on, so what changed
    after it may be missing."""
    run.restored_to(request.manifest.started_at, "backup start", request.started_at)
    return run
