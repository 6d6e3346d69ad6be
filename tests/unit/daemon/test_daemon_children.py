"""Cancelling a job stops the tools the daemon started (pg_dump, pg_basebackup, a scratch
server): each child process of the daemon gets SIGTERM. Run in a process of its own, so
that only its own child is concerned."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap


def test_each_child_process_of_the_daemon_gets_sigterm() -> None:
    code = textwrap.dedent(
        """
        import subprocess
        from lifeboat.daemon.service import stop_child_processes
        child = subprocess.Popen(["sleep", "600"])
        stop_child_processes()
        print(child.wait(60))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == str(-signal.SIGTERM)
