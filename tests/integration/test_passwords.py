"""Database passwords stay off every command line: Lifeboat takes them from a file, the
environment or libpq's password file, and hands them to pg_dump, pg_restore,
pg_basebackup and pg_receivewal in their environment. Checked against a cluster that
demands a password (scram-sha-256 over TCP), by reading /proc/PID/cmdline of every process
on the host while each tool is held at a gate before it starts its work."""

from __future__ import annotations

import errno
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from lifeboat.postgres.binaries import PgTools, find_tools
from lifeboat.postgres.conn import PgEndpoint
from lifeboat.postgres.instance import ScratchCluster
from lifeboat.postgres.physical import BaseBackupStream
from lifeboat.wal.stream import Receiver, StreamOptions

from .conftest import BIN_DIRS
from .helpers import LIFEBOAT, Workspace, make_workspace

WARNING = "is visible to every user of this host"
GATED_TOOLS = ("pg_dump", "pg_dumpall", "pg_restore")


def command_lines() -> dict[int, bytes]:
    """The command line of every process on the host, arguments joined by NUL bytes."""
    found = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                    found[int(entry.name)] = handle.read()
            except OSError:  # gone meanwhile
                continue
    return found


def started(pid: int) -> list[str]:
    """The arguments of a process that was just started. Right after exec the kernel shows
    an empty command line for a moment: poll until it is there."""
    deadline = time.monotonic() + 60
    while True:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            line = handle.read()
        if line:
            return line.decode(errors="replace").rstrip("\0").split("\0")
        assert time.monotonic() < deadline, f"process {pid} shows no command line"
        time.sleep(0.001)


def showing(secret: str, allowed: frozenset[int] = frozenset()) -> dict[int, str]:
    """The processes (but those allowed) whose command line holds secret."""
    return {
        pid: line.replace(b"\0", b" ").decode(errors="replace")
        for pid, line in command_lines().items()
        if secret.encode() in line and pid not in allowed
    }


class Gate:
    """A pg_bin_dir whose pg_dump, pg_dumpall and pg_restore wait at a FIFO, with the
    arguments Lifeboat gave them, until the test lets them through; then each becomes the
    real tool (same process, same arguments). Asked for their version, they answer at once."""

    def __init__(self, folder: Path, real_bin_dir: Path) -> None:
        self.bin_dir = folder / "bin"
        self.bin_dir.mkdir(parents=True)
        self.fifo = folder / "gate"
        os.mkfifo(self.fifo, 0o600)
        for tool in GATED_TOOLS:
            wrapper = self.bin_dir / tool
            real = real_bin_dir / tool
            wrapper.write_text(
                "#!/bin/sh\n"
                f'case "$1" in --version|-V) exec "{real}" "$@" ;; esac\n'
                f'read _ < "{self.fifo}"\n'
                f'exec "{real}" "$@"\n'
            )
            wrapper.chmod(0o700)

    def _waiting(self) -> dict[int, list[str]]:
        """The wrappers at the gate (sh WRAPPER ARGS...), by pid, with their arguments."""
        waiting = {}
        for pid, line in command_lines().items():
            argv = line.decode(errors="replace").split("\0")
            if len(argv) > 1 and Path(argv[1]).parent == self.bin_dir:
                waiting[pid] = argv[1:]
        return waiting

    def watch(
        self, process: subprocess.Popen[str], secret: str, allowed: frozenset[int]
    ) -> list[list[str]]:
        """Until process exits: each time a tool arrives at the gate, check that no process
        but those allowed shows secret on its command line, then let the tool go. Returns
        the command line (wrapper and arguments) of each tool that passed."""
        passed: list[list[str]] = []
        while process.poll() is None:
            try:
                # succeeds only once a wrapper is opening the FIFO to read from it
                fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:
                    raise
                time.sleep(0.01)  # polling for the next tool to arrive
                continue
            try:
                waiting = self._waiting()
                assert len(waiting) == 1, waiting
                ((pid, argv),) = waiting.items()
                assert showing(secret, allowed) == {}
                passed.append(argv)
                os.write(fd, b"go\n")
            finally:
                os.close(fd)
            # the wrapper holds the FIFO until it has read the line: wait for it to become
            # the tool, so that the next open is the next tool's
            while pid in self._waiting():
                time.sleep(0.01)
        return passed


def tool_names(passed: list[list[str]]) -> list[str]:
    return [Path(argv[0]).name for argv in passed]


@pytest.fixture(scope="module")
def secret() -> str:
    # unique, so that no other process on this host shows it by chance
    return f"pw-{secrets.token_hex(12)}"


@pytest.fixture(scope="module")
def locked_cluster(secret: str) -> Iterator[ScratchCluster]:
    """A cluster that takes no connection over TCP without the password. How a password
    reaches a child process does not depend on the server's version: one is enough."""
    if not BIN_DIRS:
        pytest.fail("no PostgreSQL binaries found (run ./scripts/setup.sh)", pytrace=False)
    with ScratchCluster(BIN_DIRS[-1], password=secret) as cluster:
        cluster.psql("CREATE DATABASE wms")
        cluster.psql("CREATE TABLE lots AS SELECT generate_series(1, 2000) AS id", "wms")
        yield cluster


def passwordless(cluster: ScratchCluster, dbname: str = "wms") -> str:
    return cluster.dsn(dbname, with_password=False)


def start(ws: Workspace, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [LIFEBOAT, "--config", str(ws.config), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def gated_run(
    ws: Workspace,
    gate: Gate,
    secret: str,
    *args: str,
    env: dict[str, str] | None = None,
    secret_on_own_command_line: bool = False,
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run lifeboat with its tools held at the gate; returns the result and the tools
    that passed. Only lifeboat's own command line may show the secret, and only when the
    test put it there."""
    process = start(ws, *args, env=env)
    allowed = frozenset({process.pid}) if secret_on_own_command_line else frozenset()
    try:
        # the check sees a password where there is one: on lifeboat's own command line
        assert any(secret in arg for arg in started(process.pid)) is secret_on_own_command_line
        assert (process.pid in showing(secret)) is secret_on_own_command_line
        passed = gate.watch(process, secret, allowed)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    for argv in passed:
        assert "--dbname" in argv and not any(secret in arg for arg in argv), argv
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    assert secret not in stdout + stderr
    return result, tool_names(passed)


def restore_into(
    cluster: ScratchCluster,
    ws: Workspace,
    gate: Gate,
    secret: str,
    target: str,
    *options: str,
    env: dict[str, str] | None = None,
    secret_on_own_command_line: bool = False,
) -> str:
    """A gated `restore wms` into a new database target that must hold every row of the
    backup (target is dropped after); returns lifeboat's stderr."""
    try:
        restored, tools = gated_run(
            ws,
            gate,
            secret,
            "restore",
            "wms",
            *options,
            "--target-db",
            target,
            env=env,
            secret_on_own_command_line=secret_on_own_command_line,
        )
        assert restored.returncode == 0, restored.stderr
        assert "pg_restore" in tools
        assert cluster.psql("SELECT count(*) FROM lots", target) == "2000"
        return restored.stderr
    finally:
        cluster.psql(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')


# --- the source's password: password_file, ${NAME} in dsn, PGPASSWORD, PGPASSFILE ---------


@pytest.mark.parametrize("way", ["password_file", "env_reference", "PGPASSWORD", "PGPASSFILE"])
def test_backup_and_restore_take_the_password_from_outside_the_command_line(
    locked_cluster: ScratchCluster, secret: str, tmp_path: Path, way: str
) -> None:
    cluster = locked_cluster
    gate = Gate(tmp_path / "gate", cluster.bin_dir)
    dsn = passwordless(cluster)
    extra = f'pg_bin_dir = "{gate.bin_dir}"\n'
    env: dict[str, str] = {}
    if way == "password_file":
        (tmp_path / "pw").write_text(secret + "\n")
        extra += f'password_file = "{tmp_path / "pw"}"\n'
    elif way == "env_reference":
        dsn = dsn.replace("postgres@", "postgres:${LIFEBOAT_TEST_PASSWORD}@")
        env["LIFEBOAT_TEST_PASSWORD"] = secret
    elif way == "PGPASSWORD":
        env["PGPASSWORD"] = secret
    else:
        passfile = tmp_path / "pgpass"
        passfile.write_text(f"127.0.0.1:{cluster.port}:*:postgres:{secret}\n")
        passfile.chmod(0o600)
        env["PGPASSFILE"] = str(passfile)
    ws = make_workspace(tmp_path, passwordless(cluster))
    ws.write_config(dsn, extra_source=extra)
    assert secret not in ws.config.read_text()

    made, tools = gated_run(ws, gate, secret, "backup", "wms", env=env)
    assert made.returncode == 0, made.stderr
    assert tools == ["pg_dumpall", "pg_dump"]  # the roles, then the database
    assert WARNING not in made.stderr

    stderr = restore_into(cluster, ws, gate, secret, f"wms_{way.lower()}", env=env)
    assert WARNING not in stderr


def test_without_any_password_the_backup_fails_in_one_line(
    locked_cluster: ScratchCluster, tmp_path: Path
) -> None:
    ws = make_workspace(tmp_path, passwordless(locked_cluster))
    failed = ws.run("backup", "wms", env={"PGPASSWORD": "", "PGPASSFILE": "/nonexistent"})
    assert failed.returncode == 1
    assert "authentication failed" in failed.stderr
    assert ws.run_json("list") == []


# --- restore --target-dsn -------------------------------------------------------------------


@pytest.fixture(scope="module")
def backed_up(
    locked_cluster: ScratchCluster, secret: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Workspace, Gate]:
    """A workspace holding one backup of wms, its tools behind a gate."""
    root = tmp_path_factory.mktemp("target-dsn")
    gate = Gate(root / "gate", locked_cluster.bin_dir)
    (root / "pw").write_text(secret)
    ws = make_workspace(root, passwordless(locked_cluster))
    ws.write_config(
        passwordless(locked_cluster),
        extra_source=f'password_file = "{root / "pw"}"\npg_bin_dir = "{gate.bin_dir}"\n',
    )
    made, _ = gated_run(ws, gate, secret, "backup", "wms")
    assert made.returncode == 0, made.stderr
    return ws, gate


def test_a_password_written_in_target_dsn_works_with_one_warning(
    locked_cluster: ScratchCluster, secret: str, backed_up: tuple[Workspace, Gate]
) -> None:
    ws, gate = backed_up
    dsn = locked_cluster.dsn("postgres")
    assert secret in dsn
    stderr = restore_into(
        locked_cluster,
        ws,
        gate,
        secret,
        "wms_written",
        "--target-dsn",
        dsn,
        secret_on_own_command_line=True,
    )
    warnings = [line for line in stderr.splitlines() if WARNING in line]
    assert len(warnings) == 1, stderr
    assert "--target-password-file, PGPASSWORD" in warnings[0]


@pytest.mark.parametrize("way", ["target_password_file", "env_reference", "PGPASSWORD"])
def test_target_dsn_takes_the_password_from_outside_the_command_line(
    locked_cluster: ScratchCluster,
    secret: str,
    backed_up: tuple[Workspace, Gate],
    tmp_path: Path,
    way: str,
) -> None:
    ws, gate = backed_up
    dsn = passwordless(locked_cluster, "postgres")
    options: list[str] = []
    env: dict[str, str] = {}
    if way == "target_password_file":
        (tmp_path / "target-pw").write_text(secret + "\n")
        options = ["--target-password-file", str(tmp_path / "target-pw")]
    elif way == "env_reference":
        dsn = dsn.replace("postgres@", "postgres:${LIFEBOAT_TARGET_PASSWORD}@")
        env["LIFEBOAT_TARGET_PASSWORD"] = secret
    else:
        env["PGPASSWORD"] = secret
    stderr = restore_into(
        locked_cluster,
        ws,
        gate,
        secret,
        f"wms_{way.lower()}",
        "--target-dsn",
        dsn,
        *options,
        env=env,
    )
    assert WARNING not in stderr


@pytest.fixture(scope="module")
def odd_password(locked_cluster: ScratchCluster) -> str:
    """The password of a role `restorer`: every character that means something in a URI
    or a key=value DSN, and unique, so that no other process shows it by chance."""
    password = f"a/b@c:d e'f\\g%{secrets.token_hex(8)}"
    quoted = password.replace("'", "''")
    locked_cluster.psql(f"CREATE ROLE restorer LOGIN SUPERUSER PASSWORD '{quoted}'")
    return password


@pytest.mark.parametrize("form", ["uri", "key_value"])
def test_target_dsn_takes_a_password_with_any_character_from_the_environment(
    locked_cluster: ScratchCluster,
    odd_password: str,
    backed_up: tuple[Workspace, Gate],
    form: str,
) -> None:
    ws, gate = backed_up
    reference = "${LIFEBOAT_TARGET_PASSWORD}"
    if form == "uri":
        dsn = f"postgresql://restorer:{reference}@127.0.0.1:{locked_cluster.port}/postgres"
    else:
        dsn = f"host=127.0.0.1 port={locked_cluster.port} user=restorer password={reference}"
    stderr = restore_into(
        locked_cluster,
        ws,
        gate,
        odd_password,
        f"wms_odd_{form}",
        "--target-dsn",
        dsn,
        env={"LIFEBOAT_TARGET_PASSWORD": odd_password, "PGPASSWORD": ""},
    )
    assert WARNING not in stderr


def test_target_dsn_without_its_password_fails_in_one_line(
    locked_cluster: ScratchCluster, backed_up: tuple[Workspace, Gate]
) -> None:
    ws, _ = backed_up
    # the source's password_file is for the source's server, not for another one
    failed = ws.run(
        "restore",
        "wms",
        "--target-dsn",
        passwordless(locked_cluster, "postgres"),
        "--target-db",
        "wms_refused",
        env={"PGPASSWORD": "", "PGPASSFILE": "/nonexistent"},
    )
    assert failed.returncode == 1
    assert "authentication failed" in failed.stderr
    created = "SELECT count(*) FROM pg_database WHERE datname = 'wms_refused'"
    assert locked_cluster.psql(created) == "0"


# --- pg_basebackup and pg_receivewal -------------------------------------------------------


@pytest.fixture
def endpoint(locked_cluster: ScratchCluster, secret: str, tmp_path: Path) -> PgEndpoint:
    """The locked cluster, with its password from a password_file."""
    (tmp_path / "pw").write_text(secret)
    return PgEndpoint.from_dsn(passwordless(locked_cluster, "postgres"), tmp_path / "pw")


def tool(cluster: ScratchCluster, name: str) -> PgTools:
    return find_tools(cluster.major, cluster.bin_dir, tools=(name,))


def test_pg_basebackup_gets_the_password_in_its_environment(
    locked_cluster: ScratchCluster, secret: str, endpoint: PgEndpoint
) -> None:
    tools = tool(locked_cluster, "pg_basebackup")
    stream = BaseBackupStream(tools, endpoint, "password test", "CRC32C")
    try:
        # it cannot finish before its output (the whole cluster as tar) is read
        argv = started(stream.process.pid)
        assert Path(argv[0]).name == "pg_basebackup" and "--dbname" in argv
        assert showing(secret) == {}
        size = 0
        while chunk := stream.read(1 << 20):
            size += len(chunk)
        assert size > 1 << 20  # the server authenticated it and sent the cluster
    finally:
        stream.kill()


def test_pg_receivewal_gets_the_password_in_its_environment(
    locked_cluster: ScratchCluster, secret: str, endpoint: PgEndpoint, tmp_path: Path
) -> None:
    options = StreamOptions("lifeboat_pw_test", "lifeboat_pw_test", tmp_path / "wal")
    options.directory.mkdir()
    receiver = Receiver(tool(locked_cluster, "pg_receivewal"), endpoint, options)
    receiver.create_slot()
    process, stderr = receiver.start()
    try:
        # streaming: the server accepted its password
        deadline = time.monotonic() + 60
        query = (
            "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'lifeboat_pw_test'"
        )
        while locked_cluster.psql(query) != "1":
            assert process.poll() is None, stderr.error_line()
            assert time.monotonic() < deadline, "pg_receivewal did not start streaming"
            time.sleep(0.05)
        assert showing(secret) == {}
    finally:
        process.send_signal(signal.SIGINT)  # as wal-stream stops it
        process.wait(timeout=60)
        locked_cluster.psql("SELECT pg_drop_replication_slot('lifeboat_pw_test')")


def test_scratch_cluster_psql_gets_the_password_in_its_environment(
    locked_cluster: ScratchCluster, secret: str
) -> None:
    """The cluster helper the demo and the tests use runs psql the same way."""
    waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    # the holder's connection closes first, whatever happens: that lets psql go, and the
    # pool can then wait for it
    with (
        ThreadPoolExecutor(max_workers=1) as pool,
        psycopg.connect(locked_cluster.dsn(), autocommit=True) as holder,
    ):
        holder.execute("SELECT pg_advisory_lock(4242)")
        # psql waits for the lock until the test lets it go
        blocked = pool.submit(locked_cluster.psql, "SELECT pg_advisory_lock(4242)")
        deadline = time.monotonic() + 60
        while holder.execute(waiting).fetchone() != (1,):
            assert not blocked.done(), blocked.exception()
            assert time.monotonic() < deadline, "psql never waited for the lock"
            time.sleep(0.01)
        psql = str(locked_cluster.bin_dir / "psql").encode()
        assert any(line.startswith(psql) for line in command_lines().values())
        assert showing(secret) == {}
        holder.execute("SELECT pg_advisory_unlock(4242)")
        assert blocked.result(timeout=60) == ""  # psql took the lock and ended
