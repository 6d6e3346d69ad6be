"""Repeat suppression and the channels' event filters, through announce() to a real HTTP
receiver, the open incidents in a real state folder."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import pytest

from lifeboat.errors import DatabaseError
from lifeboat.notify import outcomes
from lifeboat.notify.deliver import announce, failure_announced
from lifeboat.notify.incidents import STATE_FILE
from tests.servers.ports import refused_port
from tests.servers.receivers import HttpReceiver, http_receiver

from .notify_helpers import SECRET, config, failure, no_wait

SUCCESS = {"id": "20261207T040000Z-cd34", "type": "logical", "stored_size": 4096}


def events_of(receiver: HttpReceiver) -> list[tuple[str, bool, str]]:
    bodies = [json.loads(r.body) for r in receiver.received]
    return [(b["event"], b["recovered"], b["summary"]) for b in bodies]


def test_three_failures_then_a_success_give_two_messages(tmp_path: Path) -> None:
    with http_receiver() as receiver:
        settings = config(hook={"type": "webhook", "url": receiver.url()})
        for _ in range(3):
            announce(settings, failure(), tmp_path)
        announce(settings, outcomes.backup_succeeded("wms", SUCCESS), tmp_path)
        announce(settings, outcomes.backup_succeeded("wms", SUCCESS), tmp_path)
    sent = events_of(receiver)
    assert [(kind, recovered) for kind, recovered, _ in sent] == [
        ("backup_failed", False),
        ("backup_succeeded", True),
        ("backup_succeeded", False),
    ]
    recovery = json.loads(receiver.received[1].body)
    assert recovery["summary"].startswith("recovered: logical backup 20261207T040000Z-cd34")
    assert recovery["details"]["failures"] == 3
    assert recovery["incident"] == "backup_failed/wms"


def test_a_backup_type_s_success_ends_its_own_failure_only(tmp_path: Path) -> None:
    """An hourly logical backup that succeeds says nothing of the nightly physical one that
    failed; a failure of no known type (before the command knew it) ends with any."""
    physical = {**SUCCESS, "id": "20261207T050000Z-ef56", "type": "physical"}
    with http_receiver() as receiver:
        settings = config(hook={"type": "webhook", "url": receiver.url()})
        nightly = outcomes.backup_failed("wms", "no WAL", backup_type="physical")
        announce(settings, nightly, tmp_path)
        announce(settings, outcomes.backup_succeeded("wms", SUCCESS), tmp_path)  # logical
        announce(settings, outcomes.backup_succeeded("wms", physical), tmp_path)
        announce(settings, outcomes.backup_failed("wms", "refused"), tmp_path)  # no type
        announce(settings, outcomes.backup_succeeded("wms", SUCCESS), tmp_path)
    assert [(kind, recovered) for kind, recovered, _ in events_of(receiver)] == [
        ("backup_failed", False),
        ("backup_succeeded", False),  # the logical one: the physical incident stays open
        ("backup_succeeded", True),  # the physical one ends it
        ("backup_failed", False),
        ("backup_succeeded", True),
    ]


def test_the_open_incident_survives_a_restart(tmp_path: Path) -> None:
    """What a new process knows is only what the state file says: a fresh config and the
    same folder stand for the restarted daemon or the next cron run."""
    with http_receiver() as receiver:
        url = receiver.url()
        announce(config(hook={"type": "webhook", "url": url}), failure(), tmp_path)
        saved = json.loads((tmp_path / STATE_FILE).read_text())
        assert list(saved["open"]) == ["backup_failed/wms"]
        announce(config(hook={"type": "webhook", "url": url}), failure(), tmp_path)
        assert len(receiver.received) == 1
        announce(
            config(hook={"type": "webhook", "url": url}),
            outcomes.backup_succeeded("wms", SUCCESS),
            tmp_path,
        )
    assert [recovered for _, recovered, _ in events_of(receiver)] == [False, True]
    assert json.loads((tmp_path / STATE_FILE).read_text())["open"] == {}


def test_a_channel_that_missed_the_incident_gets_its_next_repeat(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with http_receiver(answers=[503]) as flaky, http_receiver() as steady:
        settings = config(
            flaky={"type": "webhook", "url": flaky.url()},
            steady={"type": "webhook", "url": steady.url()},
        )
        with caplog.at_level(logging.WARNING, "lifeboat"):
            for _ in range(3):
                announce(settings, failure(), tmp_path)
    # flaky: refused at the first failure, told at the second, spared the third
    assert [r.status for r in flaky.received] == [503, 200]
    assert len(steady.received) == 1
    [warning] = caplog.records
    assert "channel 'flaky'" in warning.getMessage() and "HTTP 503" in warning.getMessage()


def test_jobs_failing_together_send_one_message(tmp_path: Path) -> None:
    """The daemon's jobs finish in threads of one process: the state file's lock orders
    them, so one of them opens the incident and the others see it open."""
    with http_receiver() as receiver:
        settings = config(hook={"type": "webhook", "url": receiver.url()})
        workers = [
            threading.Thread(target=announce, args=(settings, failure(), tmp_path))
            for _ in range(8)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    assert len(receiver.received) == 1
    saved = json.loads((tmp_path / STATE_FILE).read_text())
    assert saved["open"]["backup_failed/wms"]["repeats"] == 8


def test_incidents_are_per_source_and_kind(tmp_path: Path) -> None:
    with http_receiver() as receiver:
        settings = config(hook={"type": "webhook", "url": receiver.url()})
        announce(settings, failure("wms"), tmp_path)
        announce(settings, failure("crm"), tmp_path)
        announce(settings, outcomes.drill_failed("wms", "restore failed"), tmp_path)
        announce(settings, outcomes.drill_failed("wms", "restore failed"), tmp_path)
    assert [(kind, body[:22]) for kind, _, body in events_of(receiver)] == [
        ("backup_failed", "backup of wms failed: "),
        ("backup_failed", "backup of crm failed: "),
        ("drill_failed", "drill of wms failed: r"),
    ]


def test_a_filter_keeps_what_the_channel_asked_for_and_its_recoveries(tmp_path: Path) -> None:
    with http_receiver() as pager, http_receiver() as chat:
        settings = config(
            pager={"type": "webhook", "url": pager.url(), "events": ["backup_failed"]},
            chat={"type": "slack", "url": chat.url(), "events": ["backup_succeeded"]},
        )
        announce(settings, outcomes.backup_succeeded("wms", SUCCESS), tmp_path)
        announce(settings, failure(), tmp_path)
        announce(settings, outcomes.backup_succeeded("wms", SUCCESS), tmp_path)
    assert [(kind, recovered) for kind, recovered, _ in events_of(pager)] == [
        ("backup_failed", False),
        ("backup_succeeded", True),
    ]
    texts = [json.loads(r.body)["text"] for r in chat.received]
    assert len(texts) == 2 and texts[1].startswith(":white_check_mark: recovered: ")


def test_a_passed_verification_is_quiet_unless_it_ends_an_incident(tmp_path: Path) -> None:
    with http_receiver() as receiver:
        settings = config(hook={"type": "webhook", "url": receiver.url()})
        announce(settings, outcomes.verification("wms", []), tmp_path)
        announce(settings, outcomes.verification("wms", ["wms/b1: checksum mismatch"]), tmp_path)
        announce(settings, outcomes.verification("wms", []), tmp_path)
    assert [(kind, recovered) for kind, recovered, _ in events_of(receiver)] == [
        ("verification_failed", False),
        ("verification_passed", True),
    ]


def test_a_corrupt_state_file_is_one_warning_and_a_fresh_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / STATE_FILE).write_text("{not json")
    with http_receiver() as receiver, caplog.at_level(logging.WARNING, "lifeboat"):
        announce(config(hook={"type": "webhook", "url": receiver.url()}), failure(), tmp_path)
    assert len(receiver.received) == 1
    [record] = caplog.records
    assert "is unreadable" in record.getMessage() and "starting afresh" in record.getMessage()


def test_a_channel_that_is_down_is_one_warning_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with refused_port() as port, caplog.at_level(logging.WARNING, "lifeboat"):
        settings = config(
            hook={"type": "webhook", "url": f"http://127.0.0.1:{port}/{SECRET}", "retries": 1}
        )
        announce(settings, failure(), tmp_path, sleep=no_wait)
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "notification channel 'hook' (webhook): not delivered after 2 attempts: "
        f"cannot reach 127.0.0.1:{port}: Connection refused"
    )


def test_a_failing_block_is_announced_and_its_error_goes_on(tmp_path: Path) -> None:
    with http_receiver() as receiver:
        settings = config(hook={"type": "webhook", "url": receiver.url()})
        with (
            pytest.raises(DatabaseError),
            failure_announced(settings, lambda line: outcomes.backup_failed("wms", line), tmp_path),
        ):
            raise DatabaseError("cannot connect to postgresql://backup:" + SECRET + "@db/wms")
    body = json.loads(receiver.received[0].body)
    assert body["details"]["error"] == "cannot connect to postgresql://backup:***@db/wms"


def test_an_interrupt_is_not_announced(tmp_path: Path) -> None:
    with http_receiver() as receiver:
        settings = config(hook={"type": "webhook", "url": receiver.url()})
        with (
            pytest.raises(KeyboardInterrupt),
            failure_announced(settings, lambda line: outcomes.backup_failed("wms", line), tmp_path),
        ):
            raise KeyboardInterrupt
    assert receiver.received == []
