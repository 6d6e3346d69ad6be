"""How long a backend waits before trying a transiently failed request again."""

from __future__ import annotations

import random


def full_jitter(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait after the attempt-th failure: a random wait up to an exponentially
    growing ceiling ("full jitter"), so that many clients throttled together do not all
    come back together."""
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))
