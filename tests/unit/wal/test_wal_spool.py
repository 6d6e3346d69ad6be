"""Async WAL push, fetch prefetch and status with a local repository (real age, real zstd)."""

from __future__ import annotations

import fcntl
import json
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lifeboat.context import LeanContext
from lifeboat.errors import LifeboatError
from lifeboat.ops.status import spool_status
from lifeboat.pipeline.crypto import AgeDecryptor, AgeEncryptor, generate_age_identity
from lifeboat.storage.local import LocalStorage
from lifeboat.util.singleton import lock_is_held
from lifeboat.wal.archive import WalConflictError, is_archived, push
from lifeboat.wal.prefetch import run_prefetcher, take_prefetched
from lifeboat.wal.spool import (
    Spooled,
    note_cluster,
    note_wal_dir,
    queued,
    spool_segment,
    spooled_cluster,
    take_marker,
)
from lifeboat.wal.spool_paths import SpoolPaths
from lifeboat.wal.stage import fetch
from lifeboat.wal.worker import RETRY_FIRST_DELAY, RETRY_MAX_DELAY, WorkerStatus, run_push_worker
from tests.processes import (
    child_pids,
    command_line,
    kill_wal_workers,
    lock_holders,
    process_states,
    processes_running,
)
from tests.unit.helpers import AgeKey
from tests.waiting import wait_for
from tests.walfiles import OTHER_SYSTEM_ID, SYSTEM_ID, segment_file, wal_file

LIFEBOAT = str(Path(sys.executable).with_name("lifeboat"))


def segment_name(number: int, timeline: int = 1) -> str:
    return f"{timeline:08X}00000000{number:08X}"


@pytest.fixture
def spool(tmp_path: Path) -> SpoolPaths:
    return SpoolPaths(tmp_path / "spool" / "wms")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- the foreground ---------------------------------------------------------------------------


def test_spooled_segment_is_an_exact_private_copy(spool: SpoolPaths, tmp_path: Path) -> None:
    source = wal_file(tmp_path / "pg_wal", segment_name(1), seed=1)
    assert spool_segment(spool, source, max_segments=8) is Spooled.SPOOLED
    spooled = spool.outgoing / source.name
    assert spooled.read_bytes() == source.read_bytes()
    assert mode(spooled) == 0o600
    assert mode(spool.outgoing) == 0o700 and mode(spool.root) == 0o700
    assert mode(spool.root.parent) == 0o700  # the parents it had to create too
    assert os.listdir(spool.outgoing) == [source.name]  # no temporary file left


def test_same_content_again_is_fine_and_different_content_is_refused(
    spool: SpoolPaths, tmp_path: Path
) -> None:
    name = segment_name(1)
    first = wal_file(tmp_path / "a", name, seed=1)
    spool_segment(spool, first, max_segments=8)
    again = wal_file(tmp_path / "b", name, seed=1)
    assert spool_segment(spool, again, max_segments=8) is Spooled.ALREADY_SPOOLED
    forged = wal_file(tmp_path / "c", name, seed=2)
    with pytest.raises(WalConflictError) as caught:
        spool_segment(spool, forged, max_segments=8)
    assert "refusing to overwrite" in str(caught.value)
    assert (spool.outgoing / name).read_bytes() == first.read_bytes()


def test_a_full_spool_writes_nothing(spool: SpoolPaths, tmp_path: Path) -> None:
    for number in (1, 2):
        spool_segment(spool, wal_file(tmp_path / "pg_wal", segment_name(number), number), 2)
    third = wal_file(tmp_path / "pg_wal", segment_name(3), seed=3)
    assert spool_segment(spool, third, max_segments=2) is Spooled.SPOOL_FULL
    assert queued(spool.outgoing) == [segment_name(1), segment_name(2)]


def test_not_a_wal_name_is_refused(spool: SpoolPaths, tmp_path: Path) -> None:
    with pytest.raises(LifeboatError):
        spool_segment(spool, wal_file(tmp_path, "postgresql.conf", seed=1), max_segments=8)
    assert queued(spool.outgoing) == []


def test_a_segment_of_another_cluster_than_the_spool_s_is_not_spooled(
    spool: SpoolPaths, tmp_path: Path
) -> None:
    name = segment_name(1)
    foreign = segment_file(tmp_path / "other", name, system_identifier=OTHER_SYSTEM_ID)
    # before the spool knows the cluster, only the worker can tell
    assert spool_segment(spool, foreign, max_segments=8) is Spooled.SPOOLED
    (spool.outgoing / name).unlink()
    note_cluster(spool, str(SYSTEM_ID))
    assert spool_segment(spool, foreign, max_segments=8) is Spooled.OTHER_CLUSTER
    assert queued(spool.outgoing) == []
    own = segment_file(tmp_path / "pg_wal", name, system_identifier=SYSTEM_ID)
    assert spool_segment(spool, own, max_segments=8) is Spooled.SPOOLED


# --- the worker ---------------------------------------------------------------------------


def uploader(storage: LocalStorage, encryptor: AgeEncryptor) -> Callable[[Path], str]:
    def upload(path: Path) -> str:
        return push(storage, "wms", path, encryptor, level=1).plain_sha256

    return upload


def test_worker_reads_ready_segments_ahead_and_leaves_markers(
    spool: SpoolPaths, tmp_path: Path, keys: tuple[AgeEncryptor, AgeDecryptor]
) -> None:
    encryptor, decryptor = keys
    storage = LocalStorage(tmp_path / "repo")
    pg_wal = tmp_path / "pg_wal"
    segments = [wal_file(pg_wal, segment_name(n), seed=n) for n in range(1, 5)]
    (pg_wal / "archive_status").mkdir()
    for segment in segments[:3]:  # the fourth is still being written: not ready
        (pg_wal / "archive_status" / f"{segment.name}.ready").touch()
    note_wal_dir(spool, pg_wal)

    assert run_push_worker(spool, uploader(storage, encryptor), workers=2, idle_exit=0.1)

    assert sorted(os.listdir(spool.acknowledged)) == [s.name for s in segments[:3]]
    assert not is_archived(storage, "wms", segments[3].name)
    for segment in segments[:3]:
        fetch(storage, "wms", segment.name, tmp_path / "back", lambda method: decryptor)
        assert (tmp_path / "back").read_bytes() == segment.read_bytes()
    # archive_command then only consumes the marker, which must match the file
    assert take_marker(spool, segments[0])
    assert not (spool.acknowledged / segments[0].name).exists()
    assert not take_marker(spool, segments[0])  # consumed
    segments[1].write_bytes(b"not what was archived")
    assert not take_marker(spool, segments[1])  # a marker for other content is refused


def runs_sleep(pid: int) -> bool:
    """Whether the process has a `sleep` running (a shell's wait loop)."""
    return any(command_line(child)[:1] == ["sleep"] for child in child_pids(pid))


def test_setup_archiving_prints_the_marker_shortcut_for_async_sources(tmp_path: Path) -> None:
    from lifeboat.context import Context
    from lifeboat.ops.archiving import wanted_settings

    _, public = generate_age_identity()
    config = write_config(tmp_path, public, "async = true\n")
    command = wanted_settings(Context.load(config), "wms")["archive_command"]
    marker = f"{spool_of(config).acknowledged}/%f"
    assert f"[ -f {marker} ] && rm {marker} || " in command
    assert command.endswith("wal-push wms %p")
    # run by a shell as PostgreSQL would: a marker is consumed, nothing else runs
    spool_of(config).acknowledged.mkdir(parents=True)
    (spool_of(config).acknowledged / segment_name(7)).write_text("x")
    shell = command.replace("%f", segment_name(7)).replace("%p", "/nonexistent")
    assert subprocess.run(["sh", "-c", shell], capture_output=True).returncode == 0
    assert not (spool_of(config).acknowledged / segment_name(7)).exists()
    # without one, Lifeboat runs (and here fails: the file does not exist)
    assert subprocess.run(["sh", "-c", shell], capture_output=True).returncode != 0
    # while the worker archives the segment, the shell waits for its marker
    spool = spool_of(config)
    spool.reading_ahead.mkdir(parents=True)
    (spool.reading_ahead / segment_name(7)).touch()
    waiting = subprocess.Popen(["sh", "-c", shell])
    # waiting: its loop runs `sleep` (a shell that did not wait would have exited instead)
    wait_for(
        lambda: waiting.poll() is not None or runs_sleep(waiting.pid),
        "the shell to wait in its loop",
    )
    assert waiting.poll() is None
    (spool.acknowledged / segment_name(7)).write_text("x")
    (spool.reading_ahead / segment_name(7)).unlink()
    assert waiting.wait(timeout=10) == 0
    assert not (spool.acknowledged / segment_name(7)).exists()


def test_worker_uploads_the_spool_and_records_it(
    spool: SpoolPaths, tmp_path: Path, keys: tuple[AgeEncryptor, AgeDecryptor]
) -> None:
    encryptor, decryptor = keys
    storage = LocalStorage(tmp_path / "repo")
    sources = [wal_file(tmp_path / "pg_wal", segment_name(n), seed=n) for n in range(1, 6)]
    for source in sources:
        spool_segment(spool, source, max_segments=8)

    assert run_push_worker(spool, uploader(storage, encryptor), workers=3, idle_exit=0.1)

    assert queued(spool.outgoing) == []
    for source in sources:
        fetch(storage, "wms", source.name, tmp_path / "back", lambda method: decryptor)
        assert (tmp_path / "back").read_bytes() == source.read_bytes()
    status = json.loads(spool.status_file.read_text())
    assert status["pushed_count"] == 5
    assert status["last_error"] is None
    assert status["last_pushed"]["segment"] in {s.name for s in sources}
    assert not lock_is_held(spool.worker_lock)


def test_worker_retries_with_backoff_and_keeps_the_file_until_pushed(
    spool: SpoolPaths, tmp_path: Path, keys: tuple[AgeEncryptor, AgeDecryptor]
) -> None:
    storage = LocalStorage(tmp_path / "repo")
    real = uploader(storage, keys[0])
    attempts: list[str] = []
    healthy = threading.Event()
    name = segment_name(7)

    def flaky(path: Path) -> None:
        attempts.append(path.name)
        if not healthy.is_set():
            raise LifeboatError("repository unreachable")
        real(path)

    spool_segment(spool, wal_file(tmp_path / "pg_wal", name, seed=7), max_segments=8)
    worker = threading.Thread(
        target=run_push_worker, args=(spool, flaky, 2, 0.1), kwargs={"first_retry_delay": 0.01}
    )
    worker.start()
    try:
        wait_for(lambda: len(attempts) >= 3, "the worker to try a third time")
        # the second failure was recorded before the third attempt started
        status = json.loads(spool.status_file.read_text())
        assert status["last_error"]["segment"] == name
        assert status["last_error"]["message"] == "repository unreachable"
        assert status["last_error"]["attempts"] >= 2
        assert queued(spool.outgoing) == [name]  # never dropped while failing
        assert lock_is_held(spool.worker_lock)
    finally:
        healthy.set()
        worker.join(timeout=30)
    assert not worker.is_alive()
    assert queued(spool.outgoing) == []
    assert is_archived(storage, "wms", name)
    status = json.loads(spool.status_file.read_text())
    assert status["last_error"] is None  # cleared by the success
    assert status["last_pushed"]["segment"] == name


def test_a_refused_file_is_set_aside_for_good_and_stays_visible(
    spool: SpoolPaths, tmp_path: Path, keys: tuple[AgeEncryptor, AgeDecryptor]
) -> None:
    storage = LocalStorage(tmp_path / "repo")
    upload = uploader(storage, keys[0])
    upload(segment_file(tmp_path / "pg_wal", segment_name(1)))  # records the cluster
    foreign = segment_file(tmp_path / "other", segment_name(2), system_identifier=OTHER_SYSTEM_ID)
    own = segment_file(tmp_path / "pg_wal", segment_name(3))
    for path in (foreign, own):
        spool_segment(spool, path, max_segments=8)
    attempts: list[str] = []

    def counting(path: Path) -> str:
        attempts.append(path.name)
        return upload(path)

    # returns (the spool stays empty) instead of retrying the foreign segment forever
    assert run_push_worker(spool, counting, workers=1, idle_exit=0.1)
    assert sorted(attempts) == [segment_name(2), segment_name(3)]
    assert queued(spool.outgoing) == []
    assert (spool.refused / segment_name(2)).read_bytes() == foreign.read_bytes()
    assert is_archived(storage, "wms", segment_name(3))
    assert not is_archived(storage, "wms", segment_name(2))
    error = spool_status(spool, True, datetime.now(UTC))
    assert error["refused"] == 1
    assert error["last_error"]["segment"] == segment_name(2)
    assert (
        f"belongs to the cluster with system identifier {OTHER_SYSTEM_ID}"
        in (error["last_error"]["message"])
    )
    assert f"moved to {spool.refused / segment_name(2)}" in error["last_error"]["message"]

    # a later worker still shows it, until someone takes the file away
    spool_segment(spool, segment_file(tmp_path / "pg_wal", segment_name(4)), max_segments=8)
    assert run_push_worker(spool, upload, workers=1, idle_exit=0.1)
    assert spool_status(spool, True, datetime.now(UTC))["last_error"]["segment"] == (
        segment_name(2)
    )
    (spool.refused / segment_name(2)).unlink()
    spool_segment(spool, segment_file(tmp_path / "pg_wal", segment_name(5)), max_segments=8)
    assert run_push_worker(spool, upload, workers=1, idle_exit=0.1)
    assert spool_status(spool, True, datetime.now(UTC))["last_error"] is None


def test_the_delay_before_a_retry_doubles_up_to_a_cap(tmp_path: Path) -> None:
    status = WorkerStatus(tmp_path / "status.json")
    now = 1000.0
    delays = [status.failed("seg", "unreachable", now).retry_at - now for _ in range(9)]
    expected = [RETRY_FIRST_DELAY * 2**n for n in range(9)]
    assert delays == [min(delay, RETRY_MAX_DELAY) for delay in expected]
    assert delays[:2] == [0.5, 1.0] and delays[-1] == RETRY_MAX_DELAY
    assert status.last_error is not None and status.last_error["attempts"] == 9


def test_a_second_worker_leaves_the_spool_to_the_first(
    spool: SpoolPaths, tmp_path: Path, keys: tuple[AgeEncryptor, AgeDecryptor]
) -> None:
    storage = LocalStorage(tmp_path / "repo")
    spool_segment(spool, wal_file(tmp_path / "pg_wal", segment_name(1), seed=1), 8)
    fd = os.open(spool.worker_lock, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert lock_is_held(spool.worker_lock)
        assert not run_push_worker(spool, uploader(storage, keys[0]), workers=2, idle_exit=0.1)
        assert queued(spool.outgoing) == [segment_name(1)]
    finally:
        os.close(fd)
    assert not lock_is_held(spool.worker_lock)


# --- through the command line: fallback, kill -9, fetch from the spool, status -----------------


def write_config(tmp_path: Path, public: str, archive: str) -> Path:
    config = tmp_path / "lifeboat.toml"
    config.write_text(
        f'[repositories.local]\nurl = "{tmp_path / "repo"}"\n'
        f'[encryption]\nage_recipients = ["{public}"]\n'
        f'age_identity_file = "{tmp_path / "age.key"}"\n'
        '[sources.wms]\ndsn = "postgresql://postgres@127.0.0.1/postgres"\n'
        f'[sources.wms.archive]\nspool_dir = "{tmp_path / "spool"}"\n{archive}'
    )
    return config


def lifeboat(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LIFEBOAT, "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def cli_repo(tmp_path: Path, age_key: AgeKey) -> Iterator[tuple[Path, LocalStorage]]:
    config = write_config(tmp_path, age_key.public, "async = true\nspool_max_segments = 2\n")
    assert lifeboat(config, "init").returncode == 0
    yield config, LocalStorage(tmp_path / "repo")
    # a worker lingers a few seconds after its spool empties; it must not outlive the test
    kill_wal_workers(config)


def spool_of(config: Path) -> SpoolPaths:
    """The spool of source wms, as wal-push resolves it (named after its repository too)."""
    return SpoolPaths(LeanContext.load(config).lean.archive("wms").spool)


def test_full_spool_pushes_synchronously(
    cli_repo: tuple[Path, LocalStorage], tmp_path: Path
) -> None:
    config, storage = cli_repo
    spool = spool_of(config)
    spool.root.mkdir(parents=True)
    # holding the worker lock keeps any worker away, so the spool stays full
    fd = os.open(spool.worker_lock, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        for number in (1, 2):
            path = wal_file(tmp_path / "pg_wal", segment_name(number), seed=number)
            spooled = lifeboat(config, "wal-push", "wms", str(path), "--json")
            assert spooled.returncode == 0, spooled.stderr
            assert json.loads(spooled.stdout)["spooled"] is True
        third = wal_file(tmp_path / "pg_wal", segment_name(3), seed=3)
        pushed = lifeboat(config, "wal-push", "wms", str(third), "--json")
        assert pushed.returncode == 0, pushed.stderr
        assert "spool_max_segments" in pushed.stderr and "synchronously" in pushed.stderr
        assert json.loads(pushed.stdout)["spooled"] is False
        assert is_archived(storage, "wms", third.name)
        assert queued(spool.outgoing) == [segment_name(1), segment_name(2)]
        assert not is_archived(storage, "wms", segment_name(1))
    finally:
        os.close(fd)


def test_async_wal_push_refuses_another_cluster_s_segment_once_the_spool_knows_the_cluster(
    cli_repo: tuple[Path, LocalStorage], tmp_path: Path
) -> None:
    config, storage = cli_repo
    spool = spool_of(config)
    own = segment_file(tmp_path / "pg_wal", segment_name(1))
    assert lifeboat(config, "wal-push", "wms", str(own)).returncode == 0
    wait_for(lambda: is_archived(storage, "wms", own.name), "the worker to push it")
    # the worker notes the cluster after its upload is in the repository: wait for the note
    wait_for(lambda: spooled_cluster(spool) == str(SYSTEM_ID), "the worker to note the cluster")

    foreign = segment_file(tmp_path / "other", segment_name(2), system_identifier=OTHER_SYSTEM_ID)
    refused = lifeboat(config, "wal-push", "wms", str(foreign))
    assert refused.returncode == 1
    [line] = refused.stderr.splitlines()  # one line, no traceback
    assert line.startswith("lifeboat: error: ")
    assert f"belongs to the cluster with system identifier {OTHER_SYSTEM_ID}" in line
    assert f"holds the cluster with system identifier {SYSTEM_ID} (recorded" in line
    assert not (spool.outgoing / foreign.name).exists()
    assert not is_archived(storage, "wms", foreign.name)


def test_a_killed_worker_loses_nothing(cli_repo: tuple[Path, LocalStorage], tmp_path: Path) -> None:
    config, storage = cli_repo
    config.write_text(config.read_text().replace("spool_max_segments = 2", ""))
    spool = spool_of(config)
    # a file where the source's folder belongs: every upload fails, even for root
    (tmp_path / "repo" / "wms").write_text("in the way")
    names = [segment_name(n) for n in range(1, 5)]
    for number, name in enumerate(names, 1):
        path = wal_file(tmp_path / "pg_wal", name, seed=number)
        result = lifeboat(config, "wal-push", "wms", str(path))
        assert result.returncode == 0, result.stderr

    status = wait_for(
        lambda: (
            json.loads(lifeboat(config, "status", "wms", "--json").stdout)[0]["spool"]
            if (
                spool.status_file.exists()
                and json.loads(spool.status_file.read_text())["last_error"]
            )
            else {}
        ),
        "the worker's error",
    )
    assert status["queued"] == 4 and status["worker_running"]
    assert status["last_error"]["segment"] in names
    worker_pid = json.loads(spool.status_file.read_text())["pid"]
    assert lock_holders(spool.worker_lock) == {worker_pid}
    # Every wal-push has returned, so every worker they started runs by now: the one that
    # holds the lock, and maybe a second, started by a wal-push that found the lock free
    # for a moment, waiting to take over. Killing them all leaves the lock to nobody.
    workers = processes_running("--config", str(config), "wal-worker", "push")
    assert worker_pid in workers, process_states(workers)
    kill_wal_workers(config)
    assert not lock_is_held(spool.worker_lock), process_states(lock_holders(spool.worker_lock))
    assert queued(spool.outgoing) == names

    (tmp_path / "repo" / "wms").unlink()
    fifth = wal_file(tmp_path / "pg_wal", segment_name(5), seed=5)
    assert lifeboat(config, "wal-push", "wms", str(fifth)).returncode == 0
    wait_for(lambda: not queued(spool.outgoing), "the new worker to empty the spool")
    for name in [*names, fifth.name]:
        assert is_archived(storage, "wms", name), name
    after = json.loads(lifeboat(config, "status", "wms", "--json").stdout)[0]
    assert after["spool"]["last_error"] is None
    assert after["newest_wal"]["segment"] == fifth.name
    assert after["newest_wal"]["segments"] == 5
    assert after["newest_backup"] is None
    assert after["repository"]["name"] == "local"


def test_wal_fetch_takes_a_prefetched_file_first(tmp_path: Path, age_key: AgeKey) -> None:
    config = write_config(tmp_path, age_key.public, "prefetch = 2\n")
    assert lifeboat(config, "init").returncode == 0
    spool = spool_of(config)
    spool.incoming.mkdir(parents=True)
    name = segment_name(9)
    # only in the spool, not in the archive: finding it proves the spool was used
    prefetched = wal_file(spool.incoming, name, seed=9)
    content = prefetched.read_bytes()
    destination = tmp_path / "pg_wal" / "RECOVERYXLOG"
    destination.parent.mkdir()
    result = lifeboat(config, "wal-fetch", "wms", name, str(destination), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["prefetched"] is True
    assert destination.read_bytes() == content
    assert not (spool.incoming / name).exists()
    assert spool.prefetch_wanted.read_text() == name
    # taken once: asked again, it comes from the archive, which does not have it
    again = lifeboat(config, "wal-fetch", "wms", name, str(destination))
    assert again.returncode == 1
    assert "is not in the archive" in again.stderr


def test_take_prefetched(spool: SpoolPaths, tmp_path: Path) -> None:
    spool.incoming.mkdir(parents=True)
    name = segment_name(3)
    content = wal_file(spool.incoming, name, seed=3).read_bytes()
    destination = tmp_path / "RECOVERYXLOG"
    assert not take_prefetched(spool, segment_name(4), destination)
    assert not destination.exists()
    assert take_prefetched(spool, name, destination)
    assert destination.read_bytes() == content
    assert not (spool.incoming / name).exists()


def test_prefetcher_downloads_the_following_segments(
    spool: SpoolPaths, tmp_path: Path, keys: tuple[AgeEncryptor, AgeDecryptor]
) -> None:
    encryptor, decryptor = keys
    storage = LocalStorage(tmp_path / "repo")
    sources = {
        n: wal_file(tmp_path / "pg_wal", segment_name(n), seed=n) for n in (1, 2, 3, 4, 5, 6)
    }
    for source in sources.values():
        push(storage, "wms", source, encryptor, level=1)
    spool.incoming.mkdir(parents=True)
    wal_file(spool.incoming, segment_name(1), seed=1)  # older than asked: goes
    (spool.incoming / f".{segment_name(3)}.lifeboat-tmp").write_bytes(b"half")  # killed
    spool.prefetch_wanted.write_text(segment_name(2))
    downloaded: list[str] = []

    def download(name: str, destination: Path) -> None:
        downloaded.append(name)
        fetch(storage, "wms", name, destination, lambda method: decryptor)

    umask = os.umask(0o022)
    try:
        assert run_prefetcher(spool, download, count=3, parallel=2, idle_exit=0.2)
    finally:
        os.umask(umask)
    wanted = [segment_name(n) for n in (3, 4, 5)]
    assert sorted(os.listdir(spool.incoming)) == wanted
    assert sorted(downloaded) == wanted
    for n in (3, 4, 5):
        prefetched = spool.incoming / segment_name(n)
        assert prefetched.read_bytes() == sources[n].read_bytes()
        assert mode(prefetched) == 0o600  # plaintext WAL
    assert mode(spool.incoming) == 0o700

    # recovery took 3 and 4 and asks for more; 7 is not archived
    for taken in (3, 4):
        (spool.incoming / segment_name(taken)).unlink()
    spool.prefetch_wanted.write_text(segment_name(4))
    downloaded.clear()
    assert run_prefetcher(spool, download, count=3, parallel=2, idle_exit=0.2)
    assert sorted(os.listdir(spool.incoming)) == [segment_name(n) for n in (5, 6)]
    assert sorted(downloaded) == [segment_name(n) for n in (6, 7)]


def test_wal_fetch_from_a_named_repository_prefetches_from_it_too(
    tmp_path: Path, age_key: AgeKey
) -> None:
    """A restore from a copy target writes `wal-fetch --repo dr`: the segment and the ones
    the prefetcher downloads ahead come from dr, although the source writes elsewhere and
    that repository is gone (never initialised here)."""
    encryptor = age_key.encryptor()
    config = write_config(tmp_path, age_key.public, "prefetch = 2\n")
    text = config.read_text().replace(
        "[sources.wms]\n", '[sources.wms]\nrepositories = ["local"]\n'
    )
    config.write_text(text + f'[repositories.dr]\nurl = "{tmp_path / "dr"}"\n')
    assert lifeboat(config, "init", "--repo", "dr").returncode == 0
    segments = {n: wal_file(tmp_path / "pg_wal", segment_name(n), seed=n) for n in (1, 2, 3)}
    for segment in segments.values():
        push(LocalStorage(tmp_path / "dr"), "wms", segment, encryptor, level=1)
    spool = SpoolPaths(LeanContext.load(config).lean.archive("wms", "dr").spool)
    assert spool.root != spool_of(config).root  # a prefetcher per repository fetched from
    destination = tmp_path / "restored" / "RECOVERYXLOG"
    destination.parent.mkdir()
    try:
        fetched = lifeboat(
            config, "wal-fetch", "--repo", "dr", "wms", segment_name(1), str(destination)
        )
        assert fetched.returncode == 0, fetched.stderr
        assert destination.read_bytes() == segments[1].read_bytes()
        ahead = [spool.incoming / segment_name(n) for n in (2, 3)]
        wait_for(lambda: all(p.exists() for p in ahead), "the prefetcher to download from dr")
        assert [p.read_bytes() for p in ahead] == [segments[n].read_bytes() for n in (2, 3)]
    finally:
        kill_wal_workers(config)
    # without --repo the source's own repository is asked, which cannot serve: recovery stops
    own = lifeboat(config, "wal-fetch", "wms", segment_name(1), str(destination))
    assert own.returncode == 255
    assert "repository local" in own.stderr and "not initialised" in own.stderr
