"""A cluster archiving into a Lifeboat repository, as PostgreSQL's OS user runs Lifeboat."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from lifeboat.pipeline.crypto import write_identity
from lifeboat.postgres.instance import ScratchCluster
from tests.inprocess import run_lifeboat
from tests.servers.ports import candidate_port
from tests.waiting import wait_for

from .helpers import LIFEBOAT

# a restored server's log, in its data folder (lifeboat restore --start writes it)
RESTORE_LOG = "lifeboat-restore.log"
PORT_ATTEMPTS = 5
ARCHIVER_STATE = (
    "SELECT format('archived %s, failed %s times, last %s', "
    "last_archived_wal, failed_count, last_failed_wal) FROM pg_stat_archiver"
)


def as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def port_was_taken(server_log: Path) -> bool:
    """Whether a server that did not start found its port taken (from its log)."""
    try:
        return "could not bind" in server_log.read_text(errors="replace")
    except FileNotFoundError:
        return False


def on_a_free_port(
    start: Callable[[int], subprocess.CompletedProcess[str]],
    server_log: Path,
    undo: Callable[[], None],
) -> tuple[int, subprocess.CompletedProcess[str]]:
    """start(port): lay out a data folder and start a server there, on a port that was free
    when picked; the port and the result. Another program may take the port before the
    server binds it: then undo() what the attempt left, and start again on another port."""
    attempt = 1
    while True:
        port = candidate_port()
        result = start(port)
        if result.returncode == 0 or attempt == PORT_ATTEMPTS or not port_was_taken(server_log):
            return port, result
        undo()
        attempt += 1


def hand_to_server_user(place: Path) -> None:
    """place and every folder and file in it owned by the server's OS user, when we are
    root: as what it writes itself, for Lifeboat run as that user to write there (a copy
    of a repository it is to write into, a folder it is to restore in)."""
    if os.geteuid() != 0:
        return
    for folder, dirs, files in os.walk(place):
        for name in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
            shutil.chown(name, "postgres", "postgres")


def set_and_reload(cluster: ScratchCluster, name: str, value: str) -> None:
    """ALTER SYSTEM SET name = value, reload, and wait until the server's processes use it.

    A new session showing the value proves the postmaster read the files again, and it
    signalled all its children in that same step, before it started that session. The
    archiver takes a pending reload in before it archives each segment: every segment
    switched from then on goes through the new archive_command. The checkpointer tells
    committing sessions whether synchronous_standby_names names anyone when it takes the
    reload in: a CHECKPOINT, which it starts only after handling what it was signalled,
    waits for that. No "moment for the server to catch up" is left to guess."""
    quoted = value.replace("'", "''")
    cluster.psql(f"ALTER SYSTEM SET {name} = '{quoted}'")
    cluster.psql("SELECT pg_reload_conf()")
    wait_for(lambda: cluster.psql(f"SHOW {name}") == value, f"{name} = {value!r} to be in force")
    cluster.psql("CHECKPOINT")


def switch_wal_and_wait(sql: Callable[[str], str]) -> str:
    """Switch WAL on the server `sql` runs statements on, and wait until it archived the
    segment it left; that segment's name."""
    segment = sql("SELECT pg_walfile_name(pg_current_wal_lsn())")
    sql("SELECT pg_switch_wal()")
    wait_for(
        lambda: sql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") >= segment,
        lambda: f"{segment} to be archived; " + sql(ARCHIVER_STATE),
    )
    return segment


@dataclass
class Archiving:
    """A cluster archiving into a Lifeboat repository, as the server's OS user does it."""

    cluster: ScratchCluster
    home: Path
    config: Path

    def lifeboat(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        # as the server's OS user, who owns the repository the archive_command writes
        result = subprocess.run(
            as_postgres([LIFEBOAT, "--config", str(self.config), *args]),
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"lifeboat {' '.join(args)}: {result.stderr}")
        return result

    def restore_started(
        self, pgdata: Path, *options: str, before: Sequence[str] = (), check: bool = True
    ) -> tuple[int, subprocess.CompletedProcess[str]]:
        """`lifeboat [before] restore wms --pgdata pgdata [options] --start --port P`, on a
        free port P (see on_a_free_port): P and the command's result."""

        def restore(port: int) -> subprocess.CompletedProcess[str]:
            arguments = ["restore", "wms", "--pgdata", str(pgdata), *options, "--start"]
            return self.lifeboat(*before, *arguments, "--port", str(port), check=False)

        server_log = pgdata / RESTORE_LOG
        if "--delta" in options:
            # a delta restore's folder is its input: the next attempt repairs it
            port, result = on_a_free_port(restore, server_log, lambda: server_log.unlink())
        else:
            port, result = on_a_free_port(restore, server_log, lambda: shutil.rmtree(pgdata))
        if check and result.returncode != 0:
            raise AssertionError(f"lifeboat restore exited {result.returncode}: {result.stderr}")
        return port, result

    @contextmanager
    def started_copy(self, name: str, *restore_options: str) -> Iterator[int]:
        """`restore` into home/name, started on a free port (yielded) and stopped after.
        Archiving is off: a copy must not archive its new timeline into the source's WAL."""
        pgdata = self.home / name
        port, _ = self.restore_started(pgdata, *restore_options, "--archive-mode", "off")
        try:
            yield port
        finally:
            stop_cluster(pgdata, self.cluster.bin_dir)

    def switch_and_wait(self) -> None:
        switch_wal_and_wait(self.cluster.psql)

    @contextmanager
    def promoted_after_loss(self) -> Iterator[ScratchClusterAt]:
        """Rows 1..10 archived, the cluster lost (stopped and its data folder removed),
        then restored (--latest) into home/first and promoted onto timeline 2, archiving
        into the same source; stopped after."""
        self.commit(1, 10)
        self.switch_and_wait()
        self.cluster.stop("immediate")
        shutil.rmtree(self.cluster.data_dir)
        first = self.home / "first"
        port, _ = self.restore_started(first, "--latest")
        try:
            yield ScratchClusterAt(port)
        finally:
            stop_cluster(first, self.cluster.bin_dir)

    def commit(self, first: int, last: int, apart: bool = False) -> None:
        """Rows first..last, one transaction each (psql commits each statement), in one
        session. apart: each commit's timestamp is later than the one before, which
        recovery to a time needs to tell them apart: the session polls the clock past it."""
        statements = []
        for i in range(first, last + 1):
            statements.append(f"INSERT INTO events VALUES ({i});")
            if apart:
                statements.append(
                    "DO $$ BEGIN WHILE clock_timestamp() <= (SELECT "
                    f"pg_xact_commit_timestamp(xmin) FROM events WHERE id = {i}) "
                    "LOOP PERFORM pg_sleep(0.001); END LOOP; END $$;"
                )
        self.cluster.psql("\n".join(statements))

    def commit_time(self, event: int) -> str:
        return self.cluster.psql(
            f"SELECT pg_xact_commit_timestamp(xmin) FROM events WHERE id = {event}"
        )


@contextmanager
def archiving_cluster(
    pg_bin_dir: Path,
    source_extra: str = "",
    settings: dict[str, str] | None = None,
    password: str | None = None,
) -> Iterator[Archiving]:
    """source_extra: TOML lines appended to [sources.wms] (e.g. an archive table);
    password: the superuser's, asked of every TCP connection (scram-sha-256)."""
    home = Path(tempfile.mkdtemp(prefix="lifeboat-pitr-"))
    home.chmod(0o755)
    owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
    if owner is not None:
        os.chown(home, owner.pw_uid, owner.pw_gid)
        if subprocess.run(as_postgres(["test", "-x", LIFEBOAT])).returncode != 0:
            shutil.rmtree(home)
            pytest.skip(f"the postgres user cannot run {LIFEBOAT} (checkout not reachable)")
    key = home / "age.key"
    public = write_identity(key)
    config = home / "lifeboat.toml"
    command = f"{LIFEBOAT} --config {config} wal-push wms %p"
    cluster = ScratchCluster(
        pg_bin_dir,
        password=password,
        settings={
            "archive_mode": "on",
            "archive_command": command,
            "track_commit_timestamp": "on",
            **(settings or {}),
        },
    )

    def write_config() -> None:
        config.write_text(
            f'[repositories.local]\nurl = "{home / "repo"}"\n'
            f'[encryption]\nage_recipients = ["{public}"]\nage_identity_file = "{key}"\n'
            f'[sources.wms]\ndsn = "{cluster.dsn()}"\npg_bin_dir = "{pg_bin_dir}"\n'
            f"{source_extra}"
        )

    try:
        cluster.init(sync=False)  # thrown away after the test: no need to reach the disk
        write_config()  # archive_command reads it from the start
        config.chmod(0o644)
        # initialised in this process, then handed to the server's OS user with the key
        # and the config: as if that user had run `lifeboat init`, without a process start
        initialised = run_lifeboat(LIFEBOAT, ["--config", str(config), "init"])
        assert initialised.returncode == 0, initialised.stderr
        hand_to_server_user(home)
        cluster.start()
        write_config()  # the server may have started on another port than it was given
        cluster.psql("CREATE TABLE events (id int PRIMARY KEY)")
        yield Archiving(cluster, home, config)
    finally:
        # The cluster goes with its folder, stopped at once (destroy): no shutdown
        # checkpoint, and no last attempts of the archiver at WAL a test left unarchivable
        # (a refused push, /bin/false), which a fast stop waits for, seconds each.
        cluster.destroy()
        shutil.rmtree(home, ignore_errors=True)


def stop_cluster(pgdata: Path, bin_dir: Path, mode: str = "immediate") -> None:
    """Stop a restored server the test is done with: at once by default (no shutdown
    checkpoint to write and sync, seconds each), as a crash would; "fast" where the test
    goes on with that data directory as a cleanly stopped one."""
    subprocess.run(
        as_postgres([str(bin_dir / "pg_ctl"), "stop", "-D", str(pgdata), "-m", mode]),
        capture_output=True,
    )


def events(port: int) -> list[int]:
    import psycopg

    with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres") as conn:
        return [r[0] for r in conn.execute("SELECT id FROM events ORDER BY id")]


# the timeline new WAL is written on (pg_control's copy lags until the next checkpoint)
TIMELINE = "SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)"


@dataclass
class ScratchClusterAt:
    port: int

    def sql(self, statement: str) -> str:
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            cursor = conn.execute(statement)
            row = cursor.fetchone() if cursor.description else None
            return "" if row is None or row[0] is None else str(row[0])
