"""A real redis-server (Debian's) on a free loopback port, with a password, for the tests of
Redis sources: started in a folder of the test's, killed and waited for afterwards."""

from __future__ import annotations

import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.servers.ports import start_listening
from tests.waiting import wait_for


@dataclass(frozen=True)
class TlsFiles:
    """A test CA and a certificate it signed for 127.0.0.1, with its key."""

    ca: Path
    cert: Path
    key: Path

    @classmethod
    def make(cls, folder: Path) -> TlsFiles:
        """With openssl: a CA, and the server's certificate for IP 127.0.0.1."""
        folder.mkdir(parents=True, exist_ok=True)
        files = cls(folder / "ca.crt", folder / "server.crt", folder / "server.key")
        (folder / "san").write_text("subjectAltName=IP:127.0.0.1\n")

        def openssl(*args: str) -> None:
            subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

        openssl(
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=lifeboat test CA",
        )
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        )
        openssl(
            *("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key"),
            *("-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san"),
        )
        return files


def redis_server_program() -> str:
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError("redis-server is not installed (Debian package redis-server)")
    return found


class RedisServer:
    """redis-server in `folder` (its `dir`), loading folder/dump.rdb if it is there. It
    saves nothing on its own (no `save` points, no AOF): a test takes snapshots itself."""

    def __init__(
        self, folder: Path, password: str | None = None, tls: TlsFiles | None = None
    ) -> None:
        self.folder = folder
        self.tls = tls
        self.password = password if password is not None else secrets.token_hex(8)
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://:{self.password}@127.0.0.1:{self.port}/0"

    @property
    def rdb(self) -> Path:
        return self.folder / "dump.rdb"

    @property
    def log(self) -> Path:
        return self.folder / "redis.log"

    def client(self, db: int = 0) -> redis.Redis:
        if self.tls is None:
            return redis.Redis(host="127.0.0.1", port=self.port, db=db, password=self.password)
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            db=db,
            password=self.password,
            ssl=True,
            ssl_ca_certs=str(self.tls.ca),
        )

    def _launch(self, port: int) -> subprocess.Popen[bytes]:
        listen = ["--port", str(port)]
        if self.tls is not None:
            listen = [
                "--port",
                "0",
                "--tls-port",
                str(port),
                "--tls-cert-file",
                str(self.tls.cert),
                "--tls-key-file",
                str(self.tls.key),
                "--tls-auth-clients",
                "no",
            ]
        return subprocess.Popen(
            [
                redis_server_program(),
                *listen,
                "--bind", "127.0.0.1",
                "--dir", str(self.folder),
                "--dbfilename", "dump.rdb",
                "--save", "",
                "--appendonly", "no",
                "--requirepass", self.password,
                # a snapshot for a replica starts at once, not after waiting for others
                "--repl-diskless-sync-delay", "0",
                "--logfile", str(self.log),
                # a test may move `dir` to make a save fail
                "--enable-protected-configs", "yes",
            ],
            stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def start(self) -> RedisServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.process, self.port = start_listening(
            self._launch, "redis-server", lambda: self.log.read_text(errors="replace")
        )
        # it listens while it still loads an RDB: wait until it answers
        wait_for(self._loaded, "redis-server to load its RDB")
        return self

    def _loaded(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.BusyLoadingError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
