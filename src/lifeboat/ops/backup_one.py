"""One source's backup as `lifeboat backup SOURCE` runs and reports it: the kind chosen by
the registry, the backup, the configuration noted in the audit trail, the summary printed
for --json, and the notification it sends. `backup --all` (ops/backup_many.py) runs the
same for each source."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lifeboat.notify import outcomes
from lifeboat.notify.event import Event

if TYPE_CHECKING:
    from lifeboat.context import Context
    from lifeboat.sources.registry import BackupOptions


@dataclass(frozen=True)
class SourceBackup:
    """A backup that was committed (in every repository of the source, or some)."""

    source: str
    backup_type: str
    # the manifest's summary with the repositories, as `backup --json` prints it
    summary: dict[str, Any]
    # repository -> why it did not get the backup (the others hold it)
    failed: dict[str, str]

    def event(self) -> Event:
        """The notification `backup SOURCE` sends: succeeded, or failed for a repository
        that did not get it."""
        if self.failed:
            return outcomes.backup_failed(
                self.source, missed(self.failed), backup_type=self.backup_type
            )
        return outcomes.backup_succeeded(self.source, self.summary)


def missed(failed: dict[str, str]) -> str:
    """The first repository that did not get a backup, as one line."""
    name, why = next(iter(failed.items()))
    return f"repository {name} did not get the backup: {why}"


def back_up(
    ctx: Context, source: str, options: BackupOptions, notify: bool = False
) -> SourceBackup:
    """Back up the configured source as options ask; raises as the kind does. notify:
    send the notification `backup SOURCE` sends (the daemon sends its own), a failure's
    included (not a usage error's: nothing was tried)."""
    from lifeboat.notify.deliver import announce, failure_announced
    from lifeboat.ops.audit import note_config
    from lifeboat.sources.registry import backup_kind, backup_type_of

    config = ctx.source(source)
    chosen = backup_kind(source, config, options)
    backup_type = backup_type_of(config, options.backup_type)
    if notify:
        with failure_announced(
            ctx.config, lambda line: outcomes.backup_failed(source, line, backup_type=backup_type)
        ):
            result = chosen.backup(ctx, source)
    else:
        result = chosen.backup(ctx, source)
    note_config(ctx, result.repositories, source)
    summary = {
        **result.manifest.summary(),
        "repository": result.repository,
        "repositories": result.repositories,
        "failed_repositories": result.failed,
        "removed_leftovers": result.removed_leftovers,
    }
    done = SourceBackup(source, backup_type, summary, result.failed)
    if notify:
        announce(ctx.config, done.event())
    return done
