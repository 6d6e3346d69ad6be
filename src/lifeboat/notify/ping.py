"""The dead-man's switch: a healthchecks.io-compatible URL pinged when a job starts and
ends. The outside service alerts when the success ping stops coming, so a job that never
runs (a stopped daemon, a lost timer) is noticed too."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Literal

from lifeboat.notify.http import DeliveryError, request, where
from lifeboat.storage.backoff import full_jitter
from lifeboat.util.redact import register_secret

log = logging.getLogger(__name__)

Signal = Literal["start", "success", "fail"]
_SUFFIX: dict[Signal, str] = {"start": "/start", "success": "", "fail": "/fail"}
# healthchecks.io keeps the first 100 kB of a ping's body
BODY_LIMIT = 100_000


def ping_target(url: str, signal: Signal) -> str:
    base, query = url.split("?", 1) if "?" in url else (url, "")
    target = base.rstrip("/") + _SUFFIX[signal]
    return f"{target}?{query}" if query else target


def ping(
    url: str,
    signal: Signal,
    body: str = "",
    timeout: float = 10.0,
    retries: int = 2,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """GET url/start, url or url/fail (a POST with body, e.g. the job's error line, when
    there is one). Never raises: a failed ping is one warning; returns whether it went."""
    register_secret(url)  # the URL is the check's credential
    data = body.encode()[:BODY_LIMIT] if body else None
    headers = {"Content-Type": "text/plain; charset=utf-8"} if data else {}
    for attempt in range(1, retries + 2):
        try:
            request(ping_target(url, signal), data, headers, timeout)
            return True
        except DeliveryError as exc:
            if exc.permanent or attempt > retries:
                log.warning("dead-man's-switch ping (%s) to %s failed: %s", signal, where(url), exc)
                return False
            sleep(full_jitter(attempt, 1.0, 10.0))
    return False
