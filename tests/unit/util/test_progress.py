"""The progress reporter: every task counts its bytes and logs how it went; how a running
task is shown is the one thing a reporter for the terminal changes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from lifeboat.util.progress import Advance, Reporter


def test_a_task_logs_its_start_and_the_bytes_it_did(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="lifeboat"), Reporter().task("dump wms") as advance:
        advance(1024)
        advance(1024)
    lines = [record.getMessage() for record in caplog.records]
    assert lines[0] == "dump wms: started"
    assert lines[1].startswith("dump wms: 2.0 KiB in ")


def test_a_reporter_that_shows_tasks_is_told_each_count(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[tuple[str, int]] = []

    class Recording(Reporter):
        @contextmanager
        def shown(self, description: str) -> Iterator[Advance]:
            yield lambda n: seen.append((description, n))

    with caplog.at_level(logging.INFO, logger="lifeboat"), Recording().task("copy") as advance:
        advance(3)
        advance(5)
    assert seen == [("copy", 3), ("copy", 5)]
    # the start line is the plain reporter's way of showing; the finish line is every one's
    assert [record.getMessage().split(" in ")[0] for record in caplog.records] == ["copy: 8 B"]
