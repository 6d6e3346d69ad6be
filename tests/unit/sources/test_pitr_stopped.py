"""The error for a restored server that stopped: the log's own reason, its last lines."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from lifeboat.sources.postgres.physical_restore import LOG_LINES_SHOWN, RESTORE_LOG, _stopped

# as PostgreSQL 17 writes it when a restore_command fails for good after consistency
SERVER_LOG = """\
2026-12-06 16:02:02.900 UTC [8068] LOG:  starting PostgreSQL 17.2 on x86_64-pc-linux-gnu
2026-12-06 16:02:02.950 UTC [8072] FATAL:  the database system is starting up
2026-12-06 16:02:03.000 UTC [8071] LOG:  consistent recovery state reached at 0/3000120
2026-12-06 16:02:03.010 UTC [8068] LOG:  database system is ready to accept read-only connections
2026-12-06 16:02:03.124 UTC [8071] LOG:  restored log file "000000010000000000000008" from archive
2026-12-06 16:02:03.148 UTC [8071] LOG:  restored log file "000000010000000000000009" from archive
2026-12-06 16:02:03.167 UTC [8071] LOG:  restored log file "00000001000000000000000A" from archive
2026-12-06 16:02:03.474 UTC [8071] LOG:  restored log file "00000001000000000000000B" from archive
lifeboat: error: wms/wal/...0C-...zst.age: age decryption failed, the object is corrupted
2026-12-06 16:02:03.746 UTC [8071] FATAL:  could not restore file "00000001000000000000000C" \
from archive: child process exited with exit code 255
2026-12-06 16:02:03.747 UTC [8068] LOG:  startup process (PID 8071) exited with exit code 1
2026-12-06 16:02:03.747 UTC [8068] LOG:  terminating any other active server processes
2026-12-06 16:02:03.748 UTC [8068] LOG:  shutting down due to startup process failure
2026-12-06 16:02:03.752 UTC [8068] LOG:  database system is shut down
"""


def test_the_reason_is_the_servers_not_a_clients(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log_file = tmp_path / RESTORE_LOG
    log_file.write_text(SERVER_LOG)
    with caplog.at_level(logging.ERROR, logger="lifeboat"):
        error = _stopped(tmp_path, log_file, "stopped during recovery")
    message = str(error)
    assert "\n" not in message
    assert message.startswith(f"the restored cluster in {tmp_path} stopped during recovery: ")
    assert 'could not restore file "00000001000000000000000C" from archive' in message
    assert "starting up" not in message
    shown = [r.getMessage() for r in caplog.records]
    assert shown[0] == f"last {LOG_LINES_SHOWN} lines of {log_file}:"
    assert [line.strip() for line in shown[1:]] == SERVER_LOG.splitlines()[-LOG_LINES_SHOWN:]


def test_a_log_without_a_fatal_still_gives_one_line(tmp_path: Path) -> None:
    log_file = tmp_path / RESTORE_LOG
    log_file.write_text("2026-12-06 16:02:03.752 UTC [8068] LOG:  database system is shut down\n")
    message = str(_stopped(tmp_path, log_file, "did not start"))
    assert message.startswith(f"the restored cluster in {tmp_path} did not start (see {log_file})")
    assert "\n" not in message
