"""Point-in-time recovery: pick a base backup, lay it out, point recovery at the WAL archive."""

from __future__ import annotations

import logging
import os
import pwd
import re
import shlex
import shutil
import subprocess
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from lifeboat.context import Context
from lifeboat.errors import BackupNotFoundError, LifeboatError, RestoreError, UsageError
from lifeboat.pipeline.crypto import Decryptor, Recipient
from lifeboat.pipeline.tar.extract import TarExtractor
from lifeboat.postgres import wal
from lifeboat.postgres.binaries import find_tools
from lifeboat.postgres.pgcontrol import DB_IN_PRODUCTION, cluster_state
from lifeboat.postgres.physical import BASE_FORMAT
from lifeboat.repo import layout
from lifeboat.repo.catalog import Repository
from lifeboat.repo.choice import first_that_serves
from lifeboat.repo.manifest import Manifest, StoredObject, TablespaceEntry
from lifeboat.repo.objects import read_plain
from lifeboat.sources.postgres import incremental
from lifeboat.sources.postgres.pitr_reach import Reach, plan_reach
from lifeboat.storage.base import Storage
from lifeboat.util.executable import lifeboat_executable
from lifeboat.wal.archive import archived_segments

log = logging.getLogger(__name__)

# what _start_and_wait returns for the replayed time when it could not ask the server
UNREAD = "\0unread"

TargetKind = Literal["latest", "time", "lsn", "xid", "name", "immediate"]
Action = Literal["promote", "pause", "shutdown"]


@dataclass(frozen=True)
class RecoveryTarget:
    kind: TargetKind = "latest"
    value: str | None = None
    action: Action = "promote"
    timeline: str = "latest"

    def settings(self) -> dict[str, str]:
        """recovery_target_* settings for postgresql.auto.conf."""
        values: dict[str, str] = {"recovery_target_timeline": self.timeline}
        if self.kind == "immediate":
            values["recovery_target"] = "immediate"
        elif self.kind != "latest":
            assert self.value is not None
            values[f"recovery_target_{self.kind}"] = self.value
        if self.kind != "latest":
            values["recovery_target_action"] = self.action
        return values


def parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError:
        raise UsageError(
            f"--to-time {text!r} is not a time like '2026-03-03 14:30:00+00'"
        ) from None
    if moment.tzinfo is None:
        raise UsageError(f"--to-time {text!r} needs a time zone, e.g. +00")
    return moment


def choose_base_backup(manifests: list[Manifest], target: RecoveryTarget) -> Manifest:
    """The newest physical backup that recovery can start from and still reach target."""
    physical = sorted(
        (m for m in manifests if m.physical is not None), key=lambda m: layout.backup_order(m.id)
    )
    if target.kind == "time":
        assert target.value is not None
        moment = parse_time(target.value)
        physical = [m for m in physical if m.finished_at <= moment]
        why = f"finished before {target.value}"
    elif target.kind == "lsn":
        assert target.value is not None
        limit = wal.parse_lsn(target.value)
        physical = [m for m in physical if wal.parse_lsn(m.physical.stop_lsn) <= limit]  # type: ignore[union-attr]
        why = f"ending at or before LSN {target.value}"
    else:
        why = "in the repository"
    if not physical:
        raise BackupNotFoundError(f"no physical backup {why}")
    return physical[-1]


def _base_object(manifest: Manifest) -> StoredObject:
    for obj in manifest.objects:
        if obj.format == BASE_FORMAT:
            return obj
    raise RestoreError(f"backup {manifest.id} holds no base backup archive")


def _extract(
    ctx: Context,
    repo: Repository,
    manifest: Manifest,
    decryptor: Decryptor,
    into: Path,
    *,
    delta: bool = False,
    owner: tuple[int, int] | None = None,
    obj: StoredObject | None = None,
) -> TarExtractor:
    extractor = TarExtractor(into, delta=delta, owner=owner, keep={STAGED_WAL})
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


def _combine(
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
            _extract(ctx, repo, member, decryptors[member.id], folder)
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
    assert reader.stdout is not None
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


def tablespace_targets(
    manifest: Manifest, mapping: dict[str, Path]
) -> list[tuple[TablespaceEntry, Path]]:
    """Where each extra tablespace goes: --tablespace-map NAME|OID=DIR, else where it was."""
    spaces = manifest.physical.tablespaces if manifest.physical else []
    known = {t.name for t in spaces} | {str(t.oid) for t in spaces}
    unknown = sorted(set(mapping) - known)
    if unknown:
        have = ", ".join(f"{t.name} ({t.oid})" for t in spaces) or "none"
        raise UsageError(
            f"--tablespace-map names {unknown[0]!r}, which backup {manifest.id} does not have "
            f"(its tablespaces: {have})"
        )
    return [
        (t, (mapping.get(t.name) or mapping.get(str(t.oid)) or Path(t.location)).absolute())
        for t in spaces
    ]


def _write_tablespace_map(pgdata: Path, spaces: list[tuple[TablespaceEntry, Path]]) -> None:
    """Recovery recreates pg_tblspc's links from tablespace_map: it must name the new places,
    or the restored cluster would write into the original cluster's folders."""
    lines = []
    for entry, place in spaces:
        if "\n" in str(place) or "\r" in str(place):
            raise UsageError(f"tablespace folder {str(place)!r} contains a line break")
        lines.append(f"{entry.oid} {place}\n")
    (pgdata / "tablespace_map").write_text("".join(lines), encoding="utf-8")


def _prepare_folder(folder: Path, delta: bool, force: bool) -> None:
    """The folder to restore into: kept for delta (with no server running there), emptied
    with force. The caller has refused a non-empty folder without either."""
    if folder.exists() and any(folder.iterdir()):
        if delta:
            _refuse_running_server(folder)
        elif force:
            shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.chmod(0o700)


def _refuse_running_server(pgdata: Path) -> None:
    pid = _running_postmaster(pgdata)
    if pid is not None:
        raise RestoreError(f"a server (pid {pid}) is running in {pgdata}: stop it first")


def _running_postmaster(pgdata: Path) -> int | None:
    """The pid of the postmaster running in pgdata, from its postmaster.pid (which it
    removes when it exits); None when none runs."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # another user's process: it runs
    return pid


STAGED_WAL = "lifeboat_wal"
# the restored server's log, in its data directory (with --start)
RESTORE_LOG = "lifeboat-restore.log"
STAGED_SEGMENTS_AFTER_BACKUP = 8


def stage_wal(ctx: Context, storage: Storage, source: str, manifest: Manifest, folder: Path) -> int:
    """Download, before the server starts, what recovery asks for first: every timeline
    history file and the backup's own segments plus a few after them, so the first
    restore_command calls are a copy. Later files come through wal-fetch (and its prefetch).
    The files are checked against their checksums like any fetch; returns how many."""
    from concurrent.futures import ThreadPoolExecutor

    from lifeboat.wal.archive import history_names
    from lifeboat.wal.stage import fetch

    span = manifest.physical
    assert span is not None
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


def _owner() -> tuple[int, int] | None:
    """Who the restored cluster belongs to: `postgres` when we are root."""
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


def _chown_tree(root: Path, owner: tuple[int, int]) -> None:
    os.chown(root, *owner)
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            os.chown(os.path.join(folder, name), *owner, follow_symlinks=False)


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
    source = ctx.source(source_name)

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
        decryptor = ctx.decryptor(member.encryption.method)
        decryptor.check_can_decrypt(
            [Recipient(r["type"], r["id"]) for r in member.encryption.recipients]
        )
        decryptors[member.id] = decryptor
    major = int(manifest.tool.get("pg_basebackup_major", "0"))
    needed_tools = ("pg_ctl", "pg_verifybackup") + (
        ("pg_combinebackup",) if len(backups) > 1 else ()
    )
    tools = find_tools(major, source.pg_bin_dir, tools=needed_tools)

    pgdata = pgdata.absolute()
    spaces = tablespace_targets(manifest, tablespace_map or {})
    for folder, what in [(pgdata, "the data directory")] + [
        (place, f"the folder of tablespace {t.name}") for t, place in spaces
    ]:
        if folder.exists() and any(folder.iterdir()) and not (delta or force):
            raise RestoreError(
                f"{what} {folder} is not empty: pass --delta to rewrite only what changed, "
                "or --force to replace its contents"
            )
    for folder in [pgdata, *(place for _, place in spaces)]:
        _prepare_folder(folder, delta, force)

    phase = time.monotonic()
    owner = _owner()
    staged_wal = pgdata / STAGED_WAL
    shutil.rmtree(staged_wal, ignore_errors=True)  # an earlier restore's, with --delta
    staging: Future[int] | None = None
    if len(backups) == 1:
        # WAL is staged while the files are laid out: it is not in the backup, and the
        # extraction keeps the folder. (pg_combinebackup wants an empty target: a chain's
        # WAL is staged after it.)
        stager = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stage")
        staging = stager.submit(stage_wal, ctx, repo.storage, source_name, manifest, staged_wal)
        stager.shutdown(wait=False)
        try:
            extractor = _extract(
                ctx, repo, manifest, decryptors[manifest.id], pgdata, delta=delta, owner=owner
            )
        except BaseException:
            wait([staging])
            raise
        log.info(
            "%d files: %d bytes written, %d bytes unchanged",
            extractor.files,
            extractor.bytes_written,
            extractor.bytes_unchanged,
        )
        for entry, place in spaces:
            obj = next(o for o in manifest.objects if o.name == entry.object)
            _extract(
                ctx,
                repo,
                manifest,
                decryptors[manifest.id],
                place,
                delta=delta,
                owner=owner,
                obj=obj,
            )
            link = pgdata / "pg_tblspc" / str(entry.oid)
            link.unlink(missing_ok=True)
            os.symlink(place, link)
            if owner is not None:
                os.chown(link, *owner, follow_symlinks=False)
                os.chown(place, *owner)
        if not (pgdata / "backup_manifest").exists():
            # with extra tablespaces pg_basebackup writes it beside the tars, not in base.tar
            with open(pgdata / "backup_manifest", "wb") as handle:
                obj = incremental.manifest_object(manifest)
                read_plain(repo, manifest, obj, decryptors[manifest.id], handle)
    else:
        _combine(ctx, repo, backups, decryptors, pgdata, tools.path("pg_combinebackup"), delta)

    log.info("laid out %s in %.1f s", pgdata, time.monotonic() - phase)
    phase = time.monotonic()
    # A single backup's stream was checked on the way in (stored sha256, age, zstd's content
    # checksum): checking that each file is there with its size is enough. A combined chain
    # gets the full checksum pass.
    skip_checksums = ["--skip-checksums"] if len(backups) == 1 else []
    verified = subprocess.run(
        [
            tools.path("pg_verifybackup"),
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
    log.info("pg_verifybackup accepted %s in %.1f s", pgdata, time.monotonic() - phase)
    if spaces:
        _write_tablespace_map(pgdata, spaces)

    lifeboat = lifeboat_executable()
    config_arg = f" --config {shlex.quote(str(config_path.absolute()))}" if config_path else ""
    if staging is not None:
        staged = staging.result()
    else:
        staged = stage_wal(ctx, repo.storage, source_name, manifest, staged_wal)
    repo_arg = f" --repo {shlex.quote(repo.name)}" if pinned else ""
    restore_command = (
        f"{shlex.quote(lifeboat)}{config_arg} wal-fetch{repo_arg} {shlex.quote(source_name)} %f %p"
    )
    if staged:
        # the WAL staged beside the data costs a cp, not a Lifeboat start, per file
        restore_command = f"cp {STAGED_WAL}/%f %p 2>/dev/null || {restore_command}"
    settings = {"restore_command": restore_command, **reach.target.settings()}
    if port is not None:
        settings["port"] = str(port)
    if archive_mode == "off":
        # a copy restored for a test must not archive its new timeline into the source
        settings["archive_mode"] = "off"
    with open(pgdata / "postgresql.auto.conf", "a", encoding="utf-8") as conf:
        conf.write(f"\n# added by lifeboat restore of {source_name}/{manifest.id}\n")
        for key, value in settings.items():
            escaped = value.replace("'", "''")
            conf.write(f"{key} = '{escaped}'\n")
    (pgdata / "recovery.signal").touch()
    for stale in ("postmaster.pid", "postmaster.opts"):
        (pgdata / stale).unlink(missing_ok=True)
    if owner is not None:
        _chown_tree(pgdata, owner)

    result = PitrResult(
        manifest, pgdata, reach, started=False, seconds=0.0, port=port, repository=repo.name
    )
    if start:
        phase = time.monotonic()
        replayed = _start_and_wait(tools.path("pg_ctl"), pgdata, reach.target, port, wait_timeout)
        result.recovered_to, result.recovered_lsn = replayed
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


def _as_owner(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _start_and_wait(
    pg_ctl: str, pgdata: Path, target: RecoveryTarget, port: int | None, timeout: float
) -> tuple[str | None, str | None]:
    """Start the restored cluster and wait until recovery ends (or pauses at the target);
    the last replayed commit's time and the last replayed LSN. A server that stops on the
    way (a damaged or unreadable WAL file, a target it cannot reach) is noticed as soon as
    its postmaster is gone, with the end of its log."""
    import psycopg

    log_file = pgdata / RESTORE_LOG
    started = subprocess.run(
        _as_owner([pg_ctl, "start", "-D", str(pgdata), "-l", str(log_file), "-w", "-t", "600"]),
        capture_output=True,
        text=True,
    )
    if started.returncode != 0 and target.action != "shutdown":
        raise _stopped(pgdata, log_file, "did not start")
    if target.action == "shutdown" and target.kind != "latest":
        _wait_for_shutdown_at_target(pgdata, log_file, timeout)
        return None, None
    if port is None:
        shown = subprocess.run(
            _as_owner([str(Path(pg_ctl).with_name("postgres")), "-D", str(pgdata), "-C", "port"]),
            capture_output=True,
            text=True,
        )
        port = int(shown.stdout.strip() or "5432")
    conninfo = f"host=127.0.0.1 port={port} dbname=postgres user=postgres connect_timeout=5"
    deadline = time.monotonic() + timeout
    refused_after_recovery = False
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                row = conn.execute(
                    "SELECT pg_is_in_recovery(), pg_last_xact_replay_timestamp()::text, "
                    "pg_last_wal_replay_lsn()::text"
                ).fetchone()
                assert row is not None
                in_recovery, replayed, lsn = row
                if not in_recovery:
                    return replayed, lsn
                if target.action == "pause":
                    state = conn.execute("SELECT pg_get_wal_replay_pause_state()").fetchone()
                    if state and state[0] == "paused":
                        return replayed, lsn
        except psycopg.OperationalError as exc:
            if _running_postmaster(pgdata) is None:
                raise _stopped(pgdata, log_file, "stopped during recovery") from None
            # the restored pg_hba.conf may not let this connection in (a password for
            # host connections): pg_control still tells that recovery has ended, twice
            # in a row so that a connection refused just before promotion does not count
            if cluster_state(pgdata) == DB_IN_PRODUCTION:
                if refused_after_recovery:
                    log.warning(
                        "recovery of %s has ended, but restore cannot connect to read where "
                        "(%s): check the recovered point yourself",
                        pgdata,
                        str(exc).strip().splitlines()[-1] if str(exc).strip() else exc,
                    )
                    return UNREAD, None  # pg_last_* could not be read
                refused_after_recovery = True
                continue
        time.sleep(0.1)
    raise LifeboatError(f"recovery of {pgdata} did not finish within {timeout:.0f} s")


def _wait_for_shutdown_at_target(pgdata: Path, log_file: Path, timeout: float) -> None:
    """Wait until the server, told to shut down at its target, is gone, and tell that
    shutdown from a stop at an error (a target it cannot reach, an unreadable WAL file):
    only the first leaves pg_control "shut down in recovery". pg_ctl has returned, so a
    postmaster that was started has written its postmaster.pid already."""
    from lifeboat.postgres.pgcontrol import shut_down_in_recovery

    deadline = time.monotonic() + timeout
    while _running_postmaster(pgdata) is not None:
        if time.monotonic() >= deadline:
            raise LifeboatError(f"recovery of {pgdata} did not finish within {timeout:.0f} s")
        time.sleep(0.1)
    if not shut_down_in_recovery(pgdata):
        raise _stopped(pgdata, log_file, "stopped during recovery")


LOG_LINES_SHOWN = 10
# the server log's own account of why it stopped
_SERVER_FAILURE = re.compile(r"\b(?:FATAL|PANIC):\s+(.*)")


def _stopped(pgdata: Path, log_file: Path, what: str) -> RestoreError:
    """The error for a restored server that stopped: one line with the reason its log gives
    (its first FATAL or PANIC), the log's last lines logged before it."""
    from lifeboat.postgres.instance import log_tail

    tail = log_tail(log_file, LOG_LINES_SHOWN).splitlines()
    log.error("last %d lines of %s:", len(tail), log_file)
    for line in tail:
        log.error("  %s", line)
    try:
        text = log_file.read_text(errors="replace")
    except OSError:
        text = ""
    reasons = (m[1] for m in _SERVER_FAILURE.finditer(text))
    # skip what clients (this wait among them) were told while the server was not ready
    reason = next((r for r in reasons if not r.startswith("the database system is")), None)
    return RestoreError(
        f"the restored cluster in {pgdata} {what}"
        + (f": {reason}" if reason else "")
        + f" (see {log_file}); the data directory is left as it is for inspection: "
        "restore again with --force once the cause is fixed"
    )
