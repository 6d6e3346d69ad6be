"""Azurite, the Azure Storage emulator, for tests of the Azure Blob Storage backend.

Azurite comes from npm and is installed on first use into .cache/azurite in the checkout
(scripts/setup.sh can do it beforehand). Each server listens on a free loopback port and keeps
its data in a temporary folder. Without node and npm the tests that need it are skipped.

Test modules import the fixtures (tests/conftest.py does not):

    from tests.servers.azure import azure_storage_factory, azurite_endpoint  # noqa: F401
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import http.client
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple, Protocol

import pytest

from lifeboat.repo.layout import object_kind
from lifeboat.storage.azure import (
    ACCOUNT_ENV,
    BLOB_ENDPOINT_ENV,
    CONNECTION_STRING_ENV,
    KEY_ENV,
    SAS_TOKEN_ENV,
    AzureBlobStorage,
)
from lifeboat.storage.base import Storage
from lifeboat.storage.options import StorageOptions
from tests.environment import changed_environment
from tests.servers.ports import start_http_server

PROJECT_ROOT = Path(__file__).resolve().parents[2]
AZURITE_DIR = PROJECT_ROOT / ".cache" / "azurite"
AZURITE_BIN = AZURITE_DIR / "node_modules" / ".bin" / "azurite-blob"
AZURITE_PACKAGE = "azurite@3"
STARTUP_TIMEOUT_SECONDS = 60.0

# Azurite's well-known development account (public, documented by Microsoft)
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
AZURE_VARIABLES = (CONNECTION_STRING_ENV, ACCOUNT_ENV, KEY_ENV, SAS_TOKEN_ENV, BLOB_ENDPOINT_ENV)
DEFAULT_OPTIONS = StorageOptions()


def connection_string(endpoint: str, key: str = DEV_KEY) -> str:
    """A connection string for the development account at a blob endpoint."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={key};"
        f"BlobEndpoint={endpoint};"
    )


def azurite_binary() -> Path:
    """The azurite-blob launcher, installed with npm on first use."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Azurite needs node and npm (Debian packages nodejs and npm)")
    if AZURITE_BIN.exists():
        return AZURITE_BIN
    AZURITE_DIR.mkdir(parents=True, exist_ok=True)
    # two test processes starting at once must not run npm into the same folder
    with open(AZURITE_DIR.parent / "azurite.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not AZURITE_BIN.exists():
            _npm_install()
    return AZURITE_BIN


def _npm_install() -> None:
    command = ["npm", "install", "--prefix", str(AZURITE_DIR), AZURITE_PACKAGE]
    done = subprocess.run(
        [*command, "--no-audit", "--no-fund", "--loglevel=error"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not AZURITE_BIN.exists():
        pytest.fail(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}", pytrace=False)


class Azurite:
    """One Azurite blob service on a loopback port, its data kept under `location`; it can be
    stopped (saving its data), killed like a crash, and started again: on the same port,
    unless another program took it meanwhile (`endpoint` tells)."""

    def __init__(self, location: Path) -> None:
        self.location = location
        self.port: int | None = None  # known once started
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def listening_port(self) -> int:
        """The port it answers on; asking before it was started is the test's mistake."""
        assert self.port is not None, "Azurite was not started"
        return self.port

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{DEV_ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return connection_string(self.endpoint)

    def start(self) -> None:
        binary = azurite_binary()
        self.location.mkdir(parents=True, exist_ok=True)
        log_path = self.location / "azurite.log"

        def launch(port: int) -> subprocess.Popen[bytes]:
            command = [
                str(binary),
                *("--blobHost", "127.0.0.1", "--blobPort", str(port)),
                *("--location", str(self.location)),
                *("--skipApiVersionCheck", "--silent", "--loose"),
            ]
            with open(log_path, "ab") as log:
                return subprocess.Popen(
                    command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )

        self._process, self.port = start_http_server(
            launch,
            "Azurite",
            lambda: log_path.read_text(errors="replace"),
            answering_at=f"/{DEV_ACCOUNT}?comp=list",
            port=self.port,
            timeout=STARTUP_TIMEOUT_SECONDS,
        )

    def stop(self) -> None:
        """Terminate politely: Azurite saves its metadata before exiting."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """Kill like a crash: requests in flight break off, nothing is saved on the way out."""
        self._end(signal.SIGKILL)

    def _end(self, how: signal.Signals) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, how)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# --- the session's server and its containers ----------------------------------------------

_shared: Azurite | None = None
_shared_lock = threading.Lock()


def shared_azurite() -> Azurite:
    """The Azurite of this test session, started on first use (by the fixture or by the
    contract suite) and stopped at the end."""
    global _shared
    with _shared_lock:
        if _shared is None:
            azurite_binary()  # skips (without node) or installs before anything is created
            server = Azurite(Path(tempfile.mkdtemp(prefix="lifeboat-azurite-")))
            try:
                server.start()
            except BaseException:
                shutil.rmtree(server.location, ignore_errors=True)
                raise
            atexit.register(_stop_shared)
            _shared = server
        return _shared


def _stop_shared() -> None:
    global _shared
    with _shared_lock:
        server, _shared = _shared, None
    if server is not None:
        server.stop()
        shutil.rmtree(server.location, ignore_errors=True)


def container_name(label: str) -> str:
    """A unique, valid container name that starts with a readable label."""
    readable = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:40]
    return f"{readable or 'container'}-{uuid.uuid4().hex[:12]}"


def new_container(connection: str, label: str = "test") -> str:
    """Create an empty container with a unique name."""
    from azure.storage.blob import BlobServiceClient

    name = container_name(label)
    with BlobServiceClient.from_connection_string(connection) as service:
        service.create_container(name)
    return name


@contextlib.contextmanager
def azure_environment(connection: str) -> Iterator[None]:
    """AZURE_STORAGE_CONNECTION_STRING set (and no other Azure variable) for the block."""
    unset: dict[str, str | None] = dict.fromkeys(AZURE_VARIABLES)
    with changed_environment({**unset, CONNECTION_STRING_ENV: connection}):
        yield


def azure_contract_storage(tmp: Path) -> Storage:
    """A storage on a fresh container of the session's Azurite, for the contract suite's
    BACKENDS (whose entries receive only a temporary folder)."""
    server = shared_azurite()
    container = new_container(server.connection_string, "contract")
    with azure_environment(server.connection_string):
        return AzureBlobStorage(f"az://{container}/repo", DEFAULT_OPTIONS, classify=object_kind)


class StorageFactory(Protocol):
    def __call__(self, name: str, options: StorageOptions = DEFAULT_OPTIONS) -> AzureBlobStorage:
        """A storage at az://<new container named after `name`>/repo."""
        ...


@pytest.fixture(scope="session")
def azurite_endpoint() -> Iterator[str]:
    """The connection string of the session's Azurite (development account)."""
    yield shared_azurite().connection_string
    _stop_shared()


@pytest.fixture
def azure_storage_factory(azurite_endpoint: str) -> Iterator[StorageFactory]:
    """make(name, options=StorageOptions()): a storage at az://<new container>/repo on the
    session's Azurite, opened the way Lifeboat opens one, from AZURE_STORAGE_CONNECTION_STRING
    (set for the test, the environment restored after). Its containers are removed after."""
    containers: list[str] = []

    def make(name: str, options: StorageOptions = DEFAULT_OPTIONS) -> AzureBlobStorage:
        container = new_container(azurite_endpoint, name)
        containers.append(container)
        return AzureBlobStorage(f"az://{container}/repo", options, classify=object_kind)

    with azure_environment(azurite_endpoint):
        yield make
    _delete_containers(azurite_endpoint, containers)


def _delete_containers(connection: str, names: list[str]) -> None:
    from azure.storage.blob import BlobServiceClient

    with BlobServiceClient.from_connection_string(connection) as service:
        for name in names:
            with contextlib.suppress(Exception):
                service.delete_container(name)


# --- fault injection ---------------------------------------------------------------------


class Fault(NamedTuple):
    """An error answer as the Azure service sends it."""

    status: int
    code: str
    message: str


SERVER_BUSY = Fault(503, "ServerBusy", "Ingress is over the account limit.")
IMMUTABLE = Fault(
    409,
    "BlobImmutableDueToPolicy",
    "This operation is not permitted as the blob is immutable due to a policy.",
)
# picks the fault (or None: pass through) for a request, from its method, path and headers
FaultPolicy = Callable[[str, str, Mapping[str, str]], Fault | None]
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "proxy-connection"})


class FaultProxy:
    """A loopback HTTP proxy in front of Azurite for failures Azurite cannot produce by itself
    (throttling, immutability policies): it answers the requests `policy` picks with that
    fault, as Azure would, and relays the rest. `seen` records (method, path, status) of every
    request, so tests can count attempts."""

    def __init__(self, upstream_port: int, policy: FaultPolicy) -> None:
        self.upstream_port = upstream_port
        self.policy = policy
        self.seen: list[tuple[str, str, int]] = []
        self._seen_lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/{DEV_ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return connection_string(self.endpoint)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def record(self, method: str, path: str, status: int) -> None:
        with self._seen_lock:
            self.seen.append((method, path, status))

    def statuses(self, method: str) -> list[int]:
        with self._seen_lock:
            return [status for seen_method, _, status in self.seen if seen_method == method]


def first_attempt_of_each_request(fault: Fault) -> FaultPolicy:
    """Fail every distinct request (method, path, range) once, let its retry through."""
    failed: set[tuple[str, str, str]] = set()
    lock = threading.Lock()

    def policy(method: str, path: str, headers: Mapping[str, str]) -> Fault | None:
        request = (method, path, headers.get("x-ms-range") or headers.get("Range") or "")
        with lock:
            if request in failed:
                return None
            failed.add(request)
            return fault

    return policy


def _fault_body(fault: Fault) -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{fault.code}</Code>'
        f"<Message>{fault.message}</Message></Error>"
    ).encode()


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's connection pool expects

        def _relay(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            fault = proxy.policy(self.command, self.path, headers)
            if fault is not None:
                proxy.record(self.command, self.path, fault.status)
                payload = _fault_body(fault)
                headers = {"x-ms-error-code": fault.code, "Content-Type": "application/xml"}
                self._answer(fault.status, headers, payload)
                return
            upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=30)
            try:
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                payload = response.read()
                answer = {k: v for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP}
            finally:
                upstream.close()
            proxy.record(self.command, self.path, response.status)
            self._answer(response.status, answer, payload)

        def _answer(self, status: int, headers: Mapping[str, str], payload: bytes) -> None:
            self.send_response_only(status)
            for name, value in headers.items():
                if name.lower() != "content-length":
                    self.send_header(name, value)
            if self.command == "HEAD":
                # a HEAD answer gives the blob's length without sending the blob
                length = {k.lower(): v for k, v in headers.items()}.get("content-length", "0")
                self.send_header("Content-Length", length)
            else:
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _relay

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep the test output clean

    return Handler
