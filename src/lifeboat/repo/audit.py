"""The repository's hash-chained audit trail: one write-once object per event.

    audit/chain/<sequence, 12 digits>.json      an event (canonical JSON)
    audit/anchors/<repository id>/<sequence, 12 digits>-<hash>.json
                                                 another repository's chain head, kept here

Each event carries the sha256 of the previous event's canonical JSON (sorted keys, no
spaces, UTF-8), so deleting, changing, inserting or reordering one breaks a link that
`verify_chain` finds. Appends use the storage's exclusive create: two writers racing for
one sequence number cannot both win, the loser re-reads the head and links to it. Rewriting
the whole chain consistently is caught by anchors: a head written into another repository.
The older records (holds, checks, prune audits, drills) stay where they are; an event names
the record it accompanies.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from lifeboat.errors import LifeboatError, RepositoryError
from lifeboat.repo import layout
from lifeboat.repo.cluster import create_once
from lifeboat.repo.records import os_user, read_record
from lifeboat.storage.base import Storage

log = logging.getLogger(__name__)

CHAIN_PREFIX = "audit/chain/"
# one empty marker per config event, `<sequence>-<fingerprint>.json`: the newest
# fingerprint from one small listing instead of a walk back through the chain
CONFIG_PREFIX = "audit/config/"
ANCHORS_PREFIX = "audit/anchors/"
EVENT_FORMAT = 1
GENESIS_PREV = "0" * 64
SEQUENCE_DIGITS = 12
# enough for dozens of writers appending at once; each try costs a listing and a read
APPEND_ATTEMPTS = 200

EVENT_TYPES = (
    "genesis",
    "backup",
    "copy",
    "verify",
    "drill",
    "hold",
    "release",
    "prune",
    "config",
    "key",
)


def canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(body)).hexdigest()


def event_key(sequence: int) -> str:
    return f"{CHAIN_PREFIX}{sequence:0{SEQUENCE_DIGITS}d}.json"


def sequence_of(key: str) -> int | None:
    """The sequence number an event's key names; None for anything else."""
    leaf = key[len(CHAIN_PREFIX) :] if key.startswith(CHAIN_PREFIX) else ""
    stem, _, extension = leaf.partition(".")
    if extension != "json" or len(stem) != SEQUENCE_DIGITS or not stem.isdigit():
        return None
    return int(stem)


@dataclass(frozen=True)
class AuditEvent:
    sequence: int
    at: datetime
    user: str  # the OS user
    host: str
    event: str  # one of EVENT_TYPES
    source: str | None  # the subject: a source, and a backup of it
    backup: str | None
    details: dict[str, Any]
    record: str | None  # the key of the record this event accompanies, if any
    prev: str  # sha256 of the previous event's canonical JSON; zeros for the genesis
    event_id: str = field(default_factory=lambda: secrets.token_hex(8))
    format: int = EVENT_FORMAT

    def to_json(self) -> dict[str, Any]:
        return {
            "sequence": self.sequence,
            "at": self.at.astimezone(UTC).isoformat(),
            "actor": {"user": self.user, "host": self.host},
            "event": self.event,
            "subject": {"source": self.source, "backup": self.backup},
            "details": self.details,
            "record": self.record,
            "prev": self.prev,
            "id": self.event_id,
            "format": self.format,
        }

    @property
    def hash(self) -> str:
        return digest(self.to_json())

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> AuditEvent:
        """Raises KeyError, TypeError or ValueError for a body that is not an event."""
        at = datetime.fromisoformat(body["at"])
        sequence = body["sequence"]
        if not isinstance(sequence, int) or not isinstance(body["details"], dict):
            raise TypeError("not an event")
        return cls(
            sequence=sequence,
            at=at if at.tzinfo else at.replace(tzinfo=UTC),
            user=str(body["actor"]["user"]),
            host=str(body["actor"]["host"]),
            event=str(body["event"]),
            source=body["subject"]["source"],
            backup=body["subject"]["backup"],
            details=body["details"],
            record=body.get("record"),
            prev=str(body["prev"]),
            event_id=str(body["id"]),
            format=int(body["format"]),
        )


class Head(NamedTuple):
    sequence: int
    hash: str
    at: datetime


def event_sequences(storage: Storage) -> list[int]:
    # anything else under the prefix (an append's temporary upload) is no event: left alone
    found = (sequence_of(info.key) for info in storage.list(CHAIN_PREFIX))
    return sorted(s for s in found if s is not None)


def read_event(storage: Storage, sequence: int) -> AuditEvent | None:
    body = read_record(storage, event_key(sequence))
    if body is None:
        return None
    try:
        return AuditEvent.from_json(body)
    except (KeyError, TypeError, ValueError):
        return None


def _head(storage: Storage) -> AuditEvent | None:
    sequences = event_sequences(storage)
    if not sequences:
        return None
    head = read_event(storage, sequences[-1])
    if head is None:
        raise RepositoryError(
            f"{storage.url}/{event_key(sequences[-1])} is not a readable audit event: "
            "nothing can be appended after it; run `lifeboat audit verify`"
        )
    return head


def repository_id(storage: Storage) -> str:
    marker = read_record(storage, layout.MARKER)
    identity = marker.get("repository_id") if marker else None
    if not isinstance(identity, str) or not identity:
        raise RepositoryError(f"{storage.url} has no repository id: is it initialised?")
    return identity


def _event(
    sequence: int,
    prev: str,
    event: str,
    source: str | None,
    backup: str | None,
    details: dict[str, Any],
    record: str | None,
    at: datetime | None,
) -> AuditEvent:
    return AuditEvent(
        sequence=sequence,
        at=at or datetime.now(UTC),
        user=os_user(),
        host=socket.gethostname(),
        event=event,
        source=source,
        backup=backup,
        details=details,
        record=record,
        prev=prev,
    )


def genesis_event(storage: Storage, at: datetime | None = None) -> AuditEvent:
    """The first event of the repository's chain (at: when, now if not given)."""
    details = {"repository_id": repository_id(storage)}
    return _event(0, GENESIS_PREV, "genesis", None, None, details, None, at)


def next_event(
    head: AuditEvent,
    event: str,
    *,
    source: str | None = None,
    backup: str | None = None,
    details: dict[str, Any] | None = None,
    record: str | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """The event that follows head (at: when, now if not given); not written yet."""
    if event not in EVENT_TYPES:
        raise ValueError(f"unknown audit event {event!r}")
    return _event(head.sequence + 1, head.hash, event, source, backup, details or {}, record, at)


def write_event(storage: Storage, event: AuditEvent) -> bool:
    """Create the event's object unless its sequence number is taken: False when it is."""
    return create_once(storage, event_key(event.sequence), canonical(event.to_json()))


def append(
    storage: Storage,
    event: str,
    *,
    source: str | None = None,
    backup: str | None = None,
    details: dict[str, Any] | None = None,
    record: str | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Append one event after the current head; an empty chain first gets its genesis.
    A writer that loses the race for a sequence number re-reads the head and tries the
    next one; none ever overwrites an event. `at` is the event's time, now if not given."""
    if event not in EVENT_TYPES:
        raise ValueError(f"unknown audit event {event!r}")
    for attempt in range(APPEND_ATTEMPTS):
        head = _head(storage)
        if head is None:
            write_event(storage, genesis_event(storage, at))
            continue  # whoever made it, link to the genesis that stands
        candidate = next_event(
            head, event, source=source, backup=backup, details=details, record=record, at=at
        )
        if write_event(storage, candidate):
            return candidate
        # another writer took this number: spread the retries so that they do not collide again
        time.sleep(random.uniform(0, 0.005 * min(attempt + 1, 20)))
    raise RepositoryError(
        f"{storage.url}: could not append to the audit chain after {APPEND_ATTEMPTS} tries "
        "(too many writers at once)"
    )


def append_or_log(storage: Storage, event: str, **what: Any) -> AuditEvent | None:
    """append, for a writer whose own work already stands (a committed backup, a copied
    one): a failed append is logged as an error, for `audit verify` to be run, rather than
    failing work that is done."""
    try:
        return append(storage, event, **what)
    except LifeboatError as exc:
        log.error("%s: the %s event is NOT in the audit chain: %s", storage.url, event, exc)
        return None


def note_config(
    storage: Storage, fingerprint: str, source: str, at: datetime | None = None
) -> AuditEvent | None:
    """A `config` event when the configuration a run used (its fingerprint) is not the one
    of the repository's newest config event; None when it is. `at`: as for append."""
    newest = max((info.key for info in storage.list(CONFIG_PREFIX)), default=None)
    previous = newest.rsplit("-", 1)[-1].removesuffix(".json") if newest else None
    if previous == fingerprint:
        return None
    event = append(
        storage,
        "config",
        source=source,
        details={"fingerprint": fingerprint, "previous": previous},
        at=at,
    )
    key = f"{CONFIG_PREFIX}{event.sequence:0{SEQUENCE_DIGITS}d}-{fingerprint}.json"
    create_once(storage, key, b"{}\n")
    return event


# --- verification -------------------------------------------------------------------------


class Problem(NamedTuple):
    sequence: int  # the first event this problem makes untrustworthy
    what: str


class Anchor(NamedTuple):
    """A chain head kept somewhere else: another repository, or an auditor's note."""

    repository_id: str
    sequence: int
    hash: str
    where: str  # the anchor's key and repository, or "given"

    def to_json(self) -> dict[str, Any]:
        return self._asdict()


@dataclass
class ChainReport:
    events: int = 0
    head: Head | None = None
    problems: list[Problem] = field(default_factory=list)
    anchors_checked: list[Anchor] = field(default_factory=list)

    @property
    def whole(self) -> bool:
        return not self.problems

    @property
    def first_bad(self) -> int | None:
        return min((p.sequence for p in self.problems), default=None)

    def to_json(self) -> dict[str, Any]:
        return {
            "whole": self.whole,
            "events": self.events,
            "head": None
            if self.head is None
            else {
                "sequence": self.head.sequence,
                "hash": self.head.hash,
                "at": self.head.at.isoformat(),
            },
            "first_bad_sequence": self.first_bad,
            "problems": [p._asdict() for p in sorted(self.problems)],
            "anchors_checked": [a.to_json() for a in self.anchors_checked],
        }


def _span(first: int, last: int) -> str:
    return f"event {first}" if first == last else f"events {first} to {last}"


class ChainWalk(NamedTuple):
    report: ChainReport
    hashes: dict[int, str]  # the hash of every readable event (for anchors)
    events: list[AuditEvent]  # the readable events, in sequence order


def verify_chain(storage: Storage) -> tuple[ChainReport, dict[int, str]]:
    """Walk the chain; the report, and the hash of every readable event (for anchors)."""
    walk = walk_chain(storage)
    return walk.report, walk.hashes


def walk_chain(storage: Storage) -> ChainWalk:
    """Read every event once: the chain's report, its hashes, and the events themselves (a
    compliance report needs both, and a chain of years is not read twice)."""
    report = ChainReport()
    hashes: dict[int, str] = {}
    by_hash: dict[str, int] = {}
    sequences = event_sequences(storage)
    events: dict[int, AuditEvent | None] = {}
    for sequence in sequences:
        event = read_event(storage, sequence)
        events[sequence] = event
        if event is not None:
            hashes[sequence] = event.hash
            by_hash.setdefault(event.hash, sequence)
    report.events = len(sequences)
    expected = 0
    previous: int | None = None
    for sequence in sequences:
        event = events[sequence]
        if sequence > expected:
            report.problems.append(Problem(expected, f"{_span(expected, sequence - 1)} deleted"))
        expected = sequence + 1
        if event is None:
            report.problems.append(Problem(sequence, f"event {sequence} is not readable"))
        elif event.sequence != sequence:
            report.problems.append(
                Problem(sequence, f"event {sequence} holds event {event.sequence}: moved")
            )
        elif sequence == 0 and (event.event != "genesis" or event.prev != GENESIS_PREV):
            report.problems.append(Problem(0, "event 0 is not a genesis event"))
        elif sequence > 0:
            _check_link(report, event, previous, hashes, by_hash)
        previous = sequence
    if sequences and sequences[-1] in hashes:
        head = events[sequences[-1]]
        assert head is not None
        report.head = Head(head.sequence, hashes[head.sequence], head.at)
    return ChainWalk(report, hashes, [e for e in events.values() if e is not None])


def _check_link(
    report: ChainReport,
    event: AuditEvent,
    previous: int | None,
    hashes: dict[int, str],
    by_hash: dict[str, int],
) -> None:
    sequence = event.sequence
    if previous is not None and event.prev == hashes.get(previous):
        return
    if previous != sequence - 1:
        return  # its predecessor is gone: reported as deleted
    linked = by_hash.get(event.prev)
    if linked is not None and linked < sequence - 1:
        report.problems.append(
            Problem(
                linked + 1,
                f"event {sequence} links to event {linked}: {_span(linked + 1, sequence - 1)} "
                "inserted, or the chain forked",
            )
        )
    elif linked is not None:
        report.problems.append(
            Problem(sequence, f"event {sequence} links to the later event {linked}: reordered")
        )
    elif previous in hashes:
        report.problems.append(
            Problem(
                previous,
                f"event {previous} is not the one event {sequence} links to: altered",
            )
        )


def check_anchor(report: ChainReport, hashes: dict[int, str], anchor: Anchor) -> None:
    report.anchors_checked.append(anchor)
    found = hashes.get(anchor.sequence)
    head = report.head.sequence if report.head else -1
    if anchor.sequence > head:
        report.problems.append(
            Problem(
                head + 1,
                f"anchor {anchor.where} holds event {anchor.sequence}, but the chain ends at "
                f"{head}: events deleted",
            )
        )
    elif found != anchor.hash:
        report.problems.append(
            Problem(
                anchor.sequence,
                f"event {anchor.sequence} does not match anchor {anchor.where}: the chain "
                "was rewritten",
            )
        )


# --- anchors ------------------------------------------------------------------------------


def anchor_key(identity: str, head: Head) -> str:
    return f"{ANCHORS_PREFIX}{identity}/{head.sequence:0{SEQUENCE_DIGITS}d}-{head.hash}.json"


def write_anchor(target: Storage, identity: str, body: dict[str, Any], head: Head) -> str:
    """Write the head into target once; writing the same head again changes nothing."""
    key = anchor_key(identity, head)
    create_once(target, key, json.dumps(body, indent=2, sort_keys=True).encode() + b"\n")
    return key


def anchors_in(storage: Storage, identity: str, where: str) -> Iterator[Anchor]:
    """The anchors of the chain `identity` kept in storage (named `where`)."""
    for info in storage.list(f"{ANCHORS_PREFIX}{identity}/"):
        body = read_record(storage, info.key)  # None: gone since listed, or not JSON
        if body is None:
            continue
        try:
            yield Anchor(identity, int(body["sequence"]), str(body["hash"]), f"{where}:{info.key}")
        except (KeyError, TypeError, ValueError):
            log.warning("%s/%s is not a readable anchor: ignored", storage.url, info.key)


def read_events(storage: Storage, since: datetime | None = None) -> list[AuditEvent]:
    """The readable events, in sequence order (from `since` on); for reports and `show`."""
    events = (read_event(storage, s) for s in event_sequences(storage))
    return [e for e in events if e is not None and (since is None or e.at >= since)]
