"""A Google Cloud Storage emulator (gcp-storage-emulator, from PyPI) for the tests.

Each emulator is a subprocess listening on a free loopback port; nothing talks to Google.
Test modules import the fixtures from here:

    from tests.servers.gcs import gcs_endpoint, gcs_storage_factory  # noqa: F401
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from lifeboat.storage.options import StorageOptions

if TYPE_CHECKING:  # the backend imports only where google-cloud-storage is installed
    from lifeboat.storage.gcs import GcsStorage

EMULATOR_COMMAND = "gcp-storage-emulator"
STARTUP_SECONDS = 30.0
STOP_SECONDS = 5.0

GcsStorageFactory = Callable[..., "GcsStorage"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def emulator_executable() -> str | None:
    """The emulator installed next to this Python, else one on PATH."""
    beside = Path(sys.executable).with_name(EMULATOR_COMMAND)
    if beside.exists():
        return str(beside)
    return shutil.which(EMULATOR_COMMAND)


class GcsEmulator:
    """One gcp-storage-emulator process. With a data folder its objects survive a restart
    on the same port (so a test can kill it mid-upload and look afterwards); without, they
    live in memory."""

    def __init__(self, data_dir: Path | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        self.data_dir = data_dir
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> GcsEmulator:
        executable = emulator_executable()
        if executable is None:
            pytest.skip(f"{EMULATOR_COMMAND} is not installed (pip install gcp-storage-emulator)")
        command = [executable, "start", "--host=127.0.0.1", f"--port={self.port}"]
        environment = dict(os.environ)
        if self.data_dir is None:
            command.append("--in-memory")
        else:
            environment["STORAGE_BASE"] = str(self.data_dir)
            environment["STORAGE_DIR"] = "storage"
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=environment,
            cwd=self.data_dir,
        )
        self._wait_until_ready()
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"{EMULATOR_COMMAND} exited with {self._process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/storage/v1/b", timeout=1):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{EMULATOR_COMMAND} did not answer within {STARTUP_SECONDS}s")

    def kill(self) -> None:
        """Stop at once, the way a crash or a lost network would."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def create_bucket(self, name: str | None = None) -> str:
        name = name or f"lifeboat-{uuid.uuid4().hex[:16]}"
        request = urllib.request.Request(
            f"{self.endpoint}/storage/v1/b?project=lifeboat",
            data=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10):
            return name


@pytest.fixture(scope="session")
def gcs_endpoint() -> Iterator[str]:
    """The URL of an in-memory emulator shared by the session's tests."""
    emulator = GcsEmulator().start()
    try:
        yield emulator.endpoint
    finally:
        emulator.stop()


def create_bucket(endpoint: str) -> str:
    emulator = GcsEmulator(port=int(endpoint.rsplit(":", 1)[1]))
    return emulator.create_bucket()


@pytest.fixture
def gcs_storage_factory(gcs_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> GcsStorageFactory:
    """Makes `(name, options=StorageOptions()) -> GcsStorage` on a new bucket of the session's
    emulator, with STORAGE_EMULATOR_HOST pointing at it for the test's duration."""
    pytest.importorskip("google.cloud.storage")
    from lifeboat.storage.gcs import GcsStorage

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_endpoint)

    def make(name: str, options: StorageOptions = StorageOptions()) -> GcsStorage:
        bucket = create_bucket(gcs_endpoint)
        return GcsStorage(f"gs://{bucket}/{name}", options)

    return make


_contract_emulator: GcsEmulator | None = None


def contract_gcs_storage(tmp: Path) -> GcsStorage:
    """For the storage contract suite (BACKENDS takes a plain function of tmp_path): a new
    bucket on one emulator started on first use and stopped when the tests end."""
    global _contract_emulator
    pytest.importorskip("google.cloud.storage")
    from lifeboat.storage.gcs import GcsStorage

    if _contract_emulator is None:
        _contract_emulator = GcsEmulator().start()
        atexit.register(_contract_emulator.stop)
    bucket = _contract_emulator.create_bucket()
    return GcsStorage(
        f"gs://{bucket}/repo",
        StorageOptions(part_size=256 * 1024, max_attempts=3),
        emulator_host=_contract_emulator.endpoint,
    )
