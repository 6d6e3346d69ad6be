"""The webhook and Slack channels and the dead-man's-switch ping against a real HTTP
server on loopback."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

import pytest

from lifeboat.notify import outcomes
from lifeboat.notify.deliver import send
from lifeboat.notify.http import DeliveryError
from lifeboat.notify.ping import ping
from tests.servers.ports import refused_port
from tests.servers.receivers import http_receiver

from .notify_helpers import SECRET, channel, failure, no_wait


def test_a_webhook_gets_the_event_signed_with_its_headers() -> None:
    event = outcomes.backup_succeeded(
        "wms",
        {
            "id": "20261207T030000Z-ab12",
            "type": "logical",
            "plain_size": 3 * 2**20,
            "stored_size": 2**20,
            "duration_s": 12.5,
            "repositories": ["local", "offsite"],
        },
    )
    with http_receiver() as receiver:
        hook = channel(
            type="webhook",
            url=receiver.url(),
            hmac_secret=SECRET,
            headers={"X-Team": "dba", "Authorization": "Bearer abc"},
        )
        send("hook", hook, event)
    [got] = receiver.received
    assert got.method == "POST" and got.path == "/hook"
    expected = "sha256=" + hmac.new(SECRET.encode(), got.body, hashlib.sha256).hexdigest()
    assert got.headers["X-Lifeboat-Signature"] == expected
    assert got.headers["X-Team"] == "dba" and got.headers["Authorization"] == "Bearer abc"
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["X-Lifeboat-Event"] == "backup_succeeded"
    assert got.headers["X-Lifeboat-Timestamp"].isdigit()
    body = json.loads(got.body)
    assert body["event"] == "backup_succeeded" and body["source"] == "wms"
    assert body["details"]["backup_id"] == "20261207T030000Z-ab12"
    assert body["details"]["stored_bytes"] == 2**20
    assert body["details"]["repositories"] == "local, offsite"
    assert body["incident"] == "backup_succeeded/wms" and body["recovered"] is False
    assert "1.0 MiB stored" in body["summary"]


def test_an_unsigned_webhook_has_no_signature_header() -> None:
    with http_receiver() as receiver:
        send("hook", channel(type="webhook", url=receiver.url()), failure())
    assert "X-Lifeboat-Signature" not in receiver.received[0].headers


def test_a_server_error_is_retried_until_it_passes() -> None:
    waits: list[float] = []
    with http_receiver(answers=[500, 500]) as receiver:
        send(
            "hook", channel(type="webhook", url=receiver.url(), retries=3), failure(), waits.append
        )
    assert len(receiver.received) == 3
    assert len(waits) == 2 and all(0 <= w <= 2 for w in waits)
    assert receiver.received[0].body == receiver.received[2].body


def test_a_refusal_is_not_retried() -> None:
    with http_receiver(answers=[404]) as receiver:
        hook = channel(type="webhook", url=receiver.url(f"/{SECRET}"), retries=3)
        with pytest.raises(DeliveryError) as caught:
            send("hook", hook, failure(), no_wait)
    assert len(receiver.received) == 1
    assert caught.value.message == (
        f"notification channel 'hook' (webhook): not delivered after 1 attempt: "
        f"127.0.0.1:{receiver.port} answered HTTP 404 Not Found"
    )


def test_a_receiver_that_is_down_fails_after_the_retries() -> None:
    with refused_port() as port:
        hook = channel(type="webhook", url=f"http://127.0.0.1:{port}/{SECRET}", retries=2)
        with pytest.raises(DeliveryError) as caught:
            send("hook", hook, failure(), no_wait)
    assert caught.value.message == (
        "notification channel 'hook' (webhook): not delivered after 3 attempts: "
        f"cannot reach 127.0.0.1:{port}: Connection refused"
    )
    assert not caught.value.permanent


def test_a_receiver_that_does_not_answer_times_out() -> None:
    with http_receiver(hold=True) as receiver:
        hook = channel(type="slack", url=receiver.url(), timeout="1s")
        with pytest.raises(DeliveryError) as caught:
            send("ops", hook, failure(), no_wait)
    assert caught.value.message.endswith(f"127.0.0.1:{receiver.port} did not answer within 1s")


def test_slack_gets_text_and_blocks() -> None:
    with http_receiver() as receiver:
        send("ops", channel(type="slack", url=receiver.url("/services/T0/B0/x")), failure())
    message = json.loads(receiver.received[0].body)
    assert message["text"] == ":rotating_light: backup of wms failed: connection refused"
    kinds = [block["type"] for block in message["blocks"]]
    assert kinds == ["section", "section", "context"]
    assert message["blocks"][1]["fields"] == [
        {"type": "mrkdwn", "text": "*error*\nconnection refused"}
    ]
    assert "source wms" in message["blocks"][2]["elements"][0]["text"]


def test_pings_go_to_start_success_and_fail() -> None:
    with http_receiver() as receiver:
        base = receiver.url(f"/ping/{SECRET}")
        assert ping(base, "start")
        assert ping(base, "success")
        assert ping(base, "fail", "backup of wms failed: connection refused")
    sent = [(r.method, r.path, r.body) for r in receiver.received]
    assert sent == [
        ("GET", f"/ping/{SECRET}/start", b""),
        ("GET", f"/ping/{SECRET}", b""),
        ("POST", f"/ping/{SECRET}/fail", b"backup of wms failed: connection refused"),
    ]


def test_a_ping_that_cannot_go_is_one_warning_without_the_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with refused_port() as port, caplog.at_level(logging.WARNING, "lifeboat"):
        assert not ping(f"http://127.0.0.1:{port}/ping/{SECRET}", "start", retries=1, sleep=no_wait)
    [record] = caplog.records
    assert record.getMessage() == (
        f"dead-man's-switch ping (start) to 127.0.0.1:{port} failed: "
        f"cannot reach 127.0.0.1:{port}: Connection refused"
    )
