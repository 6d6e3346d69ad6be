"""Small write-once records in a repository: holds, verification results, audit events.

Nothing is rewritten (DESIGN.md, "write once"): a hold and its release are two records,
and the state of a backup is read from its newest record. That keeps the repository usable
on WORM buckets, and every change visible afterwards.

    <source>/holds/<backup-id>/<UTC stamp>-<hold|release>.json
    <source>/checks/<backup-id>/<UTC stamp>-<ok|failed>.json
    audit/<UTC stamp>-<action>-<source>.json
"""

from __future__ import annotations

import getpass
import json
import logging
import secrets
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from lifeboat.repo import layout
from lifeboat.storage.base import NotFound, Storage

log = logging.getLogger(__name__)


def os_user() -> str:
    """The OS user running Lifeboat ("unknown" when the system cannot say)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def actor() -> str:
    """Who is acting: user@host, as an auditor wants it."""
    return f"{os_user()}@{socket.gethostname()}"


def stamp(moment: datetime) -> str:
    # microseconds and a random tail: two records of one second never share a key
    return f"{moment.astimezone(UTC):%Y%m%dT%H%M%S.%fZ}-{secrets.token_hex(3)}"


def holds_prefix(source: str, backup: str | None = None) -> str:
    return f"{source}/holds/{backup}/" if backup else f"{source}/holds/"


def checks_prefix(source: str, backup: str | None = None) -> str:
    return f"{source}/checks/{backup}/" if backup else f"{source}/checks/"


AUDIT_PREFIX = "audit/"


def write_record(storage: Storage, key: str, body: dict[str, Any]) -> str:
    storage.write(key, [json.dumps(body, indent=2, sort_keys=True).encode() + b"\n"])
    return key


def read_record(storage: Storage, key: str) -> dict[str, Any] | None:
    try:
        with storage.read(key) as stream:
            data = stream.read()
    except NotFound:
        return None
    try:
        body = json.loads(data)
    except ValueError:
        log.warning("%s/%s is not valid JSON: ignored", storage.url, key)
        return None
    return body if isinstance(body, dict) else None


def records_by_backup(storage: Storage, prefix: str) -> dict[str, list[str]]:
    """Keys of the records under prefix (`<source>/holds/` or `<source>/checks/`) by backup
    id, oldest first."""
    found: dict[str, list[str]] = {}
    for info in storage.list(prefix):
        rest = info.key[len(prefix) :]
        backup, _, leaf = rest.partition("/")
        if layout.is_backup_id(backup) and leaf.endswith(".json") and "/" not in leaf:
            found.setdefault(backup, []).append(info.key)
    for keys in found.values():
        keys.sort()
    return found


# --- holds -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hold:
    backup: str
    reason: str
    until: datetime | None  # None: until released
    by: str
    at: datetime

    def active(self, now: datetime) -> bool:
        return self.until is None or self.until > now

    def summary(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "until": self.until.isoformat() if self.until else None,
            "by": self.by,
            "at": self.at.isoformat(),
        }


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def hold_key(source: str, backup: str, moment: datetime, action: str) -> str:
    return f"{holds_prefix(source, backup)}{stamp(moment)}-{action}.json"


def current_holds(storage: Storage, source: str) -> dict[str, Hold]:
    """The hold in force (expired or not) of every backup whose newest record is a hold."""
    holds: dict[str, Hold] = {}
    for backup, keys in records_by_backup(storage, holds_prefix(source)).items():
        newest = read_record(storage, keys[-1])
        if newest is None or newest.get("action") != "hold":
            continue
        at = _parse_time(newest.get("at")) or datetime.now(UTC)
        holds[backup] = Hold(
            backup=backup,
            reason=str(newest.get("reason", "")),
            until=_parse_time(newest.get("until")),
            by=str(newest.get("by", "")),
            at=at,
        )
    return holds


# --- verification results ------------------------------------------------------------------


def check_key(source: str, backup: str, moment: datetime, ok: bool) -> str:
    return f"{checks_prefix(source, backup)}{stamp(moment)}-{'ok' if ok else 'failed'}.json"


# verification records kept per backup by prune: enough history to show a trend
CHECKS_KEPT = 10


class Verifications(NamedTuple):
    failed: dict[str, str]  # backups whose newest verification failed -> when
    superseded: list[str]  # keys of records older than the newest CHECKS_KEPT of a backup


def verifications(storage: Storage, source: str) -> Verifications:
    """The outcome is in the key, so no record needs to be read."""
    failed = {}
    superseded = []
    for backup, keys in records_by_backup(storage, checks_prefix(source)).items():
        leaf = keys[-1].rsplit("/", 1)[-1]
        if leaf.endswith("-failed.json"):
            failed[backup] = leaf.split("-", 1)[0]
        superseded += keys[:-CHECKS_KEPT]
    return Verifications(failed, superseded)


def audit_key(moment: datetime, action: str, source: str) -> str:
    return f"{AUDIT_PREFIX}{stamp(moment)}-{action}-{source}.json"
