"""The drill's scratch folder and the janitor of killed drills' folders, with real
processes standing for live and dead owners and for servers (no PostgreSQL here: the
integration tests stop real servers)."""

from __future__ import annotations

import json
import logging
import os
import resource
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from lifeboat.errors import UsageError
from lifeboat.postgres.workspace import (
    OWNER_FILE,
    DrillWorkspace,
    NotedServer,
    Owner,
    clean_leftovers,
)
from lifeboat.util.clock import process_start_ticks
from lifeboat.util.osuser import is_root, server_user
from lifeboat.util.proc import boot_id
from tests.processes import running


@pytest.fixture
def drill_root() -> Iterator[Path]:
    """A folder the server's OS user can reach, as drills need (tmp_path's parent is
    private to root)."""
    root = Path(tempfile.mkdtemp(prefix="lifeboat-wstest-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _child(cwd: Path | None = None) -> AbstractContextManager[subprocess.Popen[bytes]]:
    """A Python process that runs until its stdin closes (or it is signalled), dumping no
    core when it is."""
    return running(
        [sys.executable, "-c", "import sys; sys.stdin.read()"],
        stdin=subprocess.PIPE,
        cwd=cwd,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 0)),
    )


def _owner(pid: int, started: int | None, **changes: str) -> Owner:
    values = {"boot": boot_id() or "", "host": socket.gethostname(), **changes}
    return Owner(pid, started, values["boot"], values["host"], "2026-12-06T01:02:03+00:00")


def _dead_owner() -> Owner:
    """The owner record of a process that has ended (and was reaped)."""
    with _child() as process:
        started = process_start_ticks(process.pid)
        assert started is not None
    return _owner(process.pid, started)


def _leftover(root: Path, owner: Owner | None, name: str = "wms-x") -> Path:
    folder = root / f"lifeboat-drill-{name}"
    folder.mkdir()
    if owner is not None:
        owner.write(folder)
    return folder


def test_a_workspace_is_a_private_folder_with_its_owner(drill_root: Path) -> None:
    with DrillWorkspace(drill_root, "wms 2026/12") as ws:
        path = ws.path
        assert path.parent == drill_root
        assert path.name.startswith("lifeboat-drill-wms_2026_12-")
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
        user = server_user()
        assert path.stat().st_uid == (user.uid if user else os.geteuid())
        written = json.loads((path / OWNER_FILE).read_text())
        assert written["pid"] == os.getpid()
        assert written["started"] == process_start_ticks(os.getpid())
        assert written["host"] == socket.gethostname()
        assert written["servers"] == []
        ws.note_server(path / "pg" / "data", Path("/usr/lib/postgresql/15/bin"))
        noted = Owner.read(path)
        assert noted is not None
        assert [(s.data_dir, s.bin_dir) for s in noted.servers] == [
            (str(path / "pg" / "data"), "/usr/lib/postgresql/15/bin")
        ]
    assert not path.exists()
    assert list(drill_root.iterdir()) == []


@pytest.mark.parametrize("failure", [RuntimeError("a check crashed"), KeyboardInterrupt()])
def test_the_folder_goes_whatever_ended_the_drill(drill_root: Path, failure: BaseException) -> None:
    with pytest.raises(type(failure)), DrillWorkspace(drill_root, "wms") as ws:
        (ws.path / "dump").write_bytes(b"plaintext rows")
        raise failure
    assert list(drill_root.iterdir()) == []


@pytest.mark.skipif(not is_root(), reason="only root hands the folder to the server's user")
def test_a_root_the_server_user_cannot_reach_is_refused(tmp_path: Path) -> None:
    tmp_path.chmod(0o700)
    with pytest.raises(UsageError, match="cannot reach"), DrillWorkspace(tmp_path, "wms"):
        pass
    assert list(tmp_path.iterdir()) == []


def test_the_folder_of_a_live_drill_is_left_alone(drill_root: Path) -> None:
    with _child() as process:
        folder = _leftover(drill_root, _owner(process.pid, process_start_ticks(process.pid)))
        assert clean_leftovers(drill_root) == []
        assert (folder / OWNER_FILE).exists()


def test_the_folder_of_a_dead_drill_is_removed(
    drill_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    owner = _dead_owner()
    folder = _leftover(drill_root, owner)
    (folder / "pg").mkdir()
    with caplog.at_level(logging.INFO, logger="lifeboat"):
        done = clean_leftovers(drill_root)
    assert done == [
        f"removed the drill leftover {folder}: its drill (pid {owner.pid}, "
        f"{owner.created_at}) is gone"
    ]
    assert not folder.exists()
    assert done[0] in caplog.messages


@pytest.mark.parametrize("reused", ["started", "boot"])
def test_a_reused_pid_is_not_taken_for_the_owner(drill_root: Path, reused: str) -> None:
    """This process's pid, but another process start (or another boot) than the owner's."""
    ours = process_start_ticks(os.getpid())
    assert ours is not None
    if reused == "started":
        owner = _owner(os.getpid(), ours - 1)
    else:
        owner = _owner(os.getpid(), ours, boot="another boot")
    folder = _leftover(drill_root, owner)
    assert len(clean_leftovers(drill_root)) == 1
    assert not folder.exists()


def test_the_folder_of_another_host_is_left_alone(drill_root: Path) -> None:
    dead = _dead_owner()
    folder = _leftover(drill_root, _owner(dead.pid, dead.started, host="elsewhere"))
    assert clean_leftovers(drill_root) == []
    assert folder.exists()


@pytest.mark.parametrize("owner_file", ["absent", "not json"])
def test_a_folder_without_an_owner_goes_after_an_hour(drill_root: Path, owner_file: str) -> None:
    folder = _leftover(drill_root, None)
    if owner_file == "not json":
        (folder / OWNER_FILE).write_text("{half")
    assert clean_leftovers(drill_root) == []
    assert folder.exists()
    two_hours_ago = time.time() - 7200
    os.utime(folder, (two_hours_ago, two_hours_ago))
    assert clean_leftovers(drill_root) == [
        f"removed the drill leftover {folder}: no owner file, older than an hour"
    ]
    assert not folder.exists()


def test_other_folders_and_files_are_not_touched(drill_root: Path) -> None:
    other = drill_root / "lifeboat-pg-abc"
    other.mkdir()
    plain = drill_root / "lifeboat-drill-notes.txt"
    plain.write_text("not a folder")
    two_hours_ago = time.time() - 7200
    for path in (other, plain):
        os.utime(path, (two_hours_ago, two_hours_ago))
    assert clean_leftovers(drill_root) == []
    assert other.is_dir() and plain.is_file()


def _noted_server(folder: Path, owner: Owner, pid: int) -> Path:
    """owner noted a server in folder/pg/data, whose postmaster.pid names pid; pg_ctl is
    not where it was noted (a PostgreSQL package removed since)."""
    data_dir = folder / "pg" / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "postmaster.pid").write_text(f"{pid}\n{data_dir}\n")
    owner.servers.append(NotedServer(str(data_dir), str(folder / "no-such-bin")))
    owner.write(folder)
    return data_dir


def test_a_stale_postmaster_pid_is_never_signalled(drill_root: Path) -> None:
    """The pid in a dead drill's postmaster.pid now belongs to another process: it is left
    running, the folder is removed."""
    owner = _dead_owner()
    folder = _leftover(drill_root, owner)
    with _child() as bystander:
        data_dir = _noted_server(folder, owner, bystander.pid)
        done = clean_leftovers(drill_root)
        assert bystander.poll() is None
    assert done[0] == (
        f"left pid {bystander.pid} alone: it does not serve {data_dir} (a stale postmaster.pid)"
    )
    assert not folder.exists()


def test_a_server_is_sent_sigquit(drill_root: Path) -> None:
    """A process working in the noted data directory, as a postmaster does, stands for
    the server of a killed drill."""
    owner = _dead_owner()
    folder = _leftover(drill_root, owner)
    data_dir = folder / "pg" / "data"
    data_dir.mkdir(parents=True)
    with _child(cwd=data_dir) as server:
        _noted_server(folder, owner, server.pid)
        done = clean_leftovers(drill_root)
        assert server.wait(timeout=60) == -signal.SIGQUIT
    assert done[0] == f"stopped the server of {data_dir} (pid {server.pid}) with SIGQUIT"
    assert not folder.exists()


def test_a_root_that_cannot_be_made_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "a file").write_text("")
    with (
        pytest.raises(UsageError, match=r"cannot create the drill root .*a file/drills"),
        DrillWorkspace(tmp_path / "a file" / "drills", "wms"),
    ):
        pass


@pytest.mark.parametrize("server_runs", [False, True])
def test_a_socket_folder_elsewhere_goes_unless_a_running_server_uses_it(
    drill_root: Path, server_runs: bool
) -> None:
    """The noted data directory's lifeboat.conf names a socket folder outside the
    workspace (ScratchCluster's, for a long path). A restored data directory may still
    name its source's: that one is kept while the lock file's server runs."""
    owner = _dead_owner()
    folder = _leftover(drill_root, owner)
    data_dir = _noted_server(folder, owner, owner.pid)
    socket_dir = drill_root / "lifeboat-sock-abcd1234"
    socket_dir.mkdir()
    (data_dir / "lifeboat.conf").write_text(f"unix_socket_directories = '{socket_dir}'\n")
    with _child() as server:
        lock_holder = server.pid if server_runs else owner.pid
        (socket_dir / ".s.PGSQL.5999.lock").write_text(f"{lock_holder}\n{data_dir}\n")
        done = clean_leftovers(drill_root)
    assert socket_dir.exists() == server_runs
    assert (f"removed the socket folder {socket_dir}" in done) != server_runs
    assert not folder.exists()
