"""Loopback ports for the servers the tests start, without trusting a port to stay free.

A port found free is only a candidate: another program (another test run on the machine, a
client whose outgoing connection is given that port) may take it before the server binds it.
So a start that cannot bind is tried again on another candidate, and a server counts as up
only once its own process listens on the port: something else answering there does not."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.processes import descendants
from tests.waiting import wait_for

ATTEMPTS = 5
LISTEN_STATE = "0A"  # TCP_LISTEN in /proc/net/tcp
LOG_TAIL = 2000  # characters of a server's output shown when it does not start


def candidate_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A loopback port where connections are refused: bound by this process, but not
    listening, so no other program can start listening there meanwhile."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local_port = int(fields[1].rpartition(":")[2], 16)
                if local_port == port and fields[3] == LISTEN_STATE:
                    inodes.add(fields[9])
    return inodes


def listens(pid: int, port: int) -> bool:
    """Whether process pid, or one it started, listens on TCP port."""
    sockets = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    if not sockets:
        return False
    for owner in (pid, *descendants(pid)):
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{owner}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{owner}/fd/{fd}") in sockets:
                        return True
    return False


Launch = Callable[[int], "subprocess.Popen[bytes]"]


def _could_not_bind(said: str) -> bool:
    return "address already in use" in said.lower() or "EADDRINUSE" in said


def start_listening(
    launch: Launch,
    what: str,
    log: Callable[[], str],
    port: int | None = None,
    may_move: bool = True,
    timeout: float = 60.0,
) -> tuple[subprocess.Popen[bytes], int]:
    """launch(port) a server process and wait until it listens there; the process and the
    port it listens on. The first attempt goes to `port` when given (a restart on the port
    it had). A server that could not bind (it exits, or says so in its output and hangs on)
    is stopped, and with may_move started again on another candidate. log() returns all the
    server wrote so far, launches included (it is appended to)."""

    def output() -> str:
        try:
            return log()
        except FileNotFoundError:
            return ""  # nothing written yet

    attempts = ATTEMPTS if may_move else 1
    for attempt in range(attempts):
        chosen = port if port is not None and attempt == 0 else candidate_port()
        said_before = len(output())
        process = launch(chosen)
        try:
            if _listens_once_settled(process, chosen, output, said_before, timeout):
                return process, chosen
        except AssertionError:
            _end(process)
            tail = output()[-LOG_TAIL:]
            raise AssertionError(f"{what} did not listen on port {chosen}:\n{tail}") from None
        _end(process)
    raise AssertionError(f"{what} could not listen ({attempts} attempts):\n{output()[-LOG_TAIL:]}")


def _listens_once_settled(
    process: subprocess.Popen[bytes],
    port: int,
    output: Callable[[], str],
    said_before: int,
    timeout: float,
) -> bool:
    """Wait until the process listens on port (True), or exits or writes that it cannot
    (False); `said_before` is how much of its output came from earlier launches."""

    def cannot_bind() -> bool:
        return _could_not_bind(output()[said_before:])

    wait_for(
        lambda: process.poll() is not None or listens(process.pid, port) or cannot_bind(),
        f"the server to listen on port {port}",
        timeout,
    )
    return process.poll() is None and listens(process.pid, port)


def _end(process: subprocess.Popen[bytes]) -> None:
    process.kill()
    process.wait()


def start_http_server(
    launch: Launch,
    what: str,
    log: Callable[[], str],
    answering_at: str,
    port: int | None = None,
    timeout: float = 60.0,
) -> tuple[subprocess.Popen[bytes], int]:
    """start_listening(), then wait until the server answers HTTP at the path
    `answering_at`; the process and its port. A server that never answers is ended."""
    process, port = start_listening(launch, what, log, port=port, timeout=timeout)
    url = f"http://127.0.0.1:{port}{answering_at}"
    try:
        wait_for(lambda: answers(url), f"{what} to answer at {url}", timeout)
    except AssertionError:
        _end(process)
        raise
    return process, port


def answers(url: str) -> bool:
    """Whether an HTTP server answers at url (an error status is an answer too)."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
