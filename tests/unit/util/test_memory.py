"""Freed streaming buffers are kept for the next one instead of faulted in afresh."""

from __future__ import annotations

import subprocess
import sys

# A queue's worth of 1 MiB buffers in flight on a thread, freed, again and again: the
# shape of a backup's pipeline. Prints the page faults it took.
CHURN = """
import os, resource, sys, threading
from lifeboat.util.memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
block = os.urandom(1 << 20)
def churn():
    for _ in range(50):
        held = [bytes(bytearray(block)) for _ in range(8)]
        del held
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
thread = threading.Thread(target=churn)
thread.start()
thread.join()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", CHURN, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout)


def test_kept_memory_saves_most_page_faults() -> None:
    # 50 rounds of 8 MiB: 100,000 faults of 4 KiB pages when each round is fresh memory
    plain, kept = faults("plain"), faults("keep")
    assert plain > 50_000
    assert kept < plain / 10
