"""Two runs racing for one source's lock, as real processes released together.

The lock used to be read, written, read back: two runs that both read "free" both went on
(two `lifeboat backup` of one source printed the same id in 2 of 40 rounds). Here two
processes race for it round after round, on a local repository and on S3 (moto), and
real `lifeboat backup` runs race for it while the winner is kept inside its backup by a
table lock, so that the two runs overlap for certain."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from lifeboat.errors import LockedError
from lifeboat.postgres.instance import ScratchCluster
from lifeboat.repo.lock import repository_lock
from lifeboat.storage.options import StorageOptions
from lifeboat.storage.s3 import S3Storage
from tests.servers import gcs as gcs_servers
from tests.servers import s3 as s3_servers
from tests.servers.gcs import GcsStorageFactory

from .helpers import LIFEBOAT, Workspace, error_line, make_workspace
from .versions import on_oldest_major

pytestmark = pytest.mark.integration

# the emulators' fixtures (bound here, not imported by name, so parameters may reuse the names)
s3_endpoint = s3_servers.s3_endpoint
s3_storage_factory = s3_servers.s3_storage_factory
gcs_endpoint = gcs_servers.gcs_endpoint
gcs_storage_factory = gcs_servers.gcs_storage_factory

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 30


@pytest.fixture(params=["local", "s3"])
def repository_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """A function giving the URL of an empty repository of the kind under test."""
    if request.param == "local":
        yield lambda: str(tmp_path / "repo")
    else:
        factory: Callable[[str], S3Storage] = request.getfixturevalue("s3_storage_factory")
        yield lambda: factory("lock-race").url


class Contender:
    """A tests/integration/lock_child.py process."""

    def __init__(self, url: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.lock_child", url, "wms"],
            cwd=REPOSITORY_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.answer() == "ready"

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def answer(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, f"the contender died (exit code {self.process.wait()})"
        return line.strip()

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


def test_two_processes_racing_for_the_lock_never_both_hold_it(
    repository_url: Callable[[], str],
) -> None:
    url = repository_url()
    contenders = [Contender(url), Contender(url)]
    try:
        for round_ in range(ROUNDS):
            # each one blocks on its stdin until told: they start together
            for number, contender in enumerate(contenders):
                contender.send(f"take round-{round_}-contender-{number}")
            answers = [contender.answer() for contender in contenders]
            assert sorted(answers)[0] == "held", f"round {round_}: nobody got it: {answers}"
            assert answers.count("held") == 1, f"round {round_}: both hold the lock"
            winner = answers.index("held")
            refusal = answers[1 - winner]
            assert refusal.startswith(
                f"refused wms is locked by round-{round_}-contender-{winner} (pid "
                f"{contenders[winner].process.pid} on "
            ), refusal
            contenders[winner].send("release")
            assert contenders[winner].answer() == "released"
    finally:
        for contender in contenders:
            contender.stop()


def test_on_a_store_that_ignores_the_condition_the_lock_goes_by_listing(
    gcs_storage_factory: GcsStorageFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """gcp-storage-emulator accepts ifGenerationMatch=0 and overwrites anyway, as some
    S3-compatible stores do with If-None-Match: the lock finds out and lists instead."""
    pytest.importorskip("google.cloud.storage", reason="the gcs extra is not installed")
    options = StorageOptions(max_attempts=2)
    storage = gcs_storage_factory("repo", options)
    other_run = type(storage)(storage.url, options)
    with repository_lock(storage, "wms", "backup of wms"):
        [contender] = [info.key for info in storage.list("locks/")]
        assert contender.startswith("locks/wms.lock.contender-")
        with (
            pytest.raises(LockedError, match="wms is locked by backup of wms"),
            repository_lock(other_run, "wms", "prune of wms"),
        ):
            pytest.fail("both runs hold the lock")
        assert [info.key for info in storage.list("locks/")] == [contender]
    assert list(storage.list("")) == []
    assert "accepts a second exclusive create of the same key" in caplog.text


# --- real backups --------------------------------------------------------------------------

BACKUP_ROUNDS = 3
# waits on its stdin, then becomes `lifeboat ...` (same pid): the start signal of a round
LAUNCHER = "import os, sys; sys.stdin.readline(); os.execv(sys.argv[1], sys.argv[1:])"


def _config_for(ws: Workspace, kind: str, request: pytest.FixtureRequest) -> None:
    if kind == "s3":
        factory: Callable[[str], S3Storage] = request.getfixturevalue("s3_storage_factory")
        url = factory("backup-race").url
        ws.config.write_text(ws.config.read_text().replace(f"file://{ws.repo}", url))
        ws.run("init", check=True)


def _backup_released_with(ws: Workspace) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, LIFEBOAT, "--config", str(ws.config), "backup", "wms"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finished(run: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    """Its output once it exits (its stdin, the start signal, is closed already)."""
    assert run.stdout is not None and run.stderr is not None
    out, err = run.stdout.read(), run.stderr.read()
    return subprocess.CompletedProcess(run.args, run.wait(timeout=300), out, err)


@pytest.mark.slow
@on_oldest_major  # the lock is the repository's, whatever the server's version
@pytest.mark.parametrize("kind", ["local", "s3"])
def test_two_backups_of_one_source_never_both_run(
    pg_cluster: ScratchCluster,
    fresh_db: str,
    tmp_path: Path,
    kind: str,
    request: pytest.FixtureRequest,
) -> None:
    pg_cluster.psql("CREATE TABLE lots (id int PRIMARY KEY); INSERT INTO lots VALUES (1)", fresh_db)
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db))
    _config_for(ws, kind, request)
    for _ in range(BACKUP_ROUNDS):
        with psycopg.connect(pg_cluster.dsn(fresh_db)) as blocker:
            # the run that gets the lock waits inside its backup until the round ends
            blocker.execute("LOCK TABLE lots IN ACCESS EXCLUSIVE MODE")
            runs = [_backup_released_with(ws), _backup_released_with(ws)]
            try:
                for run in runs:
                    assert run.stdin is not None
                    run.stdin.write("go\n")
                    run.stdin.close()
                deadline = time.monotonic() + 120
                while all(run.poll() is None for run in runs):
                    assert time.monotonic() < deadline, "neither run gave up: both hold the lock"
                    time.sleep(0.05)
                loser = next(run for run in runs if run.poll() is not None)
                winner = next(run for run in runs if run is not loser)
                failed = _finished(loser)
                assert failed.returncode == 1, failed.stderr
                line = error_line(failed)
                assert f"wms is locked by backup of wms (pid {winner.pid} on " in line
                assert winner.poll() is None, "the winner finished while the table was locked"
            except BaseException:
                for run in runs:
                    run.kill()
                raise
            blocker.commit()
        succeeded = _finished(winner)
        assert succeeded.returncode == 0, succeeded.stderr
    listed = ws.run_json("list")
    assert len(listed) == BACKUP_ROUNDS
    assert len({backup["id"] for backup in listed}) == BACKUP_ROUNDS
    if kind == "local":
        assert not (ws.repo / "locks").exists()
