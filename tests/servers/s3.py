"""A real S3 emulator for the tests: moto's server in a subprocess on a free loopback port.

Test modules bind the fixtures they use (tests/conftest.py stays untouched); binding them
rather than importing them by name keeps ruff from flagging parameters of the same name:

    from tests.servers import s3 as s3_servers
    s3_endpoint = s3_servers.s3_endpoint
    s3_storage_factory = s3_servers.s3_storage_factory

FaultProxy sits between a storage and the emulator for the few faults the emulator cannot
produce for real (throttling, a damaged response, an outage that keeps the server's state).
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3.session
import pytest
from botocore.config import Config

from lifeboat.repo.layout import object_kind
from lifeboat.storage.options import StorageOptions
from lifeboat.storage.s3 import S3Storage
from tests.servers.ports import start_http_server

REGION = "us-east-1"
START_TIMEOUT = 60.0
# dummy credentials for the whole session; the user's own (~/.aws, a profile, an instance
# role) must never be used, nor sent to the emulator
SESSION_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
UNSET_ENVIRONMENT = ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION", "AWS_ENDPOINT_URL")


class MotoServer:
    """moto's S3 (and IAM) server as a child process; its state lives in its memory."""

    def __init__(self, log_dir: Path) -> None:
        self.port = 0  # known once started
        self.log_dir = log_dir
        self._log_path = log_dir / "moto.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._process, self.port = start_http_server(
            self._launch,
            "moto",
            lambda: self._log_path.read_text(errors="replace"),
            answering_at="/moto-api/",
            timeout=START_TIMEOUT,
        )

    def _launch(self, port: int) -> subprocess.Popen[bytes]:
        with open(self._log_path, "ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        """Kill the server, as a crash would: no graceful shutdown."""
        if self._process is None:
            return
        self._process.kill()
        self._process.wait(timeout=10)
        self._process = None

    def set_authentication(self, unauthenticated_requests: int) -> None:
        """moto checks credentials (against its IAM) once this many more requests have
        been let through; a huge number turns the checks off again."""
        request = urllib.request.Request(
            f"{self.endpoint}/moto-api/reset-auth",
            data=str(unauthenticated_requests).encode(),
            # not a form: moto reads the raw body
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10):
            pass


AUTHENTICATION_OFF = 1_000_000_000


def admin_client(endpoint: str) -> Any:
    """A plain boto3 client on the emulator, for setting up and inspecting buckets."""
    return boto3.session.Session().client(
        "s3",
        region_name=REGION,
        endpoint_url=endpoint,
        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 2}),
    )


def repository_url(bucket: str, endpoint: str, prefix: str = "repo") -> str:
    return f"s3://{bucket}/{prefix}?region={REGION}&endpoint={endpoint}"


_shared: MotoServer | None = None
_shared_lock = threading.Lock()
_saved_environment: dict[str, str | None] = {}


def shared_moto() -> MotoServer:
    """The moto server of this test session, started on first use (by the fixtures or by
    the contract suite) and stopped at the end; the dummy credentials are in the
    environment meanwhile."""
    global _shared
    with _shared_lock:
        if _shared is None:
            server = MotoServer(Path(tempfile.mkdtemp(prefix="lifeboat-moto-")))
            _use_dummy_credentials()
            try:
                server.start()
            except BaseException:
                _restore_environment()
                shutil.rmtree(server.log_dir, ignore_errors=True)
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
        shutil.rmtree(server.log_dir, ignore_errors=True)
        _restore_environment()


def _use_dummy_credentials() -> None:
    _saved_environment.update(
        {name: os.environ.get(name) for name in (*SESSION_ENVIRONMENT, *UNSET_ENVIRONMENT)}
    )
    os.environ.update(SESSION_ENVIRONMENT)
    for name in UNSET_ENVIRONMENT:
        os.environ.pop(name, None)


def _restore_environment() -> None:
    for name, value in _saved_environment.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    _saved_environment.clear()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """URL (http://127.0.0.1:PORT) of the session's moto server, stopped at the end."""
    yield shared_moto().endpoint
    _stop_shared()


def bucket_name(name: str) -> str:
    readable = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")[:40]
    return f"{readable or 'bucket'}-{uuid.uuid4().hex[:12]}"


StorageFactory = Callable[..., S3Storage]
DEFAULT_OPTIONS = StorageOptions()


@pytest.fixture
def s3_storage_factory(s3_endpoint: str) -> Iterator[StorageFactory]:
    """make(name, options=StorageOptions(), lock=False): a storage on a new bucket (with
    Object Lock when lock=True), at s3://<bucket>/repo. Buckets without locks are emptied
    and removed after the test."""
    admin = admin_client(s3_endpoint)
    created: list[tuple[str, bool]] = []

    def make(name: str, options: StorageOptions = DEFAULT_OPTIONS, lock: bool = False) -> S3Storage:
        bucket = bucket_name(name)
        admin.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=lock)
        created.append((bucket, lock))
        return S3Storage(repository_url(bucket, s3_endpoint), options, classify=object_kind)

    yield make
    for bucket, lock in created:
        if not lock:  # locked objects cannot go; moto's memory is freed at session end
            _remove_bucket(admin, bucket)


# S3's smallest part: the contract suite's multi-megabyte objects go up in several parts
CONTRACT_OPTIONS = StorageOptions(part_size=5 * 1024 * 1024)


def s3_contract_storage(tmp: Path, lock: bool = False) -> S3Storage:
    """A storage on a new bucket (with Object Lock when lock=True) of the session's moto
    server, for the contract suite's BACKENDS (whose entries receive only a temporary
    folder)."""
    endpoint = shared_moto().endpoint
    bucket = bucket_name("contract")
    admin_client(endpoint).create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=lock)
    return S3Storage(repository_url(bucket, endpoint), CONTRACT_OPTIONS, classify=object_kind)


def _remove_bucket(admin: Any, bucket: str) -> None:
    try:
        for page in admin.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
            for upload in page.get("Uploads", []):
                admin.abort_multipart_upload(
                    Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
        for page in admin.get_paginator("list_object_versions").paginate(Bucket=bucket):
            for entry in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                admin.delete_object(Bucket=bucket, Key=entry["Key"], VersionId=entry["VersionId"])
        admin.delete_bucket(Bucket=bucket)
    except Exception:
        pass  # the emulator may have been stopped by the test; its state goes with it


# --- fault injection -----------------------------------------------------------------------

SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)
HOP_BY_HOP = frozenset({"connection", "keep-alive", "expect", "transfer-encoding", "te", "upgrade"})


class Exchange:
    """One request through the proxy, as fault rules see and change it."""

    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body

    @property
    def query(self) -> str:
        return self.path.partition("?")[2]


# A fault rule gets each request: it returns a (status, body) to answer instead of the
# server, or None to forward it; it may change the request's body on the way.
FaultRule = Callable[[Exchange], tuple[int, bytes] | None]
# A response rule may change the server's answer: it gets the headers (name -> value, to
# change in place) and the body, and returns the body to send.
ResponseRule = Callable[[Exchange, dict[str, str], bytes], bytes]

MOTO_INITIATED = b"2010-11-10T20:48:33.000Z"  # moto's start time of every multipart upload


def started_at(key: str, moment: datetime) -> ResponseRule:
    """A response rule that gives the multipart uploads of one key (of the bucket) that start
    time in upload listings, as S3 would report it, so that uploads can differ in age."""
    stamp = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z").encode()

    def rewrite(exchange: Exchange, headers: dict[str, str], body: bytes) -> bytes:
        if "uploads" not in exchange.query:
            return body
        before, listed, rest = body.partition(f"<Key>{key}</Key>".encode())
        return before + listed + rest.replace(MOTO_INITIATED, stamp, 1) if listed else body

    return rewrite


class FaultProxy:
    """A loopback HTTP proxy in front of the emulator that can answer some requests itself
    (e.g. 503 SlowDown), alter them, or go down (refusing connections) and come back with
    the server's state intact (on the same port, unless another program took it meanwhile:
    `endpoint` tells)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0  # the system picks it at the first start
        self.fault: FaultRule = lambda exchange: None
        self.rewrite_response: ResponseRule = lambda exchange, headers, body: body
        # bytes of a response body to send before cutting the connection, or None
        self.cut_response: Callable[[Exchange], int | None] = lambda exchange: None
        self.requests: list[tuple[str, str]] = []
        self.injected = 0
        self._server: ThreadingHTTPServer | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen: on a port the system picks, then (coming back up) on the same one, unless
        another program took it while the proxy was down: then on a new one."""
        try:
            self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler_class())
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.port = self._server.server_address[1]
        self._server.daemon_threads = True
        # a short poll interval makes stop() quick
        serve = partial(self._server.serve_forever, poll_interval=0.05)
        threading.Thread(target=serve, daemon=True).start()

    def stop(self) -> None:
        """Go down: stop listening and cut the open connections."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server = None
        with self._lock:
            for connection in self._connections:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._connections.clear()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, and 100-continue for uploads

            def handle(self) -> None:
                # a client killed while the proxy held its request is gone: nobody to answer
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    super().handle()

            def setup(self) -> None:
                super().setup()
                with proxy._lock:
                    proxy._connections.add(self.connection)

            def finish(self) -> None:
                with proxy._lock:
                    proxy._connections.discard(self.connection)
                super().finish()

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                exchange = Exchange(self.command, self.path, dict(self.headers.items()), body)
                proxy.requests.append((self.command, self.path))
                answer = proxy.fault(exchange)
                if answer is not None:
                    proxy.injected += 1
                    self._answer(answer[0], {"Content-Type": "application/xml"}, answer[1])
                    return
                status, headers, reply = proxy._forward(exchange)
                reply = proxy.rewrite_response(exchange, headers, reply)
                cut_after = proxy.cut_response(exchange)
                if cut_after is None:
                    self._answer(status, headers, reply)
                    return
                proxy.injected += 1
                # announce the whole body, send the start of it, then drop the connection
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in HOP_BY_HOP:
                        self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply[:cut_after])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                        self.send_header(name, value)
                length = headers.get("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _relay

        return Handler

    def _forward(self, exchange: Exchange) -> tuple[int, dict[str, str], bytes]:
        upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=60)
        try:
            headers = {
                name: value
                for name, value in exchange.headers.items()
                if name.lower() not in HOP_BY_HOP
            }
            upstream.request(exchange.method, exchange.path, exchange.body, headers)
            response = upstream.getresponse()
            reply = response.read()
            return response.status, dict(response.getheaders()), reply
        finally:
            upstream.close()


def is_part_upload(exchange: Exchange) -> bool:
    return exchange.method == "PUT" and "uploadId=" in exchange.query


def slow_down_every_other(matches: Callable[[Exchange], bool]) -> FaultRule:
    """Answer 503 SlowDown to every other request that `matches`, starting with the first."""
    seen = 0

    def rule(exchange: Exchange) -> tuple[int, bytes] | None:
        nonlocal seen
        if not matches(exchange):
            return None
        seen += 1
        return (503, SLOW_DOWN) if seen % 2 == 1 else None

    return rule
