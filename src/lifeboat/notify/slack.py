"""The Slack channel: an incoming webhook, in Slack's message shape (text for the
notification itself, blocks for the message)."""

from __future__ import annotations

import json

from lifeboat.config.model import NotificationConfig
from lifeboat.notify import http
from lifeboat.notify.event import Event

# Slack refuses a section field over 2000 characters, and a section over 10 fields
_FIELD_LIMIT = 2000
_FIELDS = 10


def _mark(event: Event) -> str:
    if event.recovers:
        return ":white_check_mark:"
    if event.failed:
        return ":rotating_light:"
    return ":information_source:"


def message(event: Event) -> dict[str, object]:
    text = f"{_mark(event)} {event.summary}"
    fields = [
        {"type": "mrkdwn", "text": f"*{name}*\n{value}"[:_FIELD_LIMIT]}
        for name, value in event.details.items()
        if value is not None
    ][:_FIELDS]
    blocks: list[dict[str, object]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}
    ]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"lifeboat {event.job} · source {event.source or '-'} · "
                    f"{event.time.isoformat(timespec='seconds')}",
                }
            ],
        }
    )
    return {"text": text, "blocks": blocks}


def send(channel: NotificationConfig, event: Event, timeout: float) -> None:
    payload = json.dumps(message(event)).encode()
    assert channel.url is not None  # the config requires it
    http.request(
        channel.url, payload, {"Content-Type": "application/json"}, timeout, channel.ca_file
    )
