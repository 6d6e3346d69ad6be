"""`lifeboat heartbeat`: write the heartbeat row into a source once, or every interval until
stopped (postgres/heartbeat.py says why it exists)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from lifeboat.context import Context
from lifeboat.errors import LifeboatError, UsageError
from lifeboat.postgres import heartbeat
from lifeboat.postgres.conn import PgEndpoint
from lifeboat.util.proc import stop_on_signals

log = logging.getLogger(__name__)


@dataclass
class HeartbeatSummary:
    """What a heartbeat loop did before it was stopped."""

    source: str
    every_seconds: float
    beats: int = 0
    failures: int = 0
    last_beat: datetime | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "every_seconds": self.every_seconds,
            "beats": self.beats,
            "failures": self.failures,
            "last_beat": self.last_beat.isoformat() if self.last_beat else None,
        }


def interval(ctx: Context, source: str, every: str | None) -> timedelta:
    """How often the loop beats: --every, else the source's objectives.heartbeat."""
    from lifeboat.policy.retention import parse_duration

    configured = ctx.source(source).objectives.heartbeat
    text = every or configured
    if text is None:
        raise UsageError(
            f"no heartbeat interval for source {source!r}: pass --every (e.g. 1m) or set "
            f"heartbeat in [sources.{source}.objectives]"
        )
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"--every: {exc}") from None
    if value.total_seconds() <= 0:
        raise UsageError(f"--every: {text!r} must be longer than 0s")
    return value


def beat_once(ctx: Context, source: str) -> datetime:
    """One heartbeat into the source's database; the time it wrote."""
    config = ctx.postgres_source(source, "a heartbeat")
    endpoint = PgEndpoint.from_dsn(config.dsn, config.password_file)
    with endpoint.connect(autocommit=True) as conn:
        try:
            return heartbeat.beat(conn)
        except LifeboatError as exc:
            raise type(exc)(f"{endpoint.describe()}: {exc.message}") from None


def beat_until_stopped(
    ctx: Context, source: str, every: timedelta, stop: threading.Event | None = None
) -> HeartbeatSummary:
    """Beat every `every` until SIGTERM or SIGINT (or stop is set). A failed beat is logged
    in one line and the loop goes on: the database may come back."""
    stop = stop or threading.Event()
    summary = HeartbeatSummary(source, every.total_seconds())
    log.info("heartbeat of %s every %g s", source, every.total_seconds())
    started = time.monotonic()
    with stop_on_signals(stop, "stopping the heartbeat"):
        while not stop.is_set():
            try:
                summary.last_beat = beat_once(ctx, source)
                summary.beats += 1
                log.debug("heartbeat of %s at %s", source, summary.last_beat.isoformat())
            except LifeboatError as exc:
                summary.failures += 1
                log.warning("heartbeat of %s failed: %s", source, exc.message)
            stop.wait(_until_next(started, every.total_seconds()))
    return summary


def _until_next(started: float, period: float) -> float:
    """Seconds to the next beat on the schedule started + k * period: a slow beat does not
    push the later ones back, and beats that a long outage missed are not caught up."""
    elapsed = time.monotonic() - started
    return period - elapsed % period
