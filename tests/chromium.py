"""A headless Chromium (Debian's `chromium`) driven over the DevTools protocol, for tests that
check pages as a browser renders them: load a file, evaluate script in it, see every
network request it makes and every message it logs, take a screenshot.

One browser serves many pages: each `Browser.open` is a new tab with its own session on
the browser's single DevTools connection (websocket-client: the protocol's transport)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import signal
import struct
import subprocess
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websocket

from lifeboat.ops.report_pdf import find_chromium, headless_command
from tests.waiting import wait_for

CALL_TIMEOUT = 60.0  # seconds; only keeps a broken browser from hanging the suite


class DevToolsError(AssertionError):
    pass


class Connection:
    """One DevTools websocket: commands with their replies, events kept in arrival order."""

    def __init__(self, url: str) -> None:
        # Chromium rejects a websocket whose Origin header it does not allow: send none
        self.socket = websocket.create_connection(url, timeout=CALL_TIMEOUT, suppress_origin=True)
        self.last_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self.last_id += 1
        message: dict[str, Any] = {"id": self.last_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        self.socket.send(json.dumps(message))
        while True:
            received = self._receive()
            if received.get("id") == self.last_id:
                if "error" in received:
                    raise DevToolsError(f"{method}: {received['error']}")
                result: dict[str, Any] = received.get("result", {})
                return result

    def wait_event(self, method: str, session: str) -> dict[str, Any]:
        """The first event of this kind for this session not yet taken, waiting for it."""
        while True:
            for index, event in enumerate(self.events):
                if event.get("method") == method and event.get("sessionId") == session:
                    del self.events[index]
                    params: dict[str, Any] = event.get("params", {})
                    return params
            self._receive()

    def _receive(self) -> dict[str, Any]:
        received: dict[str, Any] = json.loads(self.socket.recv())
        if "method" in received:
            self.events.append(received)
        return received

    def close(self) -> None:
        self.socket.close()


@dataclass
class Page:
    """A loaded tab: what it requested from the network and what it logged so far."""

    connection: Connection
    session: str
    url: str
    requests: list[str] = field(default_factory=list)
    logged: list[str] = field(default_factory=list)

    def evaluate(self, expression: str) -> Any:
        """The value of a script expression evaluated in the page (JSON-able values)."""
        reply = self.connection.call(
            "Runtime.evaluate", self.session, expression=expression, returnByValue=True
        )
        if "exceptionDetails" in reply:
            raise DevToolsError(f"{expression!r} raised: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def collect(self) -> None:
        """File the events received so far: requests sent, log entries, console messages."""
        kept = []
        for event in self.connection.events:
            if event.get("sessionId") != self.session:
                kept.append(event)
                continue
            params = event.get("params", {})
            if event["method"] == "Network.requestWillBeSent":
                self.requests.append(params["request"]["url"])
            elif event["method"] == "Log.entryAdded":
                self.logged.append(f"{params['entry']['level']}: {params['entry']['text']}")
            elif event["method"] == "Runtime.consoleAPICalled":
                self.logged.append(f"console.{params['type']}: {params.get('args')}")
        self.connection.events[:] = kept

    def emulate(self, media: str, width: int) -> None:
        """Lay the page out for this CSS media type ("print", "screen") at this width."""
        self.connection.call("Emulation.setEmulatedMedia", self.session, media=media)
        self.connection.call(
            "Emulation.setDeviceMetricsOverride",
            self.session,
            width=width,
            height=900,
            deviceScaleFactor=1,
            mobile=False,
        )

    def screenshot(self) -> bytes:
        """The whole page as PNG, beyond the window's height."""
        metrics = self.connection.call("Page.getLayoutMetrics", self.session)
        size = metrics["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = self.connection.call(
            "Page.captureScreenshot",
            self.session,
            format="png",
            captureBeyondViewport=True,
            clip=clip,
        )
        return base64.b64decode(shot["data"])


class Browser:
    """A headless Chromium with a throwaway profile, for the block of `running_browser`."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    @contextlib.contextmanager
    def open(self, path: Path) -> Iterator[Page]:
        """path loaded in a new tab (its load event fired), with the network and the log
        watched from before the first request; the tab is closed afterwards."""
        target = self.connection.call("Target.createTarget", url="about:blank")["targetId"]
        try:
            session = self.connection.call("Target.attachToTarget", targetId=target, flatten=True)[
                "sessionId"
            ]
            for domain in ("Network", "Page", "Log", "Runtime"):
                self.connection.call(f"{domain}.enable", session)
            page = Page(self.connection, session, path.as_uri())
            page.emulate("screen", 1200)
            self.connection.call("Page.navigate", session, url=page.url)
            self.connection.wait_event("Page.loadEventFired", session)
            page.collect()
            yield page
        finally:
            self.connection.call("Target.closeTarget", targetId=target)


@contextlib.contextmanager
def running_browser(profile: Path) -> Iterator[Browser]:
    """Chromium started with DevTools on a free loopback port (it writes the port into its
    profile's DevToolsActivePort file once it listens), stopped and reaped afterwards."""
    command = [
        *headless_command(find_chromium(), profile),
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        "about:blank",
    ]
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        port_file = profile / "DevToolsActivePort"

        def listening() -> list[str]:
            if process.poll() is not None:
                raise AssertionError(f"chromium exited with {process.returncode}")
            text = port_file.read_text() if port_file.exists() else ""
            # whole: a port, then the browser's path ending in its 36-character id
            whole = re.fullmatch(r"(\d+)\n(/devtools/browser/[0-9a-f-]{36})\n?", text)
            return list(whole.groups()) if whole else []

        port, path = wait_for(listening, "chromium's DevTools port")
        connection = Connection(f"ws://127.0.0.1:{port}{path}")
        try:
            yield Browser(connection)
        finally:
            connection.close()
    finally:
        # the whole group, its renderers and other children too; the leader is not reaped yet, so
        # its id still names this group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def png_facts(data: bytes) -> tuple[int, int, int]:
    """A PNG's width, height and number of distinct bytes in its decoded rows: a blank
    (single-colour) image has very few, a rendered report many."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    offset, width, height, compressed = 8, 0, 0, b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            compressed += body
        offset += 12 + length
    return width, height, len(set(zlib.decompress(compressed)))
