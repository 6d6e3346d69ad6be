"""The process's start as the drill's RTO counts it: from the kernel's start of the
process, so the interpreter's own start-up is not left out."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import time
time.sleep(0.3)  # what an interpreter's start-up and imports take, made long
from lifeboat.util.clock import PROCESS_STARTED
print(time.monotonic() - PROCESS_STARTED)
"""


def test_the_process_start_counts_what_came_before_the_module_loaded() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True
    )
    elapsed = float(done.stdout)
    assert elapsed >= 0.3
    assert elapsed < 60.0
