"""Repeat suppression: one message when an incident opens (the first backup_failed of a
source), none for its repeats, one "recovered" message when it ends (the next
backup_succeeded). The open incidents live in a small JSON file in the state folder, so
that one-shot runs from cron and a restarted daemon remember them."""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lifeboat.notify.event import ENDS, Event
from lifeboat.util.fs import make_private_dirs, write_atomically

log = logging.getLogger(__name__)

STATE_FILE = "notify-incidents.json"


def triage(open_incidents: dict[str, Any], event: Event) -> Event | None:
    """The message event calls for, or None; updates open_incidents (key -> {kind, since,
    repeats})."""
    if event.failed:
        key = event.incident()
        opened = open_incidents.get(key)
        if opened is not None:
            opened["repeats"] = int(opened.get("repeats", 1)) + 1
            return None
        open_incidents[key] = {"kind": event.kind, "since": event.time.isoformat(), "repeats": 1}
        return event
    ended = [
        (kind, open_incidents.pop(event.incident(kind)))
        for kind in ENDS.get(event.kind, ())
        if event.incident(kind) in open_incidents
    ]
    if ended:
        since = min(str(state.get("since", "")) for _, state in ended)
        repeats = sum(int(state.get("repeats", 1)) for _, state in ended)
        return event.as_recovery(tuple(kind for kind, _ in ended), since, repeats)
    if event.kind in ("verification_passed", "job_succeeded"):
        return None
    return event


def _read(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        # losing the open incidents costs at most one repeated message: not worth failing for
        log.warning("notification state %s is unreadable (%s): starting afresh", path, exc)
        return {}
    incidents = loaded.get("open") if isinstance(loaded, dict) else None
    return incidents if isinstance(incidents, dict) else {}


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One writer at a time: the daemon's jobs (threads) and one-shot commands (processes)
    may finish together. Each caller opens its own descriptor, so flock also orders the
    threads of one process."""
    make_private_dirs(folder)
    fd = os.open(folder / f".{STATE_FILE}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def triage_persisted(folder: Path, event: Event) -> Event | None:
    """triage() against the state file in folder, which is rewritten atomically. A state
    folder that cannot be used is one warning, and the event goes out unsuppressed: a
    repeated message is better than a lost one."""
    try:
        with _locked(folder):
            path = folder / STATE_FILE
            incidents = _read(path)
            before = json.dumps(incidents, sort_keys=True)
            message = triage(incidents, event)
            if json.dumps(incidents, sort_keys=True) != before:
                body = {"version": 1, "open": incidents}
                write_atomically(path, json.dumps(body, indent=1, sort_keys=True).encode())
            return message
    except OSError as exc:
        log.warning(
            "notification state in %s cannot be used (%s): not suppressing repeats", folder, exc
        )
        return None if event.kind in ("verification_passed", "job_succeeded") else event
