"""When this process started, as the entry point saw it: a drill's recovery time runs from
the moment the operator's command began, not from when its modules had loaded."""

from __future__ import annotations

import time

PROCESS_STARTED = time.monotonic()
