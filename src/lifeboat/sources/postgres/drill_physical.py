"""A physical drill: the base backup (its incremental chain combined) and the WAL archive
restored into a scratch folder, recovered to the latest point (or a time) on loopback with
archiving off, promoted, then read as the depth asks and checked."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from lifeboat.context import Context
from lifeboat.errors import IntegrityError, LifeboatError, RestoreError, ToolError
from lifeboat.policy.recovery import RecoveryTarget, parse_time
from lifeboat.postgres import wal
from lifeboat.postgres.conn import PgEndpoint
from lifeboat.postgres.heartbeat import last_beat
from lifeboat.postgres.instance import free_port
from lifeboat.postgres.recovery import AUTO_CONF, setting_lines
from lifeboat.postgres.server import (
    UNREAD,
    PgCtl,
    log_last_lines,
    log_since,
    port_taken,
    start_and_wait,
    stop_reason,
)
from lifeboat.postgres.workspace import DrillWorkspace
from lifeboat.repo.fetch import require_free_space
from lifeboat.repo.manifest import Manifest
from lifeboat.sources.base import DrillRequest, DrillRun, PhaseClock
from lifeboat.sources.postgres import drill_checks, incremental
from lifeboat.sources.postgres.physical_files import STAGED_WAL
from lifeboat.sources.postgres.physical_restore import (
    LOG_LINES_SHOWN,
    RESTORE_LOG,
    restore_physical,
)
from lifeboat.util.osuser import NoServerUser, server_user

log = logging.getLogger(__name__)

SCRATCH_HBA = "lifeboat-drill-hba.conf"
PORT_ATTEMPTS = 3
# a heartbeat writes its row, then commits: its commit follows the row's time this closely
HEARTBEAT_COMMIT = timedelta(seconds=1)
# how long recovery may take before the drill gives up on it
REPLAY_TIMEOUT = 24 * 3600.0


def _scratch_settings(pgdata: Path, port: int) -> dict[str, str]:
    """What makes the restored copy a private scratch server, whatever the source's own
    configuration said: loopback TCP only, its own port and authentication, no
    archiving into the source's archive, no replication, no SSL files of the source, no
    file of the source's host written, no wait for the source's standbys."""
    return {
        "listen_addresses": "127.0.0.1",
        "port": str(port),
        # TCP only: no socket file whose path could be too long, or clash with another
        "unix_socket_directories": "",
        "hba_file": str(pgdata / SCRATCH_HBA),
        "archive_mode": "off",
        "ssl": "off",
        "primary_conninfo": "",
        # the source's pid file (Debian and init scripts name one): the copy would write
        # its own pid there and remove the file when it stops
        "external_pid_file": "",
        # the source's synchronous standbys never confirm the copy's commits: the
        # CREATE EXTENSION of depth full, or a check that writes, would wait for ever
        "synchronous_standby_names": "",
        # the source's subscriptions would connect to their publishers and consume the
        # changes their slots keep for the real subscriber
        "max_logical_replication_workers": "0",
        "logging_collector": "off",
        "cluster_name": "lifeboat-drill",
    }


def _make_scratch(pgdata: Path, port: int) -> None:
    # a cluster whose configuration lives outside its data directory (Debian's
    # /etc/postgresql) comes back without postgresql.conf: the defaults do for a drill
    conf = pgdata / "postgresql.conf"
    if not conf.exists():
        conf.write_text("# written by lifeboat drill: the backup held none\n", encoding="utf-8")
    (pgdata / SCRATCH_HBA).write_text("host all all 127.0.0.1/32 trust\n", encoding="utf-8")
    with open(pgdata / AUTO_CONF, "a", encoding="utf-8") as auto:
        auto.write("\n# added by lifeboat drill: a private scratch copy\n")
        auto.writelines(line + "\n" for line in setting_lines(_scratch_settings(pgdata, port)))


def _recover(pg_ctl: PgCtl, has_target: bool) -> tuple[int, tuple[str | None, str | None]]:
    """Start the restored copy as a scratch server on a free port and wait until recovery
    ends: the port, the last replayed commit's time and LSN. A port another program took
    between picking and binding it is replaced; any other stop is the backup's failure
    (RestoreError, with the reason from the server's log)."""
    pgdata = pg_ctl.pgdata
    log_file = pgdata / RESTORE_LOG
    for attempt in range(1, PORT_ATTEMPTS + 1):
        port = free_port()
        _make_scratch(pgdata, port)
        if pg_ctl.user is not None:
            pg_ctl.user.chown_tree(pgdata)
        offset = log_file.stat().st_size if log_file.exists() else 0

        def stopped(what: str) -> RestoreError:
            reason = stop_reason(log_file)
            return RestoreError(f"the restored cluster {what}" + (f": {reason}" if reason else ""))

        try:
            return port, start_and_wait(
                pg_ctl,
                log_file,
                action="promote",
                has_target=has_target,
                port=port,
                timeout=REPLAY_TIMEOUT,
                stopped=stopped,
            )
        except RestoreError:
            if attempt < PORT_ATTEMPTS and port_taken(log_since(log_file, offset)):
                continue
            log_last_lines(log_file, LOG_LINES_SHOWN)
            raise
    raise AssertionError("unreachable")


def space_needed(chain: Sequence[Manifest]) -> int:
    """The plaintext of every backup of the chain (oldest first), extracted; for an
    incremental chain, also the cluster pg_combinebackup writes from it, about the size of
    its full backup."""
    extracted = sum(member.plain_size for member in chain)
    return extracted + (chain[0].plain_size if len(chain) > 1 else 0)


def _timestamp(text: str | None) -> datetime | None:
    if not text or text == UNREAD:
        return None
    return datetime.fromisoformat(text.replace(" ", "T", 1))


def drill_physical(ctx: Context, request: DrillRequest, clock: PhaseClock) -> DrillRun:
    manifest = request.manifest
    assert manifest.physical is not None
    source = ctx.postgres_source(manifest.source)
    major = int(manifest.tool.get("pg_basebackup_major") or manifest.server.version.split(".")[0])
    bin_dir = drill_checks.scratch_bin_dir(major, source.pg_bin_dir)
    run = DrillRun(clock, target=f"scratch PostgreSQL {major}")
    try:
        owner = server_user()
    except NoServerUser as exc:
        raise ToolError(str(exc)) from None
    target = (
        RecoveryTarget("time", request.to_time) if request.to_time else RecoveryTarget("latest")
    )
    try:
        chain = incremental.chain(request.repository, manifest)
    except IntegrityError:
        chain = [manifest]  # a broken chain: the restore below finds it, and it is recorded
    with DrillWorkspace(request.work_dir, f"{manifest.source}-{manifest.id}") as space:
        # the WAL replayed is fetched as recovery asks for it
        require_free_space(space.path, space_needed(chain), f"the drill of {manifest.id}")
        pgdata = space.path / "data"
        space.note_server(pgdata, bin_dir)
        try:
            with clock.phase("restore"):
                restored = restore_physical(
                    ctx,
                    manifest.source,
                    pgdata,
                    target,
                    backup=manifest.id,
                    archive_mode="off",
                    config_path=request.config_path,
                    repository=request.repository.name,
                )
        except (RestoreError, IntegrityError) as exc:
            run.problems.append(exc.message)
            return run
        try:
            with clock.phase("replay"):
                port, (replayed, lsn) = _recover(
                    PgCtl(bin_dir, pgdata, owner, cwd=pgdata), target.has_target
                )
        except RestoreError as exc:
            run.problems.append(exc.message)
            return run
        shutil.rmtree(pgdata / STAGED_WAL, ignore_errors=True)
        if lsn is not None:
            short = restored.reach.shortfall(wal.parse_lsn(lsn))
            if short:
                run.problems.append(short)
        endpoint = PgEndpoint.from_dsn(f"host=127.0.0.1 port={port} user=postgres dbname=postgres")
        with endpoint.connect(autocommit=True) as conn:
            row = conn.execute("SELECT version()").fetchone()
            run.postgres_version = str(row[0]).split(" on ")[0] if row else ""
            names = drill_checks.databases(conn)
        # the database accepts connections and pg_verifybackup accepted the files
        clock.ready()
        run.recovered_to = None if replayed == UNREAD else replayed
        source_db = PgEndpoint.from_dsn(source.dsn, source.password_file).dbname
        with clock.phase("checks"):
            if request.depth != "quick":
                run.checks += [
                    drill_checks.read_every_table(endpoint.with_dbname(name)) for name in names
                ]
            if request.depth == "full":
                run.checks.append(drill_checks.amcheck(bin_dir, endpoint, every_database=True))
            run.checks += drill_checks.run_checks(endpoint.with_dbname, request.checks, source_db)
        newest, method = newest_restored(
            _timestamp(run.recovered_to),
            _last_beat(endpoint.with_dbname(source_db if source_db in names else "postgres")),
            manifest.started_at,
        )
        # recovered to a time, the window is what was lost before that time
        run.restored_to(
            newest, method, parse_time(request.to_time) if request.to_time else request.started_at
        )
    return run


def _last_beat(endpoint: PgEndpoint) -> datetime | None:
    try:
        with endpoint.connect(autocommit=True) as conn:
            return last_beat(conn)
    except LifeboatError as exc:  # the commit's time is still there without it
        log.warning("cannot read the heartbeat of the restored cluster: %s", exc)
        return None


def newest_restored(
    commit: datetime | None, beat: datetime | None, backup_started: datetime
) -> tuple[datetime, str]:
    """The newest moment the restored cluster holds, and how it is known: its last replayed
    commit, called `heartbeat` when that commit is the heartbeat's own (it wrote its row
    just before), so the reader knows an idle database did not make the figure old; the
    last heartbeat, when the commit's time could not be read; the backup's start when
    neither is there (no commit since the backup began): the copy holds at least that, so
    the window measured from it is never smaller than the real one."""
    if commit is None:
        if beat is not None:
            return beat, "heartbeat"
        return backup_started, "backup start (no commit replayed)"
    if beat is not None and beat <= commit <= beat + HEARTBEAT_COMMIT:
        return commit, "heartbeat"
    return commit, "last replayed commit"
