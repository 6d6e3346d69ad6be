"""The Redis server a source names: how to reach it, its INFO, and its snapshot, streamed
over the replication protocol (as `redis-cli --rdb` does) or saved by BGSAVE.

The replication stream is spoken here rather than run through redis-cli: Debian's
redis-cli 7.0 writes to `--rdb -` the 40-byte end mark of a diskless transfer after the
RDB (it truncates a file to remove it, which stdout cannot be), and the password would
have to go through its environment. Here it goes in the AUTH command, as redis-py sends
it for INFO and BGSAVE."""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from lifeboat.config.model import RedisSourceConfig
from lifeboat.errors import ConfigError, DatabaseError, LifeboatError
from lifeboat.pipeline.stream import CHUNK

DEFAULT_PORT = 6379
CONNECT_TIMEOUT = 10.0
# the server sends a newline each second while it prepares the snapshot; a minute of
# silence is a server (or a network) that stopped
READ_TIMEOUT = 60.0
EOF_MARK_SIZE = 40
# how often INFO persistence is asked while a BGSAVE runs
BGSAVE_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class RedisEndpoint:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool
    db: int = 0

    @classmethod
    def from_config(cls, config: RedisSourceConfig, where: str = "url") -> RedisEndpoint:
        """The server of a source's url; password_file's content wins over a password in
        the url."""
        parts = urlsplit(config.url)
        if parts.scheme not in ("redis", "rediss"):
            raise ConfigError(f"{where}: a Redis url starts with redis:// or rediss://")
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError:
            raise ConfigError(f"{where}: the port is not a number") from None
        path = parts.path.strip("/")
        if path and not path.isdigit():
            raise ConfigError(f"{where}: /{path} is not a database number")
        password = unquote(parts.password) if parts.password else None
        if config.password_file is not None:
            try:
                password = config.password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"cannot read password_file {config.password_file}: {exc.strerror}"
                ) from None
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=port,
            username=unquote(parts.username) if parts.username else None,
            password=password,
            tls=parts.scheme == "rediss",
            db=int(path or 0),
        )

    def describe(self) -> str:
        return f"redis {self.host}:{self.port}"

    def client(self) -> redis.Redis:
        return redis.Redis(
            host=self.host,
            port=self.port,
            db=self.db,
            username=self.username,
            password=self.password,
            ssl=self.tls,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=READ_TIMEOUT,
            # one attempt: redis-py's default retries with backoff take seconds to report
            # a server that is down, and a scheduled backup is retried as a whole anyway
            retry=Retry(NoBackoff(), 0),
        )


def failure(endpoint: RedisEndpoint, exc: Exception) -> LifeboatError:
    """A redis-py failure as one line naming the server (never its password)."""
    said = str(exc)
    if isinstance(exc, redis.AuthenticationError) or "WRONGPASS" in said or "NOAUTH" in said:
        if endpoint.password is None:
            return DatabaseError(
                f"{endpoint.describe()} needs a password: give one in the url or password_file"
            )
        return DatabaseError(f"{endpoint.describe()} refused the login: wrong password or user")
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        why = said.splitlines()[0] if said else type(exc).__name__
        return DatabaseError(f"cannot reach {endpoint.describe()}: {why}")
    return DatabaseError(f"{endpoint.describe()}: {exc}")


@contextlib.contextmanager
def talking_to(endpoint: RedisEndpoint) -> Iterator[None]:
    """redis-py's failures inside the block as one line each."""
    try:
        yield
    except redis.RedisError as exc:
        raise failure(endpoint, exc) from None


def server_info(client: redis.Redis, endpoint: RedisEndpoint, section: str) -> dict[str, Any]:
    with talking_to(endpoint):
        info: dict[str, Any] = client.info(section)
    return info


# --- the replication protocol --------------------------------------------------------------


def _command(*words: str) -> bytes:
    parts = [f"*{len(words)}\r\n".encode()]
    for word in words:
        data = word.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class SnapshotStream:
    """The RDB of a fresh snapshot, as the server sends it to a new replica: read() returns
    its bytes, then b"". `REPLCONF rdb-only` (Redis 7) tells the server no replication
    stream follows, so it keeps no backlog for this connection."""

    def __init__(self, endpoint: RedisEndpoint) -> None:
        self.endpoint = endpoint
        self._sock = self._connect()
        self._pending = b""  # received, not yet returned
        self._left: int | None = None  # bytes still to come, when the size was announced
        self._mark: bytes | None = None  # the end mark of a diskless transfer
        self._done = False
        try:
            self._handshake()
        except BaseException:
            self.close()
            raise

    def _connect(self) -> socket.socket:
        try:
            sock = socket.create_connection(
                (self.endpoint.host, self.endpoint.port), CONNECT_TIMEOUT
            )
        except OSError as exc:
            raise DatabaseError(
                f"cannot reach {self.endpoint.describe()}: {exc.strerror or exc}"
            ) from None
        sock.settimeout(READ_TIMEOUT)
        if self.endpoint.tls:
            context = ssl.create_default_context()
            try:
                return context.wrap_socket(sock, server_hostname=self.endpoint.host)
            except (OSError, ssl.SSLError) as exc:
                sock.close()
                raise DatabaseError(f"TLS with {self.endpoint.describe()} failed: {exc}") from None
        return sock

    def _recv(self) -> bytes:
        try:
            data = self._sock.recv(CHUNK)
        except TimeoutError:
            raise DatabaseError(
                f"{self.endpoint.describe()} sent nothing for {READ_TIMEOUT:.0f} s"
            ) from None
        except OSError as exc:
            raise DatabaseError(
                f"the connection to {self.endpoint.describe()} broke: {exc.strerror or exc}"
            ) from None
        return data

    def _line(self) -> bytes:
        while b"\r\n" not in self._pending:
            data = self._recv()
            if not data:
                raise DatabaseError(f"{self.endpoint.describe()} closed the connection")
            self._pending += data
        line, self._pending = self._pending.split(b"\r\n", 1)
        return line

    def _ask(self, *words: str) -> bytes:
        self._sock.sendall(_command(*words))
        return self._line()

    def _handshake(self) -> None:
        if self.endpoint.password is not None:
            words = [self.endpoint.username] if self.endpoint.username else []
            answer = self._ask("AUTH", *words, self.endpoint.password)
            if not answer.startswith(b"+"):
                raise failure(self.endpoint, redis.AuthenticationError(answer.decode()))
        answer = self._ask("REPLCONF", "capa", "eof")
        if answer.startswith(b"-NOAUTH"):
            raise failure(self.endpoint, redis.AuthenticationError("NOAUTH"))
        self._ask("REPLCONF", "rdb-only", "1")  # refused by Redis before 7: harmless
        self._sock.sendall(_command("SYNC"))
        while True:
            # newlines keep the connection alive while the server prepares the snapshot
            self._pending = self._pending.lstrip(b"\n")
            if self._pending:
                break
            data = self._recv()
            if not data:
                raise DatabaseError(f"{self.endpoint.describe()} closed the connection")
            self._pending = data
        header = self._line()
        if header.startswith(b"-"):
            raise DatabaseError(
                f"{self.endpoint.describe()} refused the snapshot: "
                f"{header[1:].decode(errors='replace')} (without SYNC for this user, "
                'method = "bgsave" takes the snapshot on the server\'s disk)'
            )
        if header.startswith(b"$EOF:") and len(header) == 5 + EOF_MARK_SIZE:
            self._mark = header[5:]
        elif header.startswith(b"$") and header[1:].isdigit():
            self._left = int(header[1:])
        else:
            raise DatabaseError(
                f"{self.endpoint.describe()} answered SYNC with {header[:60]!r}, not a snapshot"
            )

    def read(self, size: int = -1, /) -> bytes:
        if self._done:
            return b""
        if self._left is not None:
            return self._read_counted(size)
        return self._read_marked()

    def _read_counted(self, size: int) -> bytes:
        assert self._left is not None
        if not self._pending and self._left:
            self._pending = self._recv()
            if not self._pending:
                raise DatabaseError(
                    f"{self.endpoint.describe()} closed the connection {self._left} bytes "
                    "before the end of the snapshot"
                )
        want = min(self._left, len(self._pending) if size < 0 else min(size, len(self._pending)))
        data, self._pending = self._pending[:want], self._pending[want:]
        self._left -= want
        if not self._left:
            self._finish()
        return data

    def _read_marked(self) -> bytes:
        """All but the last 40 bytes received: the transfer ends with the mark."""
        assert self._mark is not None
        while True:
            end = self._pending.find(self._mark)
            if end >= 0:
                data = self._pending[:end]
                self._finish()
                return data
            if len(self._pending) > EOF_MARK_SIZE:
                cut = len(self._pending) - EOF_MARK_SIZE
                data, self._pending = self._pending[:cut], self._pending[cut:]
                return data
            received = self._recv()
            if not received:
                raise DatabaseError(
                    f"{self.endpoint.describe()} closed the connection before the end of "
                    "the snapshot"
                )
            self._pending += received

    def _finish(self) -> None:
        self._done = True
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()


# --- BGSAVE --------------------------------------------------------------------------------


def bgsave(
    client: redis.Redis,
    endpoint: RedisEndpoint,
    rdb_path: Path,
    waiting: Callable[[], None] = lambda: None,
) -> None:
    """BGSAVE, then wait until it finished well (INFO persistence polled). A save already
    running, one that fails and an RDB file that cannot be read are one line each."""
    try:
        with open(rdb_path, "rb"):
            pass
    except OSError as exc:
        raise LifeboatError(f"cannot read rdb_path {rdb_path}: {exc.strerror}") from None
    before = server_info(client, endpoint, "persistence")
    if before.get("rdb_bgsave_in_progress"):
        raise DatabaseError(
            f"{endpoint.describe()} is already running a BGSAVE: try again once it finished"
        )
    with talking_to(endpoint):
        try:
            client.bgsave()
        except redis.ResponseError as exc:
            if "already in progress" in str(exc):
                raise DatabaseError(
                    f"{endpoint.describe()} is already running a BGSAVE: try again once it finished"
                ) from None
            raise DatabaseError(f"{endpoint.describe()} refused BGSAVE: {exc}") from None
    # BGSAVE forks before it answers: from now on the save shows as in progress until the
    # server has reaped its child and recorded how it ended
    while True:
        now = server_info(client, endpoint, "persistence")
        if not now.get("rdb_bgsave_in_progress"):
            break
        waiting()
        time.sleep(BGSAVE_POLL_SECONDS)
    if now.get("rdb_last_bgsave_status") != "ok":
        raise DatabaseError(
            f"{endpoint.describe()}: the BGSAVE failed (rdb_last_bgsave_status:"
            f"{now.get('rdb_last_bgsave_status')}); the server's log says why"
        )
