"""Channels and configs for the notification tests."""

from __future__ import annotations

from typing import Any

from lifeboat.config.model import LifeboatConfig, NotificationConfig
from lifeboat.notify.event import Event
from lifeboat.pipeline.crypto import generate_age_identity

SECRET = "s3cr3t-token-XYZ"


def channel(**fields: Any) -> NotificationConfig:
    return NotificationConfig.model_validate({"retries": 0, "timeout": "5s", **fields})


def config(**channels: dict[str, Any]) -> LifeboatConfig:
    """A config with a repository it never opens and these notification channels."""
    _, public = generate_age_identity()
    return LifeboatConfig.model_validate(
        {
            "repositories": {"local": {"url": "file:///nonexistent/repo"}},
            "encryption": {"age_recipients": [public]},
            "notifications": {name: {"retries": 0, **c} for name, c in channels.items()},
        }
    )


def failure(source: str = "wms") -> Event:
    return Event(
        "backup_failed",
        source,
        "backup",
        f"backup of {source} failed: connection refused",
        {"error": "connection refused"},
    )


def no_wait(seconds: float) -> None:
    """The sleep between retries, skipped: the backoff's length is not what is tested."""
