"""The one retry loop of the cloud backends, and the one way they put a service's words in
an error line.

A backend says what a failure means: its classify(exception) gives NotFound, TransientError
or PermanentError (or None for an exception that is not the service's, a bug, which
propagates unchanged). This module decides what to do about it: a transient failure is
tried again, up to max_attempts requests in all, after a full-jitter backoff; anything else
is raised at once. The waits go through `sleep`, so that tests retry for real without
waiting for real.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from lifeboat.errors import StorageError
from lifeboat.storage.backoff import full_jitter
from lifeboat.storage.base import TransientError
from lifeboat.util.redact import hide_credentials, redact

T = TypeVar("T")

# what a failure of one request means; None: not the service's, let it propagate
Classify = Callable[[Exception], StorageError | None]


class Cancelled(Exception):
    """A request failed transiently after its caller had asked to stop (another part of
    the same upload failed): not worth another attempt, nor a report of its own."""


def error_line(repository: str, text: str) -> str:
    """The line a storage failure is reported in: the repository (as shown, never with a
    credential), then what failed and what to do about it."""
    return f"repository {repository}: {text}"


def one_line(text: object, limit: int = 200) -> str:
    """The first line of a service's or the network's message, fit for an error line:
    whitespace collapsed, query strings and credentials removed, at most limit characters."""
    lines = (" ".join(line.split()) for line in str(text).splitlines())
    # registered secrets first: hide_credentials would cut them and hide them from redact()
    line = hide_credentials(redact(next((line for line in lines if line), "")))
    return line if len(line) <= limit else f"{line[: limit - 3]}..."


@dataclass
class Retry:
    """How a backend retries: attempts in all, the backoff's base and cap in seconds, and
    the sleep the waits go through."""

    max_attempts: int
    backoff_base: float
    backoff_cap: float
    sleep: Callable[[float], None] = field(default=time.sleep)

    def call(
        self, request: Callable[[], T], classify: Classify, stop: threading.Event | None = None
    ) -> T:
        """request(), tried again while it fails transiently; a failure that is not (or
        no longer) worth retrying comes out as the StorageError classify gives. With
        stop set, a transient failure raises Cancelled instead of waiting."""
        failures = 0
        while True:
            try:
                return request()
            except Exception as exc:
                failures += 1
                self.after_failure(exc, failures, classify, stop)

    def after_failure(
        self,
        exc: Exception,
        failures: int,
        classify: Classify,
        stop: threading.Event | None = None,
    ) -> None:
        """Wait before the next attempt if exc, the failures-th in a row, is transient and
        attempts are left; otherwise raise what it stands for. A StorageError is already
        final (the backend's own verdict, e.g. AlreadyExists, or a request that retried on
        its own) and is raised as it is."""
        if isinstance(exc, StorageError):
            raise exc
        error = classify(exc)
        if error is None:
            raise exc
        if not isinstance(error, TransientError):
            raise error from exc
        if stop is not None and stop.is_set():
            raise Cancelled() from exc
        if failures >= self.max_attempts:
            raise gave_up(error, failures) from exc
        self.sleep(full_jitter(failures, self.backoff_base, self.backoff_cap))


def gave_up(error: TransientError, attempts: int) -> TransientError:
    """The error to report once transient failures used up the attempts."""
    if attempts <= 1:
        return error
    return TransientError(f"{error.message} (gave up after {attempts} attempts)")
