"""util/proc.py on real child processes: their stderr drained and kept, their pids told
alive or gone."""

from __future__ import annotations

import subprocess
import sys

from lifeboat.util.proc import StderrCollector, error_line, pid_alive


def _child(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)


def test_collector_keeps_the_lines_and_sees_each_as_it_comes() -> None:
    child = _child("import sys\nfor i in range(3): sys.stderr.write(f'line {i}\\n\\n')")
    assert child.stderr is not None
    seen: list[str] = []
    collector = StderrCollector(child.stderr, on_line=seen.append)
    collector.start()
    assert child.wait() == 0
    collector.join()
    assert seen == ["line 0", "line 1", "line 2"]
    assert collector.lines() == ["line 0", "line 1", "line 2"]
    assert collector.last_line() == "line 2"


def test_collector_keeps_only_the_tail_of_a_long_output() -> None:
    child = _child("import sys\nsys.stderr.write('x' * 100000 + '\\nthe end\\n')")
    assert child.stderr is not None
    collector = StderrCollector(child.stderr, keep=1000)
    collector.start()
    assert child.wait() == 0
    collector.join()
    assert len(collector.text) == 1000
    assert collector.last_line() == "the end"


def test_pid_alive_until_the_process_is_gone() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    assert pid_alive(child.pid)
    assert child.stdin is not None
    child.stdin.close()
    assert child.wait() == 0
    assert not pid_alive(child.pid)  # reaped: no such process any more


def test_the_error_line_is_the_first_saying_error_else_the_last() -> None:
    psql = [
        'psql:<stdin>:1: ERROR:  relation "t" does not exist',
        "LINE 1: SELECT * FROM t",
        "                      ^",
    ]
    assert error_line(psql) == psql[0]
    assert error_line(["pg_ctl: could not start server", "Examine the log output.", ""]) == (
        "Examine the log output."
    )
    assert error_line(["", "  "]) == ""
