"""Point-in-time recovery, the orchestration: pick a base backup (policy/recovery.py), lay
it out (physical_files.py), point recovery at the WAL archive (postgres/recovery.py) and,
with --start, start it and wait for recovery to end (postgres/server.py)."""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lifeboat.context import Context
from lifeboat.errors import RestoreError, ToolError, UsageError
from lifeboat.policy.recovery import RecoveryTarget, choose_base_backup, tablespace_targets
from lifeboat.postgres import wal
from lifeboat.postgres.binaries import find_tools
from lifeboat.postgres.recovery import configure_recovery, restore_command, write_tablespace_map
from lifeboat.postgres.server import UNREAD, PgCtl, log_last_lines, start_and_wait, stop_reason
from lifeboat.repo.catalog import Repository
from lifeboat.repo.choice import first_that_serves
from lifeboat.repo.manifest import Manifest
from lifeboat.sources.postgres import incremental
from lifeboat.sources.postgres.physical_files import (
    STAGED_WAL,
    lay_out,
    prepare_folder,
    refuse_non_empty,
    verify_files,
)
from lifeboat.sources.postgres.pitr_reach import Reach, plan_reach
from lifeboat.util.executable import lifeboat_executable
from lifeboat.util.osuser import NoServerUser, OsUser, server_user

# restore_physical takes a RecoveryTarget: its callers find it here too
__all__ = ["LOG_LINES_SHOWN", "RESTORE_LOG", "PitrResult", "RecoveryTarget", "restore_physical"]

log = logging.getLogger(__name__)

# the restored server's log, in its data directory (with --start)
RESTORE_LOG = "lifeboat-restore.log"
LOG_LINES_SHOWN = 10


@dataclass
class PitrResult:
    manifest: Manifest
    pgdata: Path
    # how far the archive takes recovery, and the target it was configured with
    reach: Reach
    started: bool
    seconds: float
    # the last replayed commit's time and the last replayed LSN (with --start)
    recovered_to: str | None = None
    recovered_lsn: str | None = None
    # False when the restored server would not let restore in to read them
    recovered_point_read: bool = True
    # recovery ended before the WAL the archive holds (with --start)
    shortfall: str | None = None
    port: int | None = None
    repository: str = ""

    @property
    def target(self) -> RecoveryTarget:
        return self.reach.target

    def summary(self) -> dict[str, Any]:
        return {
            "backup": self.manifest.id,
            "source": self.manifest.source,
            "repository": self.repository,
            "pgdata": str(self.pgdata),
            "target": self.target.kind,
            "target_value": self.target.value,
            "started": self.started,
            "recovered_to": self.recovered_to,
            "recovered_to_lsn": self.recovered_lsn,
            "recovered_point_read": self.recovered_point_read,
            **self.reach.summary(),
            "shortfall": self.shortfall,
            "port": self.port,
            "seconds": round(self.seconds, 3),
        }


def restore_physical(
    ctx: Context,
    source_name: str,
    pgdata: Path,
    target: RecoveryTarget,
    *,
    backup: str | None = None,
    force: bool = False,
    delta: bool = False,
    tablespace_map: dict[str, Path] | None = None,
    archive_mode: Literal["preserve", "off"] = "preserve",
    start: bool = False,
    port: int | None = None,
    config_path: Path | None = None,
    wait_timeout: float = 600.0,
    repository: str | None = None,
    accept_gap: bool = False,
) -> PitrResult:
    began = time.monotonic()
    source = ctx.postgres_source(source_name, "a physical restore")

    def plan(repo: Repository) -> tuple[Manifest, list[Manifest], Reach]:
        repo.ensure_initialised()
        if backup:
            manifest = repo.load_manifest(source_name, backup)
            if manifest.physical is None:
                raise UsageError(f"backup {backup} is {manifest.type}, not a physical backup")
        else:
            manifest = choose_base_backup(repo.list_backups(source_name), target)

        def pg_waldump() -> str:
            major = int(manifest.tool.get("pg_basebackup_major", "0"))
            return find_tools(major, source.pg_bin_dir, tools=("pg_waldump",)).path("pg_waldump")

        reach = plan_reach(
            repo.storage,
            source_name,
            manifest,
            target,
            ctx.decryptor,
            pg_waldump,
            accept_gap=accept_gap,
        )
        return manifest, incremental.chain(repo, manifest), reach

    repo, (manifest, backups, reach) = first_that_serves(
        ctx.repositories_to_read(source_name, repository), plan
    )
    log.info("restoring from repository %s", repo.name)
    # recovery fetches WAL where the backup came from: from the source's repositories in
    # order as the archive_command fills them, but from that one repository alone when it
    # was named, is a copy target, or is not the source's first because the first could
    # not serve (it may be gone: asking it at the end of the WAL would stop recovery
    # instead of ending it; wal-push gives every file to each of the source's own)
    pinned = repository is not None or repo != ctx.repository_for(source_name)
    decryptors = {}
    for member in backups:
        decryptor = ctx.decryptor_for(member)
        decryptors[member.id] = decryptor
    major = int(manifest.tool.get("pg_basebackup_major", "0"))
    needed_tools = ("pg_ctl", "pg_verifybackup") + (
        ("pg_combinebackup",) if len(backups) > 1 else ()
    )
    tools = find_tools(major, source.pg_bin_dir, tools=needed_tools)

    pgdata = pgdata.absolute()
    spaces = tablespace_targets(manifest, tablespace_map or {})
    refuse_non_empty(
        [(pgdata, "the data directory")]
        + [(place, f"the folder of tablespace {t.name}") for t, place in spaces],
        delta,
        force,
    )
    for folder in [pgdata, *(place for _, place in spaces)]:
        prepare_folder(folder, delta, force)

    phase = time.monotonic()
    owner = _cluster_owner()
    staged = lay_out(
        ctx, repo, backups, decryptors, pgdata, spaces, tools, delta=delta, owner=owner
    )
    log.info("laid out %s in %.1f s", pgdata, time.monotonic() - phase)
    phase = time.monotonic()
    verify_files(tools.path("pg_verifybackup"), pgdata, combined=len(backups) > 1)
    log.info("pg_verifybackup accepted %s in %.1f s", pgdata, time.monotonic() - phase)
    if spaces:
        write_tablespace_map(pgdata, [(entry.oid, place) for entry, place in spaces])

    command = restore_command(
        lifeboat_executable(),
        source_name,
        config_path=config_path,
        repository=repo.name if pinned else None,
        # the WAL staged beside the data costs a cp, not a Lifeboat start, per file
        staged_folder=STAGED_WAL if staged else None,
    )
    settings = {"restore_command": command, **reach.target.settings()}
    if port is not None:
        settings["port"] = str(port)
    if archive_mode == "off":
        # a copy restored for a test must not archive its new timeline into the source
        settings["archive_mode"] = "off"
    configure_recovery(
        pgdata, settings, f"added by lifeboat restore of {source_name}/{manifest.id}"
    )
    if owner is not None:
        owner.chown_tree(pgdata)

    result = PitrResult(
        manifest, pgdata, reach, started=False, seconds=0.0, port=port, repository=repo.name
    )
    if start:
        phase = time.monotonic()
        log_file = pgdata / RESTORE_LOG
        result.recovered_to, result.recovered_lsn = start_and_wait(
            PgCtl(tools.bin_dir, pgdata, owner, cwd=pgdata),
            log_file,
            action=reach.target.action,
            has_target=reach.target.has_target,
            port=port,
            timeout=wait_timeout,
            stopped=lambda what: _stopped(pgdata, log_file, what),
        )
        if result.recovered_to == UNREAD:
            result.recovered_to, result.recovered_point_read = None, False
        result.started = True
        if result.recovered_lsn is not None:
            short = reach.shortfall(wal.parse_lsn(result.recovered_lsn))
            if short:
                result.shortfall = f"{short} (see {pgdata / RESTORE_LOG})"
                log.error("%s", result.shortfall)
        log.info("recovery finished in %.1f s", time.monotonic() - phase)
        shutil.rmtree(pgdata / STAGED_WAL, ignore_errors=True)
    result.seconds = time.monotonic() - began
    return result


def _cluster_owner() -> OsUser | None:
    """Who the restored cluster belongs to: `postgres` when we are root."""
    try:
        return server_user()
    except NoServerUser as exc:
        raise ToolError(str(exc)) from None


def _stopped(pgdata: Path, log_file: Path, what: str) -> RestoreError:
    """The error for a restored server that stopped: one line with the reason its log gives
    (its first FATAL or PANIC), the log's last lines logged before it."""
    log_last_lines(log_file, LOG_LINES_SHOWN)
    reason = stop_reason(log_file)
    return RestoreError(
        f"the restored cluster in {pgdata} {what}"
        + (f": {reason}" if reason else "")
        + f" (see {log_file}); the data directory is left as it is for inspection: "
        "restore again with --force once the cause is fixed"
    )
