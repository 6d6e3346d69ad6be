"""Which PostgreSQL cluster a source holds, recorded once in the repository.

A source's WAL archive and its backups are of one cluster, told apart from every other by
its system identifier (pg_control; every WAL segment's first page header repeats it). The
first backup or `wal-push` of a source records it; from then on WAL and backups of another
cluster are refused, as pgBackRest refuses them by the stanza's system identifier. A
deliberate move to a new cluster (`backup --accept-new-cluster`) adds a record naming the
identifier it replaces: records are never rewritten (DESIGN.md, "write once"), the highest
number is in force and the older ones stay as history.

    <source>/cluster/<8 digits>.json

Readers cache the record in force per process: `wal-push` runs once per segment, and the
record changes only when someone accepts a new cluster, which a reader holding the old one
finds out by reading again before it refuses anything. A long-running reader (the async
worker, `wal-stream`) reads it again once its copy is CACHE_SECONDS old, so it stops taking
the old cluster's WAL soon after a new one is accepted.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lifeboat.errors import LifeboatError, RepositoryError
from lifeboat.postgres.pgcontrol import unsigned_system_identifier
from lifeboat.repo import layout
from lifeboat.repo.wal_files import archived_files, read_verified
from lifeboat.storage.base import AlreadyExists, NotFound, Storage
from lifeboat.storage.capabilities import exclusive_create

if TYPE_CHECKING:
    from lifeboat.pipeline.crypto import Decryptor

log = logging.getLogger(__name__)


class ClusterMismatchError(LifeboatError):
    """The server is not the cluster the source holds."""


@dataclass(frozen=True)
class ClusterIdentity:
    """What identifies a cluster, as read from a server or from a WAL segment's header."""

    system_identifier: str  # decimal, as pg_control_system() and pg_controldata show it
    major: int | None = None  # None when unknown (a WAL format newer than this Lifeboat)
    segment_size: int | None = None


@dataclass(frozen=True)
class ClusterRecord:
    key: str
    number: int
    identity: ClusterIdentity
    recorded_at: str
    recorded_by: str
    recorded_from: str
    replaces: str | None

    @property
    def system_identifier(self) -> str:
        return self.identity.system_identifier

    def describe(self) -> str:
        """`<id> (recorded <when> by <whom>)`, for one-line messages."""
        return f"{self.system_identifier} (recorded {self.recorded_at} by {self.recorded_by})"


def _parse(key: str, number: int, data: bytes) -> ClusterRecord:
    try:
        body = json.loads(data)
        identity = ClusterIdentity(
            system_identifier=unsigned_system_identifier(body["system_identifier"]),
            major=int(body["pg_major"]) if body.get("pg_major") is not None else None,
            segment_size=int(body["wal_segment_size"])
            if body.get("wal_segment_size") is not None
            else None,
        )
        replaces = body.get("replaces")
        return ClusterRecord(
            key=key,
            number=number,
            identity=identity,
            recorded_at=str(body["recorded_at"]),
            recorded_by=str(body["recorded_by"]),
            recorded_from=str(body.get("recorded_from", "")),
            replaces=str(replaces) if replaces is not None else None,
        )
    except (ValueError, KeyError, TypeError) as exc:
        # failing closed: a source whose identity cannot be read takes nothing until someone
        # looks; `backup --accept-new-cluster` writes a record that supersedes it
        raise RepositoryError(
            f"the cluster record {key} is damaged ({exc}): run `lifeboat backup "
            f"{key.split('/', 1)[0]} --accept-new-cluster` to record the cluster again"
        ) from None


def _numbered_keys(storage: Storage, source: str) -> list[tuple[int, str]]:
    """(number, key) of the source's records, oldest first."""
    return sorted(
        (number, info.key)
        for info in storage.list(layout.cluster_prefix(source))
        if (number := layout.parse_cluster_record_key(source, info.key)) is not None
    )


def _newest_key(storage: Storage, source: str) -> tuple[int, str] | None:
    numbered = _numbered_keys(storage, source)
    return numbered[-1] if numbered else None


def _read(storage: Storage, key: str, number: int) -> tuple[ClusterRecord, bytes]:
    try:
        with storage.read(key) as stream:
            data = stream.read()
    except NotFound:
        raise RepositoryError(f"the cluster record {key} vanished while it was read") from None
    return _parse(key, number, data), data


def history(storage: Storage, source: str) -> list[tuple[ClusterRecord, bytes]]:
    """Every record of the source, oldest first, with the bytes it is stored as."""
    return [_read(storage, key, number) for number, key in _numbered_keys(storage, source)]


def _read_newest(storage: Storage, source: str) -> ClusterRecord | None:
    newest = _newest_key(storage, source)
    if newest is None:
        return None
    number, key = newest
    return _read(storage, key, number)[0]


# how long a process trusts the record it read: one list and one small read per minute is
# nothing to a long-running process, and bounds how long it takes an accepted move to reach it
CACHE_SECONDS = 60.0
# what the cache's age is measured with (tests set a clock of their own)
clock: Callable[[], float] = time.monotonic

# per storage object (what one process opened), per source: the record and when it was read
_cache: weakref.WeakKeyDictionary[Storage, dict[str, tuple[ClusterRecord, float]]] = (
    weakref.WeakKeyDictionary()
)
_cache_lock = threading.Lock()


def _remember(storage: Storage, source: str, record: ClusterRecord, read_at: float) -> None:
    with _cache_lock:
        _cache.setdefault(storage, {})[source] = (record, read_at)


def current(storage: Storage, source: str, *, fresh: bool = False) -> ClusterRecord | None:
    """The record in force, or None when the source has none yet. Read once per process
    and repository, and again once CACHE_SECONDS old, unless fresh."""
    now = clock()
    if not fresh:
        with _cache_lock:
            cached = _cache.get(storage, {}).get(source)
        if cached is not None and now - cached[1] < CACHE_SECONDS:
            return cached[0]
    record = _read_newest(storage, source)
    if record is not None:
        _remember(storage, source, record, now)
    return record


def contradiction(storage: Storage, source: str, found: ClusterIdentity) -> ClusterRecord | None:
    """The record in force when found is another cluster, else None (also without a record).
    A cached record that disagrees is read again first: a new cluster may have been accepted
    since this process read it."""
    record = current(storage, source)
    if record is None or record.system_identifier == found.system_identifier:
        return None
    record = current(storage, source, fresh=True)
    if record is None or record.system_identifier == found.system_identifier:
        return None
    return record


def ensure_recorded(
    storage: Storage,
    source: str,
    found: ClusterIdentity,
    recorded_from: str,
    decryptor_for: Callable[[str], Decryptor] | None = None,
) -> ClusterRecord | None:
    """Record the source's cluster when it has no record yet. Returns the record in force
    when that is another cluster's than found, else None.

    A source that has backups or WAL already (a repository of a Lifeboat that kept no
    record) holds the cluster they are of, not whichever server pushes or backs up first,
    which may be a stray one: the newest backup's server says which, else the oldest
    archived segment's header (when decryptor_for can decrypt it), and only then found."""
    if current(storage, source) is None:
        inherited = _inherited(storage, source, decryptor_for)
        if inherited is None:
            record_cluster(storage, source, found, recorded_from)
        else:
            identity, evidence = inherited
            log.warning(
                "source %s in %s had no cluster record: recording the cluster of %s, %s",
                source,
                storage.url,
                evidence,
                identity.system_identifier,
            )
            record_cluster(storage, source, identity, evidence)
    return contradiction(storage, source, found)


def _inherited(
    storage: Storage, source: str, decryptor_for: Callable[[str], Decryptor] | None
) -> tuple[ClusterIdentity, str] | None:
    """The cluster the source's existing backups or WAL are of, and what says so."""
    return _of_newest_backup(storage, source) or _of_oldest_segment(storage, source, decryptor_for)


def _of_newest_backup(storage: Storage, source: str) -> tuple[ClusterIdentity, str] | None:
    from lifeboat.repo.catalog import Repository

    repo = Repository(storage.url, storage)
    for backup in reversed(repo.committed_ids(source)):
        try:
            manifest = repo.load_manifest(source, backup)
        except LifeboatError as exc:
            log.warning("cannot read backup %s of %s: %s", backup, source, exc)
            continue
        # a safety backup is of the server a restore wrote to, which may be another
        if manifest.safety or manifest.server.system_identifier is None:
            continue
        identity = ClusterIdentity(
            unsigned_system_identifier(manifest.server.system_identifier),
            manifest.server.version_num // 10000,
        )
        return identity, f"backup {backup}"
    return None


def _of_oldest_segment(
    storage: Storage, source: str, decryptor_for: Callable[[str], Decryptor] | None
) -> tuple[ClusterIdentity, str] | None:
    from lifeboat.postgres import wal, walheader

    segments = [f for f in archived_files(storage, source) if wal.is_segment_name(f.name)]
    if not segments or decryptor_for is None:
        return None
    oldest = min(segments, key=lambda archived: archived.name)
    try:
        data = read_verified(storage, oldest.key, oldest.plain_sha256, decryptor_for)
        header = walheader.parse_long_header(data)
    except (LifeboatError, ValueError) as exc:
        # e.g. a host that may push but holds no private key
        log.info("cannot read the archived %s to learn its cluster: %s", oldest.name, exc)
        return None
    identity = ClusterIdentity(str(header.system_identifier), header.major, header.segment_size)
    return identity, f"archived WAL file {oldest.name}"


def record_cluster(
    storage: Storage,
    source: str,
    found: ClusterIdentity,
    recorded_from: str,
    replacing: ClusterRecord | None = None,
) -> ClusterRecord:
    """Write the next record: the first one, or one that replaces the record in force
    (`replacing`, None when there is none or it is damaged). Returns the record in force
    afterwards, which is another writer's when it took the same number first."""
    from lifeboat import __version__
    from lifeboat.repo.records import actor

    newest = _newest_key(storage, source)
    number = newest[0] + 1 if newest else 1
    key = layout.cluster_record_key(source, number)
    body: dict[str, Any] = {
        "system_identifier": found.system_identifier,
        "pg_major": found.major,
        "wal_segment_size": found.segment_size,
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "recorded_by": actor(),
        "recorded_from": recorded_from,
        "replaces": replacing.system_identifier if replacing else None,
        "lifeboat": __version__,
    }
    data = json.dumps(body, indent=2, sort_keys=True).encode() + b"\n"
    if create_once(storage, key, data):
        log.info(
            "source %s in %s now holds the cluster %s", source, storage.url, found.system_identifier
        )
        record = _parse(key, number, data)
        _remember(storage, source, record, clock())
        return record
    in_force = current(storage, source, fresh=True)
    assert in_force is not None  # the key that was there is one
    return in_force


def create_once(storage: Storage, key: str, data: bytes) -> bool:
    """Create key holding data unless it exists; False when it exists already.

    The one place the records' write-once rule is enforced. Storage offering an exclusive
    create (O_EXCL locally, a conditional write in the clouds) makes this one atomic request.
    Without one, looking first leaves two first writers a window of one round trip: reading
    the key back after the write tells the later writer that its record did not stand."""
    creator = exclusive_create(storage)
    if creator is not None:
        try:
            creator.create_exclusive(key, data)
        except AlreadyExists:
            return False
        return True
    try:
        storage.stat(key)
        return False
    except NotFound:
        pass
    storage.write(key, [data])
    with storage.read(key) as stream:
        return bool(stream.read() == data)


def mismatch_message(
    subject: str, source: str, found: ClusterIdentity, record: ClusterRecord, storage: Storage
) -> str:
    """`<subject> belongs to the cluster X, but source S holds the cluster Y (recorded ...)`."""
    return (
        f"{subject} belongs to the cluster with system identifier {found.system_identifier}, but "
        f"source {source} holds the cluster with system identifier {record.describe()} "
        f"in {storage.url}"
    )
