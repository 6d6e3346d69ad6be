"""lifeboat wal-stream against real clusters: pg_receivewal into the repository, the
zero-loss promise of --synchronous, and what it costs while the stream is down."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from lifeboat.postgres.instance import ScratchCluster
from tests.processes import child_pids
from tests.waiting import wait_for

from .archiving import (
    Archiving,
    archiving_cluster,
    as_postgres,
    events,
    set_and_reload,
    stop_cluster,
)
from .helpers import LIFEBOAT
from .versions import on_oldest_major

APPLICATION_NAME = "lifeboat_wms"


@dataclass
class Streaming:
    """A running `lifeboat wal-stream wms` (as the server's OS user) and its log."""

    process: subprocess.Popen[bytes]
    staging: Path
    log_file: Path

    def pid(self) -> int:
        """The lifeboat process itself: runuser forks it and would SIGKILL it 2 s after
        forwarding a SIGTERM, so the signal goes to lifeboat directly."""
        if os.geteuid() != 0:
            return self.process.pid
        children = wait_for(lambda: child_pids(self.process.pid), "runuser to start lifeboat")
        return children[0]

    def stop(self) -> int:
        os.kill(self.pid(), signal.SIGTERM)
        return self.process.wait(timeout=90)

    @property
    def log(self) -> str:
        return self.log_file.read_text(errors="replace")


@contextmanager
def streaming(archiving: Archiving, *options: str) -> Iterator[Streaming]:
    staging = archiving.home / "staging"
    log_file = archiving.home / "wal-stream.log"
    with open(log_file, "wb") as log:
        process = subprocess.Popen(
            as_postgres(
                [
                    LIFEBOAT,
                    "--config",
                    str(archiving.config),
                    "--debug",
                    "wal-stream",
                    "wms",
                    "--directory",
                    str(staging),
                    *options,
                ]
            ),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    stream = Streaming(process, staging, log_file)
    try:
        yield stream
    finally:
        if process.poll() is None:
            stream.stop()


def standby_state(cluster: ScratchCluster) -> str:
    return cluster.psql(
        "SELECT coalesce(max(sync_state), '') FROM pg_stat_replication "
        f"WHERE application_name = '{APPLICATION_NAME}' AND state = 'streaming'"
    )


def current_segment(cluster: ScratchCluster) -> str:
    return cluster.psql("SELECT pg_walfile_name(pg_current_wal_lsn())")


def archived_copies(archiving: Archiving, segment: str) -> list[Path]:
    return sorted((archiving.home / "repo" / "wms" / "wal" / segment[:16]).glob(f"{segment}-*"))


def stream_partials(archiving: Archiving, segment: str = "") -> list[Path]:
    folder = archiving.home / "repo" / "wms" / "wal-stream"
    return sorted(folder.glob(f"{segment}*.partial-*"))


def insert_within(cluster: ScratchCluster, rows: range, seconds: float) -> None:
    """One commit per row, in one session, that must all return: with a synchronous
    standby, each only once it confirmed."""
    subprocess.run(
        [
            str(cluster.bin_dir / "psql"),
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            cluster.dsn(),
            "-f",
            "-",
        ],
        input="".join(f"INSERT INTO events VALUES ({row});\n" for row in rows),
        text=True,
        check=True,
        capture_output=True,
        timeout=seconds,
        env=cluster.client_env(),
    )


def restore_latest(archiving: Archiving, name: str) -> list[int]:
    pgdata = archiving.home / name
    port, _ = archiving.restore_started(pgdata, "--latest")
    try:
        return events(port)
    finally:
        stop_cluster(pgdata, archiving.cluster.bin_dir)


def archive_only_copy(archiving: Archiving) -> Archiving:
    """The same setup reading a copy of the repository without the streamed partials.

    Taken before any restore: a restored cluster archives its new timeline into the
    repository, and a later restore to the latest point would follow that timeline."""
    repo = archiving.home / "repo"
    copy = archiving.home / "repo-without-stream"
    shutil.copytree(repo, copy, ignore=shutil.ignore_patterns("wal-stream"))
    owner = repo.stat()
    for path in [copy, *copy.rglob("*")]:
        os.chown(path, owner.st_uid, owner.st_gid)
    config = archiving.home / "archive-only.toml"
    config.write_text(archiving.config.read_text().replace(str(repo), str(copy)))
    config.chmod(0o644)
    return replace(archiving, config=config)


@on_oldest_major  # how Lifeboat keeps the partial; pg_receivewal streams on each major below
def test_synchronous_stream_keeps_every_commit_of_a_lost_primary(pg_bin_dir: Path) -> None:
    with archiving_cluster(pg_bin_dir) as archiving:
        cluster = archiving.cluster
        archiving.lifeboat("backup", "wms", "--type", "physical")
        # a one-hour interval: only the lost connection can make the partial reach the repo
        with streaming(archiving, "--synchronous", "--partial-interval", "3600") as stream:
            wait_for(lambda: standby_state(cluster) != "", "wal-stream to stream")
            set_and_reload(cluster, "synchronous_standby_names", APPLICATION_NAME)
            wait_for(lambda: standby_state(cluster) == "sync", "wal-stream as the sync standby")
            insert_within(cluster, range(1, 21), seconds=120)
            segment = current_segment(cluster)
            assert archived_copies(archiving, segment) == []
            assert stream_partials(archiving) == []

            cluster.stop("immediate")
            shutil.rmtree(cluster.data_dir)
            wait_for(
                lambda: stream_partials(archiving, segment),
                "wal-stream to upload the partial of the lost primary",
            )
            assert stream.process.poll() is None, stream.log
            assert stream.stop() == 0, stream.log
        assert f"uploaded {segment}.partial" in stream.log
        assert len(stream_partials(archiving, segment)) == 1

        archive_only = archive_only_copy(archiving)

        assert restore_latest(archiving, "with-stream") == list(range(1, 21))
        # contrast: the archive alone ends before the segment that was never switched
        assert restore_latest(archive_only, "restored-from-archive") == []


@on_oldest_major  # the server's synchronous replication, not the major, is the subject
def test_synchronous_commits_wait_while_the_stream_is_down(pg_bin_dir: Path) -> None:
    with archiving_cluster(pg_bin_dir) as archiving:
        cluster = archiving.cluster
        set_and_reload(cluster, "synchronous_standby_names", APPLICATION_NAME)
        waiting = subprocess.Popen(
            [
                str(cluster.bin_dir / "psql"),
                "-X",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                cluster.dsn(),
                "-c",
                "INSERT INTO events VALUES (1)",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=cluster.client_env(),
        )
        try:
            wait_for(
                lambda: (
                    cluster.psql(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE wait_event = 'SyncRep' AND query LIKE 'INSERT INTO events%'"
                    )
                    == "1"
                ),
                "the commit to wait for the synchronous standby",
            )
            # the server says the commit waits (no time it might have taken to return)
            assert waiting.poll() is None
            # committed locally but not visible: other sessions see it only once confirmed
            assert cluster.psql("SELECT count(*) FROM events") == "0"

            with streaming(archiving, "--synchronous") as stream:
                assert waiting.wait(timeout=60) == 0
                assert cluster.psql("SELECT count(*) FROM events") == "1"
                assert standby_state(cluster) == "sync"
                assert stream.stop() == 0, stream.log
            assert "commits do not wait for this stream yet" not in stream.log
        finally:
            if waiting.poll() is None:
                waiting.kill()
                waiting.wait()


def test_streamed_segments_reach_the_archive_and_leave_the_staging_folder(
    pg_bin_dir: Path,
) -> None:
    # archive_command does nothing at first: what reaches the archive came from the stream
    with archiving_cluster(pg_bin_dir, settings={"archive_command": "/bin/true"}) as archiving:
        cluster = archiving.cluster
        with streaming(archiving, "--partial-interval", "0.5") as stream:
            wait_for(lambda: standby_state(cluster) != "", "wal-stream to stream")
            archiving.commit(1, 5)
            first = current_segment(cluster)
            wait_for(lambda: stream_partials(archiving, first), "a partial to be uploaded")
            cluster.psql("SELECT pg_switch_wal()")
            wait_for(
                lambda: (
                    bool(archived_copies(archiving, first))
                    and not (stream.staging / first).exists()
                ),
                "the completed segment to move from the staging folder to the archive",
            )
            wait_for(lambda: not stream_partials(archiving, first), "its streamed partial to go")
            fetched = archiving.home / "fetched"
            archiving.lifeboat("wal-fetch", "wms", first, str(fetched))
            assert fetched.read_bytes() == (cluster.data_dir / "pg_wal" / first).read_bytes()

            # now archive_command pushes every segment too: both store the same object
            command = f"{LIFEBOAT} --config {archiving.config} wal-push wms %p"
            set_and_reload(cluster, "archive_command", command)
            archiving.commit(6, 10)
            second = current_segment(cluster)
            archiving.switch_and_wait()
            wait_for(lambda: not (stream.staging / second).exists(), "the stream to upload it too")
            assert cluster.psql("SELECT failed_count FROM pg_stat_archiver") == "0"
            assert len(archived_copies(archiving, second)) == 1
            assert stream.process.poll() is None, stream.log
            assert stream.stop() == 0, stream.log
        assert "refusing to overwrite" not in stream.log
        assert not [
            p
            for p in stream.staging.iterdir()
            if not p.name.startswith(".") and not p.name.endswith(".partial")
        ]
