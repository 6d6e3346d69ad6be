"""The apprise channel: any service Apprise knows (Teams, Telegram, Discord, PagerDuty,
ntfy...), by the channel's Apprise URL. Apprise is the optional `notify` extra."""

from __future__ import annotations

import logging

from lifeboat.config.model import NotificationConfig
from lifeboat.notify.event import Event
from lifeboat.notify.http import DeliveryError


def send(channel: NotificationConfig, event: Event, timeout: float) -> None:
    try:
        import apprise
    except ImportError:
        raise DeliveryError(
            "the apprise channel needs Apprise: pip install 'lifeboat-backup[notify]'",
            permanent=True,
        ) from None
    service = apprise.Apprise.instantiate(str(channel.url))
    if service is None:
        # the URL is the secret: say which scheme, not the URL
        scheme = str(channel.url).partition("://")[0]
        raise DeliveryError(f"Apprise does not understand the {scheme}:// URL", permanent=True)
    service.socket_connect_timeout = timeout
    service.socket_read_timeout = timeout
    box = apprise.Apprise()
    box.add(service)
    kind = (
        apprise.NotifyType.SUCCESS
        if event.recovers
        else apprise.NotifyType.FAILURE
        if event.failed
        else apprise.NotifyType.INFO
    )
    # Apprise logs why it failed on its own logger: capture it (it also keeps those lines
    # off stderr, where they would bypass Lifeboat's redaction)
    with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:  # type: ignore[no-untyped-call]
        delivered = box.notify(body=event.text(), title=event.title, notify_type=kind)
    if not delivered:
        lines = [line for line in captured.getvalue().splitlines() if line.strip()]
        raise DeliveryError(f"Apprise: {lines[-1] if lines else 'delivery failed'}")
