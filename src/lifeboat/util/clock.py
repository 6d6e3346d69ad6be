"""When processes started: a drill's recovery time runs from the moment the operator's
command began, not from when its modules had loaded. Kept free of heavy imports: the
entry point loads it first, also for the commands PostgreSQL runs once per WAL file."""

from __future__ import annotations

import os
import time
from pathlib import Path


def process_start_ticks(pid: int) -> int | None:
    """When a running process started, in clock ticks since boot (/proc/PID/stat's 22nd
    field): with its pid, it names one process even after the pid was reused. None when
    no such process runs (an exited one waiting to be reaped included) or /proc lacks it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces and parentheses
    fields = stat.rpartition(")")[2].split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def _process_age() -> float:
    """Seconds since the kernel started this process (its interpreter's start-up
    included); 0 where /proc does not say."""
    ticks = process_start_ticks(os.getpid())
    if ticks is None:
        return 0.0
    try:
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError):
        return 0.0
    # noted while the command starts: an age beyond a minute is a clock that cannot be
    # believed (a kernel counting the start in another clock), not a slow start
    return age if 0.0 <= age <= 60.0 else 0.0


PROCESS_STARTED = time.monotonic() - _process_age()
