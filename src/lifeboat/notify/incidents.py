"""Repeat suppression: one message when an incident opens (the first backup_failed of a
source), none for its repeats, one "recovered" message when it ends (the next
backup_succeeded). The open incidents live in a small JSON file in the state folder, so
that one-shot runs from cron and a restarted daemon remember them.

Each incident remembers which channels were told of it: a channel that was down when the
incident opened gets the message at the next repeat, instead of never."""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifeboat.notify.event import ENDS, Event
from lifeboat.util.fs import make_private_dirs, write_atomically

log = logging.getLogger(__name__)

STATE_FILE = "notify-incidents.json"
QUIET = ("verification_passed", "job_succeeded")

Incidents = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Verdict:
    """message: what to send (None: nothing); told: the channels not to send it to, as
    they have it already."""

    message: Event | None
    told: frozenset[str] = frozenset()


def triage(incidents: Incidents, event: Event, channels: Collection[str]) -> Verdict:
    """What event calls for; updates incidents (key -> {kind, since, repeats, told}).
    channels: those that want event. They count as told as soon as they are given the
    message (a job failing meanwhile must not send it again); a delivery that fails takes
    its channel back out (untold), so that the next repeat tries it again."""
    if event.failed:
        key = event.incident()
        opened = incidents.get(key)
        if opened is None:
            incidents[key] = {
                "kind": event.kind,
                "since": event.time.isoformat(),
                "repeats": 1,
                "told": sorted(channels),
            }
            return Verdict(event)
        opened["repeats"] = int(opened.get("repeats", 1)) + 1
        already = frozenset(opened.get("told", []))
        missing = set(channels) - already
        opened["told"] = sorted(already | missing)
        return Verdict(event if missing else None, already)
    # a backup of a type ends that type's incidents, and those opened without a type (a
    # failure before its type was known)
    ended = [
        (kind, key, incidents.pop(key))
        for kind in ENDS.get(event.kind, ())
        for key in dict.fromkeys((event.incident(kind), event.incident(kind, typed=False)))
        if key in incidents
    ]
    if ended:
        since = min(str(state.get("since", "")) for _, _, state in ended)
        repeats = sum(int(state.get("repeats", 1)) for _, _, state in ended)
        kinds = tuple(dict.fromkeys(kind for kind, _, _ in ended))
        return Verdict(event.as_recovery(kinds, since, repeats, ended[0][1]))
    return Verdict(None if event.kind in QUIET else event)


def untold(incidents: Incidents, event: Event, channels: Iterable[str]) -> None:
    """Note that channels could not be given event's incident message."""
    opened = incidents.get(event.incident())
    if opened is not None:
        opened["told"] = sorted(set(opened.get("told", [])) - set(channels))


def _read(path: Path) -> Incidents:
    try:
        loaded = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        # losing the open incidents costs at most one repeated message: not worth failing for
        log.warning("notification state %s is unreadable (%s): starting afresh", path, exc)
        return {}
    incidents = loaded.get("open") if isinstance(loaded, dict) else None
    if not isinstance(incidents, dict):
        return {}
    return {key: value for key, value in incidents.items() if isinstance(value, dict)}


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


def _update(folder: Path, change: Callable[[Incidents], Verdict | None]) -> Verdict | None:
    """change() applied to the state file in folder under its lock; the file is rewritten
    atomically when change() changed something. Raises OSError."""
    with _locked(folder):
        path = folder / STATE_FILE
        incidents = _read(path)
        before = json.dumps(incidents, sort_keys=True)
        result = change(incidents)
        if json.dumps(incidents, sort_keys=True) != before:
            body = {"version": 1, "open": incidents}
            write_atomically(path, json.dumps(body, indent=1, sort_keys=True).encode())
        return result


def triage_persisted(folder: Path, event: Event, channels: Collection[str]) -> Verdict:
    """triage() against the state file in folder. A state folder that cannot be used is
    one warning, and the event goes out unsuppressed: a repeated message is better than a
    lost one."""
    try:
        verdict = _update(folder, lambda incidents: triage(incidents, event, channels))
        assert verdict is not None
        return verdict
    except OSError as exc:
        log.warning(
            "notification state in %s cannot be used (%s): not suppressing repeats", folder, exc
        )
        return Verdict(None if event.kind in QUIET else event)


def untold_persisted(folder: Path, event: Event, channels: Iterable[str]) -> None:
    """untold() in the state file in folder; a failure here was already warned about by
    triage_persisted."""
    names = list(channels)
    try:
        _update(folder, lambda incidents: untold(incidents, event, names))
    except OSError as exc:
        log.debug("notification state in %s not updated: %s", folder, exc)
