"""Redis's own programs, run on a restored RDB: redis-check-rdb (its CRC64 and structure)
and a throw-away redis-server started on it (its key counts per database)."""

from __future__ import annotations

import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from lifeboat.errors import LifeboatError, ToolError

PACKAGES = {"redis-server": "redis-server", "redis-check-rdb": "redis-tools"}
# how long redis-check-rdb may take per GB of RDB, at least a minute
CHECK_SECONDS_PER_GB = 120
START_POLL_SECONDS = 0.05
STOP_SECONDS = 30
_PR_SET_PDEATHSIG = 1


def find_program(name: str, bin_dir: Path | None) -> Path:
    """redis-server or redis-check-rdb: in bin_dir when the source names one, else on PATH;
    a missing one is one line naming its Debian package."""
    if bin_dir is not None:
        path = bin_dir / name
        if os.access(path, os.X_OK):
            return path
        raise ToolError(f"{name} is not in redis_bin_dir {bin_dir}")
    found = shutil.which(name)
    if found is None:
        raise ToolError(
            f"{name} is not installed: install the Debian package {PACKAGES[name]} "
            "(or set redis_bin_dir)"
        )
    return Path(found)


def check_rdb(program: Path, rdb: Path) -> str | None:
    """redis-check-rdb's verdict on an RDB file: None when it is sound, else the one line
    that says what is wrong."""
    timeout = max(60, CHECK_SECONDS_PER_GB * rdb.stat().st_size / 1e9)
    try:
        done = subprocess.run(
            [str(program), str(rdb)],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"redis-check-rdb did not finish within {timeout:.0f} s"
    except OSError as exc:
        raise ToolError(f"cannot run {program}: {exc.strerror}") from None
    if done.returncode == 0:
        return None
    lines = [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    # it prints what it was reading, then what went wrong, then a dump of its state
    wrong = [line for line in lines if "--- RDB ERROR DETECTED ---" in line or "[offset" in line]
    why = next((line for line in lines if "Error" in line or "error" in line), None)
    detail = why or (wrong[-1] if wrong else (lines[-1] if lines else "no output"))
    return f"redis-check-rdb found the RDB damaged (exit {done.returncode}): {detail}"


def _die_with_parent() -> None:
    """In the child before exec: the kernel kills it when the drill dies, even by SIGKILL,
    so no scratch server outlives its drill."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Keyspace:
    keys: dict[str, int]
    expires: dict[str, int]


class ScratchRedis:
    """A redis-server on a loopback port, loading `rdb` from its folder, with a random
    password, no persistence of its own, stopped (and its files left to the caller's
    folder) on exit.

    It starts as a replica of a port that refuses connections: a primary drops the keys
    whose time to live has passed while it loads an RDB, a replica keeps every key, so
    its counts are the snapshot's own whatever the time since the backup."""

    def __init__(self, program: Path, rdb: Path) -> None:
        self.program = program
        self.rdb = rdb
        self.folder = rdb.parent
        self.password = secrets.token_hex(16)
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._refusing = socket.socket()  # bound, never listening: connections are refused

    @property
    def log(self) -> Path:
        return self.folder / "redis-server.log"

    def __enter__(self) -> ScratchRedis:
        self._refusing.bind(("127.0.0.1", 0))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        config = self.folder / "redis.conf"
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with open(fd, "w", encoding="utf-8") as handle:
            handle.write(
                f"port {self.port}\nbind 127.0.0.1\nprotected-mode yes\n"
                f'dir "{self.folder}"\ndbfilename "{self.rdb.name}"\n'
                'save ""\nappendonly no\ndaemonize no\n'
                f'logfile "{self.log}"\n'
                f"requirepass {self.password}\n"
                f"replicaof 127.0.0.1 {self._refusing.getsockname()[1]}\n"
            )
        try:
            self._process = subprocess.Popen(
                [str(self.program), str(config)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:
            self._refusing.close()
            raise ToolError(f"cannot run {self.program}: {exc.strerror}") from None
        return self

    def client(self) -> redis.Redis:
        # polled until it answers: each attempt once, without redis-py's retries
        return redis.Redis(
            host="127.0.0.1", port=self.port, password=self.password, retry=Retry(NoBackoff(), 0)
        )

    def wait_loaded(self) -> str | None:
        """Wait until the server has loaded the RDB; None, or why it could not."""
        assert self._process is not None
        client = self.client()
        while True:
            if self._process.poll() is not None:
                return f"redis-server could not load the RDB: {self._log_tail()}"
            try:
                client.ping()
                return None
            except (redis.BusyLoadingError, redis.ConnectionError):
                time.sleep(START_POLL_SECONDS)

    def keyspace(self) -> Keyspace:
        info = self.client().info("keyspace")
        keys = {db: int(v["keys"]) for db, v in info.items() if isinstance(v, dict)}
        expires = {db: int(v["expires"]) for db, v in info.items() if isinstance(v, dict)}
        return Keyspace(keys, expires)

    def version(self) -> str:
        return str(self.client().info("server").get("redis_version", ""))

    def _log_tail(self) -> str:
        try:
            lines = [ln for ln in self.log.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return "no log"
        important = [ln for ln in lines if " # " in ln]  # Redis marks warnings with #
        line = (important or lines or ["no log"])[-1]
        return line.split(" # ", 1)[-1]

    def __exit__(self, *exc_info: object) -> None:
        self._refusing.close()
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.kill()  # nothing of it is kept: no need for a clean shutdown
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired as exc_:
            raise LifeboatError(
                f"the scratch redis-server (pid {process.pid}) did not stop"
            ) from exc_
