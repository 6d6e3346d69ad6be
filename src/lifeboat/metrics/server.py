"""The daemon's HTTP endpoint on `[metrics] listen`: /metrics (the Prometheus text format,
or OpenMetrics when asked) and /healthz (200 while the daemon's heartbeat is fresh, 503
otherwise, for systemd watchdogs, Kubernetes liveness probes and load balancers).

A small http.server rather than prometheus_client.start_http_server, so /healthz lives
beside /metrics on one port. Each request runs in its own thread; a slow repository
refresh holds up scrapes, never the daemon's scheduler."""

from __future__ import annotations

import errno
import logging
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry

from lifeboat.config.model import listen_address
from lifeboat.errors import LifeboatError
from lifeboat.metrics.runs import DaemonMetrics

log = logging.getLogger(__name__)

# (healthy, why): what /healthz answers
Health = Callable[[], tuple[bool, str]]


class ListenError(LifeboatError):
    """The metrics endpoint cannot listen where it is told (exit 1)."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a scrape in progress does not hold up the daemon's exit


class _Server6(_Server):
    address_family = socket.AF_INET6


def _handler(registry: CollectorRegistry, health: Health) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                try:
                    body = encoder(registry)
                except Exception as exc:  # one failed scrape, not a dead endpoint
                    log.exception("metrics could not be collected")
                    why = f"metrics could not be collected: {type(exc).__name__}: {exc}\n"
                    self._send(500, "text/plain; charset=utf-8", why.encode())
                    return
                self._send(200, content_type, body)
            elif path == "/healthz":
                healthy, why = health()
                self._send(
                    200 if healthy else 503, "text/plain; charset=utf-8", why.encode() + b"\n"
                )
            elif path == "/":
                body = b"Lifeboat: /metrics (Prometheus), /healthz (the daemon's heartbeat)\n"
                self._send(200, "text/plain; charset=utf-8", body)
            else:
                self._send(404, "text/plain; charset=utf-8", b"not found\n")

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("metrics endpoint: " + format, *args)

    return Handler


class MetricsServer:
    """Serves the registry until stopped; start() binds first, so a port in use is the
    daemon's error before it runs any job."""

    def __init__(self, listen: str, registry: CollectorRegistry, health: Health) -> None:
        self.listen = listen
        self._registry = registry
        self._health = health
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port bound (the one asked for, or the one the system chose for port 0)."""
        assert self._server is not None
        return int(self._server.server_address[1])

    def start(self) -> None:
        host, port = listen_address(self.listen)
        server_class = _Server6 if ":" in host else _Server
        try:
            self._server = server_class((host, port), _handler(self._registry, self._health))
        except OSError as exc:
            raise ListenError(self._refusal(exc)) from None
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-endpoint", daemon=True
        )
        self._thread.start()
        log.info("serving /metrics and /healthz on %s, port %d", self.listen, self.port)

    def _refusal(self, exc: OSError) -> str:
        if exc.errno == errno.EADDRINUSE:
            why = "the port is in use (another daemon running? change [metrics] listen)"
        elif exc.errno == errno.EACCES:
            why = "permission denied (ports below 1024 need privileges)"
        elif isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
            why = "no such address on this host"
        else:
            why = exc.strerror or str(exc)
        return f"cannot serve metrics on {self.listen}: {why}"

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None


# the daemon's loop beats far more often; beyond this it is stuck
HEALTHY_WITHIN = 120.0


def daemon_server(
    metrics: DaemonMetrics, listen: str, healthy_within: float = HEALTHY_WITHIN
) -> MetricsServer:
    """The daemon's endpoint (not started): its registry, its heartbeat as /healthz."""
    return MetricsServer(listen, metrics.registry, lambda: metrics.health(healthy_within))
