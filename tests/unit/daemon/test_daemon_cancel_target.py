"""A cancellation aimed at a job's thread that has just ended must not strike another
thread: thread ids are reused, and the next thread started (a job's upload worker, a
/metrics request) may carry the ended one's id."""

from __future__ import annotations

import threading

import pytest

from lifeboat.daemon.runner import JobCancelled, raise_in_thread


def test_a_cancellation_of_an_ended_thread_reaches_no_other_thread() -> None:
    ended = threading.Thread(target=lambda: None)
    ended.start()
    ended.join()
    release = threading.Event()
    raised: list[BaseException] = []

    def bystander() -> None:
        try:
            while not release.wait(0.01):
                pass
        except BaseException as exc:  # what the test looks for
            raised.append(exc)

    # the C library hands an ended thread's id to a new one as a rule, not always
    for _ in range(50):
        other = threading.Thread(target=bystander)
        other.start()
        if other.ident == ended.ident:
            break
        release.set()
        other.join()
        release.clear()
    else:
        pytest.skip("no new thread took the ended thread's id here")
    raise_in_thread(ended, JobCancelled)
    release.set()
    other.join()
    assert raised == []
