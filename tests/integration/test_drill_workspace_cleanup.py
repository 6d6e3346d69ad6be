"""A drill's scratch server is stopped and its folder removed when the drill fails, and
when it was killed with SIGKILL: by the next drill on the same folder. The root is long
enough that ScratchCluster keeps its unix socket in a folder of its own outside the
workspace: that one goes too."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from lifeboat.postgres.instance import ScratchCluster
from lifeboat.postgres.server import postmaster_pid
from lifeboat.postgres.workspace import DrillWorkspace, clean_leftovers
from tests.processes import is_gone, kill_and_wait
from tests.waiting import wait_for

from .versions import on_oldest_major

# opens a workspace, starts a server in it and waits on stdin, to be killed there
DRILL = """
import sys
from pathlib import Path
from lifeboat.postgres.instance import ScratchCluster
from lifeboat.postgres.workspace import DrillWorkspace, clean_leftovers

with DrillWorkspace(Path(sys.argv[1]), "killed") as ws:
    cluster = ScratchCluster(Path(sys.argv[2]), ws.path / "pg")
    ws.note_server(cluster.data_dir, cluster.bin_dir)
    cluster.init()
    cluster.start()
    print("READY", cluster.port, ws.path, cluster.socket_dir, flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def long_root() -> Iterator[Path]:
    """A drill folder the server's OS user can reach, with a path too long for a socket
    folder inside a workspace."""
    top = Path(tempfile.mkdtemp(prefix="lifeboat-wsit-"))
    root = top / ("r" * 50)
    root.mkdir()
    for folder in (top, root):
        folder.chmod(0o755)
    yield root
    clean_leftovers(root)  # a server a failed test left running
    shutil.rmtree(top, ignore_errors=True)


def _accepts_connections(port: int) -> bool:
    try:
        psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres").close()
    except psycopg.OperationalError:
        return False
    return True


def _assert_all_gone(port: int, postmaster: int, workspace: Path, socket_dir: Path) -> None:
    wait_for(lambda: not _accepts_connections(port), f"port {port} to refuse connections")
    wait_for(lambda: is_gone(postmaster), f"the postmaster {postmaster} to be gone")
    assert not workspace.exists()
    assert not socket_dir.exists()


@on_oldest_major
def test_the_next_drill_removes_a_killed_drills_server_and_folder(
    pg_bin_dir: Path, long_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    drill = subprocess.Popen(
        [sys.executable, "-c", DRILL, str(long_root), str(pg_bin_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert drill.stdout is not None
        ready = drill.stdout.readline().split()
        assert ready[:1] == ["READY"], ready
        port, workspace, socket_dir = int(ready[1]), Path(ready[2]), Path(ready[3])
        assert not socket_dir.is_relative_to(workspace)  # the case this test is about
        postmaster = postmaster_pid(workspace / "pg" / "data")
        assert postmaster is not None and _accepts_connections(port)
        kill_and_wait([drill.pid], "the drill")
    finally:
        drill.kill()
        drill.wait()
    assert workspace.exists()  # nothing cleaned up after the killed drill

    with caplog.at_level(logging.INFO, logger="lifeboat"), DrillWorkspace(long_root, "next") as ws:
        _assert_all_gone(port, postmaster, workspace, socket_dir)
        assert list(long_root.iterdir()) == [ws.path]
    assert list(long_root.iterdir()) == []
    data_dir = workspace / "pg" / "data"
    stopped, socket_removed, removed = caplog.messages[:3]
    assert stopped == (f"stopped the server of {data_dir} (pid {postmaster}) with SIGQUIT")
    assert socket_removed == f"removed the socket folder {socket_dir}"
    assert removed.startswith(
        f"removed the drill leftover {workspace}: its drill (pid {drill.pid},"
    )


@on_oldest_major
def test_a_failed_drill_leaves_nothing_behind(pg_bin_dir: Path, long_root: Path) -> None:
    drill = DrillWorkspace(long_root, "failing")
    with pytest.raises(RuntimeError, match="a check crashed"), drill as ws:
        cluster = ScratchCluster(pg_bin_dir, ws.path / "pg")
        ws.note_server(cluster.data_dir, cluster.bin_dir)
        cluster.init()
        cluster.start()
        workspace = ws.path
        assert not cluster.socket_dir.is_relative_to(workspace)
        postmaster = postmaster_pid(cluster.data_dir)
        assert postmaster is not None and _accepts_connections(cluster.port)
        raise RuntimeError("a check crashed")
    assert postmaster is not None
    _assert_all_gone(cluster.port, postmaster, workspace, cluster.socket_dir)
    assert list(long_root.iterdir()) == []
