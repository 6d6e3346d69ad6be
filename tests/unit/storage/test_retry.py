"""The cloud backends' one retry loop and error-line helper (storage/retry.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from lifeboat.errors import StorageError
from lifeboat.storage.base import AlreadyExists, NotFound, PermanentError, TransientError
from lifeboat.storage.retry import Cancelled, Retry, error_line, one_line
from lifeboat.util.redact import register_secret
from tests.retries import RecordedWaits

BASE, CAP = 0.5, 1.5


class Flaky(Exception):
    """A service failure the test's classifier calls transient."""


class Refused(Exception):
    """A service failure the test's classifier calls permanent."""


def classify(exc: Exception) -> StorageError | None:
    if isinstance(exc, Flaky):
        return TransientError(f"repository mem://r: cannot write k: {exc}")
    if isinstance(exc, Refused):
        return PermanentError("repository mem://r: cannot write k: refused")
    return None


def failing(*failures: Exception, then: str = "done") -> tuple[Callable[[], str], list[int]]:
    """A request that raises the failures in turn, then returns `then`; and its call count."""
    calls = [0]

    def request() -> str:
        calls[0] += 1
        if calls[0] <= len(failures):
            raise failures[calls[0] - 1]
        return then

    return request, calls


def retry(max_attempts: int = 4) -> tuple[Retry, RecordedWaits]:
    waits = RecordedWaits()
    return Retry(max_attempts, BASE, CAP, sleep=waits), waits


def test_transient_failures_are_retried_after_a_full_jitter_wait() -> None:
    policy, waits = retry()
    request, calls = failing(Flaky("reset"), Flaky("reset"), Flaky("reset"))
    assert policy.call(request, classify) == "done"
    assert calls == [4]
    assert len(waits) == 3
    # uniform below a ceiling that doubles from the base up to the cap
    for ceiling, wait in zip((0.5, 1.0, 1.5), waits, strict=True):
        assert 0 <= wait <= ceiling


def test_giving_up_after_max_attempts_says_how_many() -> None:
    policy, waits = retry(max_attempts=3)
    request, calls = failing(*[Flaky("503 busy")] * 5)
    with pytest.raises(TransientError) as caught:
        policy.call(request, classify)
    assert calls == [3]
    assert len(waits) == 2, "no wait after the last attempt"
    assert str(caught.value) == (
        "repository mem://r: cannot write k: 503 busy (gave up after 3 attempts)"
    )
    assert isinstance(caught.value.__cause__, Flaky)


def test_a_single_attempt_reports_the_failure_as_it_is() -> None:
    policy, waits = retry(max_attempts=1)
    with pytest.raises(TransientError) as caught:
        policy.call(failing(Flaky("timeout"))[0], classify)
    assert str(caught.value) == "repository mem://r: cannot write k: timeout"
    assert waits == []


def test_permanent_failures_are_raised_at_once() -> None:
    policy, waits = retry()
    request, calls = failing(Refused())
    with pytest.raises(PermanentError, match=r"refused$") as caught:
        policy.call(request, classify)
    assert calls == [1] and waits == []
    assert isinstance(caught.value.__cause__, Refused)


@pytest.mark.parametrize(
    "raised", [KeyError("a bug"), AlreadyExists("taken"), NotFound("gone")], ids=repr
)
def test_what_is_not_the_services_failure_propagates_unchanged(raised: Exception) -> None:
    """A bug (classify says None) or a verdict the backend already reached inside the
    request (a StorageError) is not retried nor reworded."""
    policy, waits = retry()
    request, calls = failing(raised)
    with pytest.raises(type(raised)) as caught:
        policy.call(request, classify)
    assert caught.value is raised
    assert calls == [1] and waits == []


def test_a_stopped_caller_is_not_retried() -> None:
    policy, waits = retry()
    stop = threading.Event()
    stop.set()
    request, calls = failing(Flaky("reset"))
    with pytest.raises(Cancelled):
        policy.call(request, classify, stop)
    assert calls == [1] and waits == []
    # a permanent failure is still reported as itself
    with pytest.raises(PermanentError):
        policy.call(failing(Refused())[0], classify, stop)


def test_after_failure_counts_the_callers_failures() -> None:
    """The form a resuming reader uses: it counts the failures itself."""
    policy, waits = retry(max_attempts=2)
    policy.after_failure(Flaky("cut"), 1, classify)
    assert len(waits) == 1
    with pytest.raises(TransientError, match=r"\(gave up after 2 attempts\)$"):
        policy.after_failure(Flaky("cut"), 2, classify)
    final = PermanentError("from a reopen that retried on its own")
    with pytest.raises(PermanentError) as caught:
        policy.after_failure(final, 1, classify)
    assert caught.value is final


def test_the_default_sleep_is_the_real_one() -> None:
    import time

    assert Retry(3, BASE, CAP).sleep is time.sleep


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "  The specified blob does not exist.\nRequestId:1\nTime:now",
            "The specified blob does not exist.",
        ),
        ("\n\nfirst   line\twith  spaces\n second", "first line with spaces"),
        (
            "PUT https://acme.blob.core.windows.net/c/k?sv=2022&sig=SECRET%3D failed",
            "PUT https://acme.blob.core.windows.net/c/k failed",
        ),
        (
            "cannot PUT /upload/storage/v1/b/b/o?uploadType=resumable&upload_id=SECRET: reset",
            "cannot PUT /upload/storage/v1/b/b/o: reset",
        ),
        (
            "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=SECRET==;EndpointSuffix=x",
            "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=***;EndpointSuffix=x",
        ),
        (
            "refresh failed: {'access_token': 'SECRET', 'x': 1}",
            "refresh failed: {'access_token': '***', 'x': 1}",
        ),
        (
            "header Authorization: Bearer SECRET.token refused",
            "header Authorization: Bearer *** refused",
        ),
        # a quoted value is hidden whole, spaces and all: a service account's private key
        (
            'bad key {"private_key": "-----BEGIN PRIVATE KEY-----\\nSECRET\\n-----END", "x": 1}',
            'bad key {"private_key": "***", "x": 1}',
        ),
        ('refused {"client_secret": "SECRET', 'refused {"client_secret": "***'),
        ("proxy http://user:SECRET@proxy:3128 refused", "proxy http://user:***@proxy:3128 refused"),
        ("", ""),
    ],
)
def test_one_line_keeps_the_first_line_and_no_secret(message: str, expected: str) -> None:
    line = one_line(message)
    assert line == expected
    assert "SECRET" not in line


def test_one_line_hides_registered_secrets_and_stays_short() -> None:
    register_secret("sv=2022-11-02&ss=b&sig=REGISTERED")
    assert one_line("token sv=2022-11-02&ss=b&sig=REGISTERED expired") == "token *** expired"
    long = one_line("x" * 500)
    assert len(long) == 200 and long.endswith("...")
    assert len(one_line("y" * 500, limit=50)) == 50


def test_error_line_names_the_repository_first() -> None:
    assert (
        error_line("gs://b/p", "cannot read k: gone") == "repository gs://b/p: cannot read k: gone"
    )
