"""A Google Cloud Storage emulator (gcp-storage-emulator, from PyPI) for the tests.

Each emulator is a subprocess listening on a free loopback port; nothing talks to Google.
Test modules import the fixtures from here:

    from tests.servers.gcs import gcs_endpoint, gcs_storage_factory  # noqa: F401
"""

from __future__ import annotations

import atexit
import http.client
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pytest

from lifeboat.repo.layout import object_kind
from lifeboat.storage.options import StorageOptions
from tests.servers.ports import start_http_server

if TYPE_CHECKING:  # the backend imports only where google-cloud-storage is installed
    from lifeboat.storage.gcs import GcsStorage

EMULATOR_COMMAND = "gcp-storage-emulator"
STARTUP_SECONDS = 30.0
STOP_SECONDS = 5.0

DEFAULT_OPTIONS = StorageOptions()


class GcsStorageFactory(Protocol):
    def __call__(self, name: str, options: StorageOptions = DEFAULT_OPTIONS) -> GcsStorage:
        """A storage at gs://<new bucket>/<name>."""
        ...


def emulator_executable() -> str | None:
    """The emulator installed next to this Python, else one on PATH."""
    beside = Path(sys.executable).with_name(EMULATOR_COMMAND)
    if beside.exists():
        return str(beside)
    return shutil.which(EMULATOR_COMMAND)


class GcsEmulator:
    """One gcp-storage-emulator process. With a data folder its objects survive a restart
    (so a test can kill it mid-upload and look afterwards); without, they live in memory.
    A restart goes to the same port, unless another program took it meanwhile (`endpoint`
    tells)."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self.port: int | None = None  # known once started
        self.data_dir = data_dir
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> GcsEmulator:
        executable = emulator_executable()
        if executable is None:
            pytest.skip(f"{EMULATOR_COMMAND} is not installed (pip install gcp-storage-emulator)")
        # what it says at start, for the failure message; later output is of no use
        with tempfile.TemporaryDirectory(prefix="lifeboat-gcs-") as folder:
            log_path = Path(folder) / "emulator.log"

            def launch(port: int) -> subprocess.Popen[bytes]:
                command = [executable]
                if self.data_dir is not None:
                    command.append(f"--data-dir={self.data_dir}")
                command += ["start", "--host=127.0.0.1", f"--port={port}", "--quiet"]
                if self.data_dir is None:
                    command.append("--in-memory")
                with open(log_path, "ab") as log:
                    return subprocess.Popen(
                        command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
                    )

            self._process, self.port = start_http_server(
                launch,
                EMULATOR_COMMAND,
                lambda: log_path.read_text(errors="replace"),
                answering_at="/storage/v1/b",
                port=self.port,
                timeout=STARTUP_SECONDS,
            )
        return self

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

    def create_bucket(self) -> str:
        return create_bucket(self.endpoint)


def create_bucket(endpoint: str) -> str:
    """A new bucket with a unique name on the emulator at endpoint."""
    name = f"lifeboat-{uuid.uuid4().hex[:16]}"
    request = urllib.request.Request(
        f"{endpoint}/storage/v1/b?project=lifeboat",
        data=json.dumps({"name": name}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10):
        return name


UPLOAD_ID = re.compile(r"[?&]upload_id=([^&]+)")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te"}
# (number, method, path) -> the status and message to answer with instead of the emulator
Refusal = Callable[[int, str, str], "tuple[int, str] | None"]
# (number, method, path) -> whether to cut the answer short
Fault = Callable[[int, str, str], bool]


def no_refusal(number: int, method: str, path: str) -> tuple[int, str] | None:
    return None


def no_fault(number: int, method: str, path: str) -> bool:
    return False


def throttle(when: Fault) -> Refusal:
    """Answer 503 (slow down), as a throttled service does, to the requests `when` picks."""

    def refuse(number: int, method: str, path: str) -> tuple[int, str] | None:
        return (
            (503, "injected by the test proxy: slow down") if when(number, method, path) else None
        )

    return refuse


class FaultProxy:
    """A loopback HTTP relay in front of an emulator, for faults the emulator cannot cause.

    Each request (numbered from 1) is recorded as (method, path) in `requests`, then:
    - if `refuse(number, method, path)` gives a status and message, answered with them
      as the service would, without being passed on (recorded in `refused`);
    - else if `cut(number, method, path)`, passed on, but only half of the answer's body is
      sent back before the connection is closed, like a connection lost midway;
    - else passed on. Host is kept, so the emulator's resumable session URLs point back at
      the proxy.

    gcp-storage-emulator answers a status query on a resumable session that holds no bytes
    with `Range: bytes=0-0` (one byte received) where the service sends no Range header
    (none received); the proxy drops that header while it has relayed no chunk of the
    session, so that a throttled first chunk is resumed as it would be against GCS."""

    def __init__(self, upstream: str, refuse: Refusal = no_refusal, cut: Fault = no_fault) -> None:
        host, port = upstream.removeprefix("http://").rsplit(":", 1)
        self.upstream = (host, int(port))
        self._refuse = refuse
        self._cut = cut
        self.requests: list[tuple[str, str]] = []
        self.refused: list[tuple[str, str]] = []
        self._sessions_with_bytes: set[str] = set()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _relay_handler(self))
        self._server.daemon_threads = True
        # a short poll keeps shutdown() quick
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def verdict(self, method: str, path: str) -> tuple[int, str] | str:
        """The status and message of a refusal, else "cut" or "relay"."""
        with self._lock:
            self.requests.append((method, path))
            number = len(self.requests)
            refusal = self._refuse(number, method, path)
            if refusal is not None:
                self.refused.append((method, path))
                return refusal
            return "cut" if self._cut(number, method, path) else "relay"

    def relayed(self, method: str, path: str, body: bytes, status: int) -> None:
        session = UPLOAD_ID.search(path)
        if session and method == "PUT" and body and status in (200, 201, 308):
            with self._lock:
                self._sessions_with_bytes.add(session[1])

    def holds_no_bytes(self, path: str) -> bool:
        session = UPLOAD_ID.search(path)
        with self._lock:
            return session is not None and session[1] not in self._sessions_with_bytes


def _relay_handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Relay(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._relay()

        do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

        def _relay(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            verdict = proxy.verdict(self.command, self.path)
            if isinstance(verdict, tuple):
                status, message = verdict
                error = {"error": {"code": status, "message": message}}
                self._answer(
                    status, {"Content-Type": "application/json"}, json.dumps(error).encode()
                )
                return
            status, headers, data = self._pass_on(body)
            if status == 308 and not body and proxy.holds_no_bytes(self.path):
                headers.pop("Range", None)
            proxy.relayed(self.command, self.path, body, status)
            if verdict == "cut":
                self._answer(status, headers, data, send=len(data) // 2)
                self.close_connection = True
            else:
                self._answer(status, headers, data)

        def _pass_on(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            upstream = http.client.HTTPConnection(*proxy.upstream, timeout=30)
            try:
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                kept = HOP_BY_HOP | {"content-length"}
                answer = {k: v for k, v in response.getheaders() if k.lower() not in kept}
                return response.status, answer, data
            finally:
                upstream.close()

        def _answer(
            self, status: int, headers: dict[str, str], data: bytes, send: int | None = None
        ) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data if send is None else data[:send])

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Relay


_shared: GcsEmulator | None = None


def shared_emulator() -> GcsEmulator:
    """One in-memory emulator for the whole test run, started on first use: the fixtures
    and the contract suite share it."""
    global _shared
    if _shared is None:
        _shared = GcsEmulator().start()
        atexit.register(_stop_shared)
    return _shared


def _stop_shared() -> None:
    global _shared
    if _shared is not None:
        _shared.stop()
        _shared = None


@pytest.fixture(scope="session")
def gcs_endpoint() -> Iterator[str]:
    """The URL of the emulator shared by the session's tests."""
    yield shared_emulator().endpoint
    _stop_shared()


@pytest.fixture
def gcs_storage_factory(gcs_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> GcsStorageFactory:
    """make(name, options=StorageOptions()): a GcsStorage at gs://<new bucket>/<name> on the
    session's emulator, opened the way Lifeboat opens one, from STORAGE_EMULATOR_HOST (set for
    the test's duration)."""
    pytest.importorskip("google.cloud.storage")
    from lifeboat.storage.gcs import GcsStorage

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_endpoint)

    def make(name: str, options: StorageOptions = DEFAULT_OPTIONS) -> GcsStorage:
        bucket = create_bucket(gcs_endpoint)
        return GcsStorage(f"gs://{bucket}/{name}", options, classify=object_kind)

    return make


def gcs_contract_storage(tmp: Path) -> GcsStorage:
    """A storage on a new bucket of the shared emulator, for the contract suite's BACKENDS
    (whose entries receive only a temporary folder). Small parts, so that the suite's
    multi-megabyte objects go up as resumable uploads of several chunks."""
    pytest.importorskip("google.cloud.storage")
    from lifeboat.storage.gcs import GcsStorage

    emulator = shared_emulator()
    return GcsStorage(
        f"gs://{emulator.create_bucket()}/repo",
        StorageOptions(part_size=256 * 1024),
        emulator_host=emulator.endpoint,
        classify=object_kind,
    )
