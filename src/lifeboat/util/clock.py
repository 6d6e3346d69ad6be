"""When this process started: a drill's recovery time runs from the moment the operator's
command began, not from when its modules had loaded."""

from __future__ import annotations

import os
import time


def _process_age() -> float:
    """Seconds since the kernel started this process (its interpreter's start-up
    included); 0 where /proc does not say."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            # the fields after the command name, which may hold spaces and parentheses
            fields = stat.read().rsplit(")", 1)[1].split()
        started_ticks = int(fields[19])
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - started_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError, AttributeError):
        return 0.0
    # noted while the command starts: an age beyond a minute is a clock that cannot be
    # believed (a kernel counting the start in another clock), not a slow start
    return age if 0.0 <= age <= 60.0 else 0.0


PROCESS_STARTED = time.monotonic() - _process_age()
