"""The apprise channel, through Apprise's json:// service to a real HTTP server on
loopback."""

from __future__ import annotations

import json

import pytest

from lifeboat.notify.deliver import send
from lifeboat.notify.http import DeliveryError
from tests.servers.receivers import http_receiver

from .notify_helpers import SECRET, channel, failure, no_wait


def test_apprise_delivers_the_event() -> None:
    with http_receiver() as receiver:
        url = f"json://127.0.0.1:{receiver.port}/apprise"
        send("long-tail", channel(type="apprise", url=url), failure())
    [got] = receiver.received
    assert got.path == "/apprise"
    body = json.loads(got.body)
    assert body["title"] == "[lifeboat] backup failed: wms"
    assert body["message"].startswith("backup of wms failed: connection refused\n")
    assert body["type"] == "failure"


def test_an_apprise_failure_is_retried_and_keeps_the_url_secret() -> None:
    with http_receiver(answers=[500, 500, 500]) as receiver:
        url = f"json://user:{SECRET}@127.0.0.1:{receiver.port}/apprise"
        with pytest.raises(DeliveryError) as caught:
            send("long-tail", channel(type="apprise", url=url, retries=2), failure(), no_wait)
    assert len(receiver.received) == 3
    message = caught.value.message
    assert message.startswith(
        "notification channel 'long-tail' (apprise): not delivered after 3 attempts: Apprise: "
    )
    assert "500" in message, message
    assert SECRET not in message


def test_an_url_apprise_does_not_know_is_one_line() -> None:
    with pytest.raises(DeliveryError) as caught:
        send("x", channel(type="apprise", url=f"nosuchservice://{SECRET}"), failure())
    assert caught.value.message == (
        "notification channel 'x' (apprise): not delivered after 1 attempt: "
        "Apprise does not understand the nosuchservice:// URL"
    )
