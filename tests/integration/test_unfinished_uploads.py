"""What a writer killed mid-upload leaves behind, and who removes it.

A real `lifeboat copy` and a real `lifeboat wal-push` are stopped in the middle of a write
for certain (the copy reads its object from a FIFO the test feeds; the wal-push's part
uploads are held by a proxy in front of the S3 emulator), then killed. The leftover is
there; `verify` warns about it and still succeeds; a locked run (prune) leaves it while
it is younger than the grace period and removes it once older."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lifeboat.pipeline.crypto import write_identity
from lifeboat.repo.catalog import Repository
from lifeboat.storage.base import temporary_target
from lifeboat.storage.direct import BUFFER
from lifeboat.storage.options import StorageOptions
from lifeboat.storage.s3 import S3Storage
from tests.servers import s3 as s3_servers
from tests.servers.s3 import (
    SLOW_DOWN,
    Exchange,
    FaultProxy,
    admin_client,
    bucket_name,
    is_part_upload,
    repository_url,
    shared_moto,
    started_at,
)
from tests.walfiles import long_header

from .helpers import LIFEBOAT

pytestmark = pytest.mark.integration

s3_endpoint = s3_servers.s3_endpoint

MiB = 1 << 20
WAL_NAME = "000000010000000000000007"
WAL_KEY = f"wms/wal/0000000100000000/{WAL_NAME}-{'ab' * 32}.zst.age"
DEADLINE_SECONDS = 60.0
OPTIONS = StorageOptions(max_attempts=2)


class Setup:
    """A config with the repositories given (TOML tables by name), one source, retention."""

    def __init__(self, root: Path, repositories: dict[str, str]) -> None:
        self.root = root
        self.config = root / "lifeboat.toml"
        public = write_identity(root / "age.key")
        tables = "".join(f"[repositories.{name}]\n{body}\n" for name, body in repositories.items())
        self.config.write_text(
            f"{tables}"
            f'[encryption]\nage_recipients = ["{public}"]\n'
            f'age_identity_file = "{root / "age.key"}"\n\n'
            "[retention]\nkeep_last = 1\n\n"
            '[sources.wms]\ndsn = "postgresql://backup@127.0.0.1:1/wms"\n'
        )
        self.run("init", check=True)

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [LIFEBOAT, "--config", str(self.config), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [LIFEBOAT, "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
        if check:
            assert result.returncode == 0, result.stderr
        return result

    def prune_removes(self, repo: str) -> list[str]:
        """Keys of the unfinished uploads a prune of wms in repo removed."""
        result = self.run("prune", "wms", "--repo", repo, "--json", check=True)
        reports: list[dict[str, Any]] = json.loads(result.stdout)
        return [str(key) for key in reports[0]["unfinished_uploads_removed"]]


def until(condition: Any, what: str, process: subprocess.Popen[str] | None = None) -> None:
    """Poll condition() until true; fail after the deadline or when process exits."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        if process is not None and process.poll() is not None:
            _, err = process.communicate()
            pytest.fail(f"the writer exited ({process.returncode}) before {what}: {err}")
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


def kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.communicate()


def warned_about(verify: subprocess.CompletedProcess[str], key: str) -> bool:
    return any(
        "warning" in line and f"unfinished upload of {key}, " in line and " old" in line
        for line in verify.stderr.splitlines()
    )


# --- copy into a local repository ------------------------------------------------------------


def feed(fifo: Path, copy: subprocess.Popen[str]) -> int:
    """The write end of the FIFO, once the copy opened it to read."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
            assert copy.poll() is None, copy.communicate()[1]
            assert time.monotonic() < deadline, "the copy never opened the object"
            time.sleep(0.02)
            continue
        os.set_blocking(fd, True)
        return fd


def copy_stopped_mid_write(
    setup: Setup, origin: Path, size: int
) -> tuple[subprocess.Popen[str], int]:
    """A `copy --from origin` whose one WAL object is a FIFO, fed `size` bytes: it waits
    for more in the middle of writing them into the target. (The copy, the FIFO's write
    end, to keep open until the copy is killed.)"""
    fifo = origin / WAL_KEY
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo, 0o600)
    copy = setup.start("copy", "--from", "origin", "--to", "target", "--source", "wms")
    fd = feed(fifo, copy)
    os.write(fd, os.urandom(size))  # returns once the copy has read nearly all of it
    return copy, fd


def test_copy_killed_mid_write_leaves_a_temporary_file_until_the_grace_ends(
    tmp_path: Path,
) -> None:
    origin, target = tmp_path / "origin", tmp_path / "target"
    setup = Setup(tmp_path, {"origin": f'url = "{origin}"\n', "target": f'url = "{target}"\n'})
    # a local object is written a whole direct-write buffer at a time: more than one fed
    copy, fifo = copy_stopped_mid_write(setup, origin, BUFFER + MiB)

    def temporary() -> list[Path]:
        return [p for p in target.rglob("*") if temporary_target(p.name) is not None]

    until(
        lambda: [p for p in temporary() if p.stat().st_size == BUFFER],
        "a buffer is written",
        copy,
    )
    kill(copy)
    os.close(fifo)
    (origin / WAL_KEY).unlink()
    [leftover] = temporary()
    assert leftover.name.startswith(f"{Path(WAL_KEY).name}.tmp-")
    assert not (target / WAL_KEY).exists()

    verify = setup.run("verify")
    assert verify.returncode == 0, verify.stderr
    assert warned_about(verify, WAL_KEY), verify.stderr
    assert "older than 1h" in verify.stderr

    assert setup.prune_removes("target") == []  # inside the grace period: a writer may live
    assert leftover.exists()
    two_hours_ago = time.time() - 7200
    os.utime(leftover, (two_hours_ago, two_hours_ago))
    assert setup.prune_removes("target") == [WAL_KEY]
    assert not leftover.exists()
    assert not warned_about(setup.run("verify", check=True), WAL_KEY)


# --- into S3 -------------------------------------------------------------------------------

S3_TABLE = 'url = "{url}"\npart_size_mb = 5\nupload_grace = "0s"\n'


def multipart_uploads(bucket: str) -> list[str]:
    reply = admin_client(shared_moto().endpoint).list_multipart_uploads(Bucket=bucket)
    return [upload["Key"] for upload in reply.get("Uploads", [])]


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    name = bucket_name("unfinished")
    admin_client(s3_endpoint).create_bucket(Bucket=name)
    return name


def test_copy_killed_mid_upload_to_s3_leaves_a_multipart_upload_the_next_prune_aborts(
    tmp_path: Path, s3_endpoint: str, bucket: str
) -> None:
    """moto dates every upload 2010: the grace period is 0 here, so the first locked run
    removes it (tests/integration/test_s3_storage.py checks the age with real dates)."""
    origin = tmp_path / "origin"
    target_url = repository_url(bucket, s3_endpoint)
    setup = Setup(
        tmp_path,
        {"origin": f'url = "{origin}"\n', "target": S3_TABLE.format(url=target_url)},
    )
    copy, fifo = copy_stopped_mid_write(setup, origin, 6 * MiB)  # more than one 5 MiB part
    until(lambda: multipart_uploads(bucket) == [f"repo/{WAL_KEY}"], "the upload starts", copy)
    kill(copy)
    os.close(fifo)
    (origin / WAL_KEY).unlink()

    verify = setup.run("verify")
    assert verify.returncode == 0, verify.stderr
    assert warned_about(verify, WAL_KEY), verify.stderr
    assert setup.prune_removes("target") == [WAL_KEY]
    assert multipart_uploads(bucket) == []


@pytest.fixture
def held_parts(
    s3_endpoint: str,
) -> Iterator[tuple[FaultProxy, threading.Event, threading.Event]]:
    """A proxy in front of the emulator that holds every part upload until released: (the
    proxy, an event set when the first part arrives, the event that releases them)."""
    proxy = FaultProxy(shared_moto().port)
    arrived, release = threading.Event(), threading.Event()

    def hold_parts(exchange: Exchange) -> tuple[int, bytes] | None:
        if not is_part_upload(exchange) or release.is_set():
            return None
        arrived.set()
        release.wait(DEADLINE_SECONDS)
        return 503, SLOW_DOWN  # to a writer killed meanwhile

    proxy.fault = hold_parts
    proxy.start()
    yield proxy, arrived, release
    release.set()
    proxy.stop()


def test_wal_push_killed_mid_upload_leaves_a_multipart_upload_the_next_prune_aborts(
    tmp_path: Path, bucket: str, held_parts: tuple[FaultProxy, threading.Event, threading.Event]
) -> None:
    proxy, part_arrived, release = held_parts
    setup = Setup(tmp_path, {"s3": S3_TABLE.format(url=repository_url(bucket, proxy.endpoint))})
    segment = tmp_path / "pg_wal" / WAL_NAME
    segment.parent.mkdir()
    # a real segment's header, then incompressible bytes: several parts
    segment.write_bytes(long_header(segment_size=16 * MiB) + os.urandom(16 * MiB - 40))
    push = setup.start("wal-push", "wms", str(segment))
    assert part_arrived.wait(DEADLINE_SECONDS), "wal-push never uploaded a part"
    kill(push)
    [pending] = multipart_uploads(bucket)
    key = pending.removeprefix("repo/")
    assert key.startswith(f"wms/wal/0000000100000000/{WAL_NAME}-")

    verify = setup.run("verify")
    assert verify.returncode == 0, verify.stderr
    assert warned_about(verify, key), verify.stderr
    assert setup.prune_removes("s3") == [key]
    assert multipart_uploads(bucket) == []
    # and the segment goes up whole when PostgreSQL retries it
    release.set()
    assert setup.run("wal-push", "wms", str(segment)).returncode == 0


def test_on_s3_the_grace_counts_from_the_start_and_other_sources_are_left(
    s3_endpoint: str, bucket: str
) -> None:
    """The proxy gives the uploads of one key the real time, as S3 would, so that one is
    recent and the others old."""
    wal_key = "wms/wal/0000000100000000/000000010000000000000002-cd.zst.age"
    data_key = "wms/backups/20260101T000000Z/dump.zst.age"
    other_source = "crm/wal/0000000100000000/000000010000000000000001-ef.zst.age"
    admin = admin_client(s3_endpoint)
    for key in (wal_key, data_key, other_source):
        admin.create_multipart_upload(Bucket=bucket, Key=f"repo/{key}")
    admin.create_multipart_upload(Bucket=bucket, Key="elsewhere/obj")
    proxy = FaultProxy(shared_moto().port)
    proxy.rewrite_response = started_at(f"repo/{wal_key}", datetime.now(UTC))
    proxy.start()
    try:
        repo = Repository("main", S3Storage(repository_url(bucket, proxy.endpoint), OPTIONS))
        assert sorted(u.key for u in repo.pending_uploads()) == sorted(
            [wal_key, data_key, other_source]
        )
        assert [u.key for u in repo.remove_stale_uploads("wms")] == [data_key]
        assert sorted(multipart_uploads(bucket)) == sorted(
            ["elsewhere/obj", f"repo/{other_source}", f"repo/{wal_key}"]
        )
        repo.upload_grace = timedelta(0)
        assert [u.key for u in repo.remove_stale_uploads("wms")] == [wal_key]
        assert sorted(multipart_uploads(bucket)) == ["elsewhere/obj", f"repo/{other_source}"]
    finally:
        proxy.stop()
