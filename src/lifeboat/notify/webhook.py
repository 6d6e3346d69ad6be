"""The webhook channel: the event as a JSON POST, optionally signed.

The signature is HMAC-SHA256 of the exact body bytes with the channel's hmac_secret, in
`X-Lifeboat-Signature: sha256=<hex>`; the receiver recomputes it over the raw body before
parsing. The body carries the event's time, and X-Lifeboat-Timestamp the sending time,
so a receiver can refuse old replays."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from lifeboat.config.model import NotificationConfig
from lifeboat.notify import http
from lifeboat.notify.event import Event

SIGNATURE_HEADER = "X-Lifeboat-Signature"
TIMESTAMP_HEADER = "X-Lifeboat-Timestamp"
EVENT_HEADER = "X-Lifeboat-Event"


def body(event: Event) -> bytes:
    return json.dumps(event.to_json(), sort_keys=True).encode()


def signature(secret: str, payload: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def send(channel: NotificationConfig, event: Event, timeout: float) -> None:
    payload = body(event)
    headers = {
        "Content-Type": "application/json",
        EVENT_HEADER: event.kind,
        TIMESTAMP_HEADER: str(int(time.time())),
        **channel.headers,  # an Authorization header, a routing key...
    }
    if channel.hmac_secret is not None:
        headers[SIGNATURE_HEADER] = signature(channel.hmac_secret.get_secret_value(), payload)
    assert channel.url is not None  # the config requires it
    http.request(channel.url, payload, headers, timeout, channel.ca_file)
