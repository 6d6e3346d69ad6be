"""postgres/server.py's reading of a server's log and postmaster.pid."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lifeboat.postgres.server import log_tail, postmaster_pid, startup_failure, stop_reason

BAD_SETTING = """\
2026-12-06 19:04:58.442 UTC [4066] LOG:  invalid value for parameter "shared_buffers": "x"
2026-12-06 19:04:58.442 UTC [4066] FATAL:  configuration file "/d/lifeboat.conf" contains errors
"""

PORT_TAKEN = """\
2026-12-06 19:04:58.100 UTC [51] LOG:  starting PostgreSQL 17.2 on x86_64-pc-linux-gnu
2026-12-06 19:04:58.101 UTC [51] FATAL:  the database system is starting up
2026-12-06 19:04:58.102 UTC [50] LOG:  could not bind IPv4 address "127.0.0.1": in use
2026-12-06 19:04:58.103 UTC [52] FATAL:  could not create any TCP/IP sockets
"""


def test_a_start_failure_is_told_with_the_line_that_explains_it() -> None:
    assert startup_failure(BAD_SETTING) == (
        'invalid value for parameter "shared_buffers": "x"; '
        'configuration file "/d/lifeboat.conf" contains errors'
    )


def test_a_clients_refusal_and_another_process_line_are_not_the_reason() -> None:
    assert startup_failure(PORT_TAKEN) == "could not create any TCP/IP sockets"
    assert startup_failure("2026-12-06 19:04:58.442 UTC [1] LOG:  all fine\n") is None


def test_stop_reason_is_the_first_fatal_a_server_wrote(tmp_path: Path) -> None:
    log_file = tmp_path / "server.log"
    log_file.write_text(PORT_TAKEN)
    assert stop_reason(log_file) == "could not create any TCP/IP sockets"
    assert stop_reason(tmp_path / "missing.log") is None


def test_log_tail_gives_the_last_lines_or_says_why_not(tmp_path: Path) -> None:
    log_file = tmp_path / "server.log"
    log_file.write_text("one\ntwo\nthree\n")
    assert log_tail(log_file, 2) == "two\nthree"
    assert log_tail(tmp_path / "missing.log", 2).startswith("(cannot read ")


def test_postmaster_pid_is_that_of_a_running_process_only(tmp_path: Path) -> None:
    assert postmaster_pid(tmp_path) is None  # no postmaster.pid
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    (tmp_path / "postmaster.pid").write_text(f"{child.pid}\n{tmp_path}\n")
    assert postmaster_pid(tmp_path) == child.pid
    assert child.stdin is not None
    child.stdin.close()
    assert child.wait() == 0
    assert postmaster_pid(tmp_path) is None  # left behind by a server that is gone
    (tmp_path / "postmaster.pid").write_text("not a pid\n")
    assert postmaster_pid(tmp_path) is None
