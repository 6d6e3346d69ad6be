"""Sending one event through the configured channels: each channel's event filter,
retries with backoff, repeat suppression; a failure is one warning and never reaches the
caller (a notification must not fail the job it reports on)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from lifeboat.config.model import LifeboatConfig, NotificationConfig
from lifeboat.errors import EXIT_INTERRUPTED, UsageError, describe_failure
from lifeboat.notify import email, slack, via_apprise, webhook
from lifeboat.notify.event import Event
from lifeboat.notify.http import DeliveryError
from lifeboat.notify.incidents import triage_persisted, untold_persisted
from lifeboat.policy.retention import parse_duration
from lifeboat.storage.backoff import full_jitter
from lifeboat.util.redact import register_secret
from lifeboat.util.statedir import state_dir

log = logging.getLogger(__name__)

Sender = Callable[[NotificationConfig, Event, float], None]
SENDERS: dict[str, Sender] = {
    "webhook": webhook.send,
    "slack": slack.send,
    "email": email.send,
    "apprise": via_apprise.send,
}
BACKOFF_BASE = 1.0  # seconds before the first retry, doubling
BACKOFF_CAP = 30.0


def wanted(channel: NotificationConfig, event: Event) -> bool:
    """The channel's filter: its events, and the recovery of an incident of one of them."""
    return event.kind in channel.events or any(k in channel.events for k in event.recovers)


def hide_secrets(channel: NotificationConfig) -> None:
    """Make redact() hide the channel's secrets wherever they would show: the URL (a Slack
    or webhook URL's path is its token, an Apprise URL holds its service's), the HMAC
    secret, the SMTP password."""
    for value in (channel.url, channel.password, channel.hmac_secret):
        if value is not None:
            register_secret(value if isinstance(value, str) else value.get_secret_value())
    for name, value in channel.headers.items():
        if name.lower() in ("authorization", "proxy-authorization") or "token" in name.lower():
            register_secret(value)


def send(
    name: str,
    channel: NotificationConfig,
    event: Event,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Deliver event through one channel, retried `retries` times with full-jitter backoff
    (not after a permanent failure: a refused login, a 404). Raises DeliveryError naming
    the channel, with the last attempt's reason."""
    hide_secrets(channel)
    timeout = parse_duration(channel.timeout).total_seconds() or 1.0
    attempts = channel.retries + 1
    for attempt in range(1, attempts + 1):
        try:
            SENDERS[channel.type](channel, event, timeout)
            return
        except DeliveryError as exc:
            failure = exc
            if exc.permanent:
                break
            if attempt < attempts:
                log.debug("notification channel %s: attempt %d failed: %s", name, attempt, exc)
                sleep(full_jitter(attempt, BACKOFF_BASE, BACKOFF_CAP))
    tries = f"{attempt} attempt{'s' if attempt > 1 else ''}"
    raise DeliveryError(
        f"notification channel {name!r} ({channel.type}): not delivered after {tries}: {failure}",
        failure.permanent,
    )


def announce(
    config: LifeboatConfig,
    event: Event,
    folder: Path | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Send event through every channel that wants it, once per incident (see
    incidents.py; folder: the state folder, default util/statedir.state_dir()). Never
    raises: each channel that fails is one warning."""
    if not config.notifications:
        return
    try:
        state = folder or state_dir()
        wanting = [name for name, c in config.notifications.items() if wanted(c, event)]
        verdict = triage_persisted(state, event, wanting)
        message = verdict.message
        if message is None:
            return
        undelivered = []
        for name, channel in config.notifications.items():
            if name in verdict.told or not wanted(channel, message):
                continue
            try:
                send(name, channel, message, sleep)
            except DeliveryError as exc:
                log.warning("%s", exc)
                undelivered.append(name)
        if message.failed and undelivered:
            untold_persisted(state, message, undelivered)
    except Exception as exc:  # a bug here must not fail the job
        log.warning("notification of %s not sent: %s", event.kind, describe_failure(exc)[0])


@contextmanager
def failure_announced(
    config: LifeboatConfig, event_of: Callable[[str], Event], folder: Path | None = None
) -> Iterator[None]:
    """Announce event_of(the error's one line) when the block raises, then let the error
    go on (the command exits as it did before). An interrupt is not a failure to report."""
    try:
        yield
    except BaseException as exc:
        line, code = describe_failure(exc)
        if code != EXIT_INTERRUPTED and not isinstance(exc, (SystemExit, GeneratorExit)):
            announce(config, event_of(line), folder)
        raise


def send_test(config: LifeboatConfig, name: str) -> None:
    """`lifeboat notify test NAME`: a test message through one channel, whatever its filter
    and with no suppression. Raises UsageError for an unknown channel, DeliveryError when
    it cannot be delivered."""
    channel = config.notifications.get(name)
    if channel is None:
        known = ", ".join(sorted(config.notifications)) or "none configured"
        raise UsageError(f"no notification channel named {name!r} (channels: {known})")
    event = Event(
        "test",
        None,
        "notify test",
        f"test message from lifeboat through channel {name!r}: notifications reach you",
        {"channel": name, "type": channel.type},
    )
    send(name, channel, event)
