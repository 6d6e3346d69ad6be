"""Real receivers of notifications, on loopback in the test's process: an HTTP server (a
webhook, Slack's incoming webhook, Apprise's json://, a healthchecks.io ping endpoint) and
an SMTP server (aiosmtpd) with STARTTLS or TLS, a certificate made for the test, and AUTH.
Each records what it got, for the test to read back."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered


@dataclass
class HttpReceiver:
    """Answers each request with the next status of `answers` (200 once they run out);
    `hold`, while not set, keeps every answer back (a receiver that does not answer)."""

    answers: list[int] = field(default_factory=list)
    hold: threading.Event | None = None
    received: list[Request] = field(default_factory=list)
    port: int = 0

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@contextlib.contextmanager
def http_receiver(answers: list[int] | None = None, hold: bool = False) -> Iterator[HttpReceiver]:
    receiver = HttpReceiver(list(answers or []), threading.Event() if hold else None)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with lock:
                status = receiver.answers.pop(0) if receiver.answers else 200
                receiver.received.append(
                    Request(self.command, self.path, dict(self.headers.items()), body, status)
                )
            if receiver.hold is not None:
                receiver.hold.wait()
            try:
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (a timeout test): nobody to answer

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the test reads what came, not the server's access log

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        if receiver.hold is not None:
            receiver.hold.set()
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key."""

    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def self_signed_certificate(folder: Path) -> Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lifeboat test SMTP")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(cert_file, key_file)


@dataclass
class SmtpReceiver:
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)


class _Handler:
    def __init__(self, receiver: SmtpReceiver) -> None:
        self.receiver = receiver

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.receiver.messages.append(parsed)
        return "250 OK"


class _AnyPortController(Controller):
    """Binds port 0 (the kernel's free port, no race with another program), then learns
    which port that was before the start-up check connects to it."""

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


@contextlib.contextmanager
def smtp_receiver(
    security: str,
    certificate: Certificate | None = None,
    login: tuple[str, str] | None = None,
    refuse_mechanisms: tuple[str, ...] = (),
) -> Iterator[SmtpReceiver]:
    """An SMTP server on a free loopback port. security: "starttls" (required before any
    mail or login), "tls" (TLS from the first byte) or "none"; login: the one user and
    password AUTH LOGIN/PLAIN accepts (None: no AUTH needed); refuse_mechanisms: AUTH
    mechanisms not offered (a client prefers PLAIN: refuse it to test LOGIN)."""
    receiver = SmtpReceiver(port=0)

    def authenticate(
        server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword) or login is None:
            return AuthResult(success=False, handled=False)
        user, password = data.login.decode(), data.password.decode()
        receiver.logins.append(f"{mechanism}:{user}")
        return AuthResult(success=(user, password) == login, handled=False)

    options: dict[str, Any] = {
        "authenticator": authenticate,
        # aiosmtpd cannot see TLS from the start: it would warn that AUTH is required
        # without TLS, so there the test checks that the client logged in
        "auth_required": login is not None and security != "tls",
        "auth_require_tls": security == "starttls",
        "auth_exclude_mechanism": list(refuse_mechanisms),
    }
    if security == "starttls":
        assert certificate is not None
        options["tls_context"] = certificate.server_context()
        options["require_starttls"] = True
    controller = _AnyPortController(
        _Handler(receiver),
        hostname="127.0.0.1",
        port=0,
        ssl_context=certificate.server_context() if security == "tls" and certificate else None,
        **options,
    )
    controller.start()
    try:
        receiver.port = controller.port
        yield receiver
    finally:
        controller.stop()
