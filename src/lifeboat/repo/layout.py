"""Pure key naming: where each thing lives in a repository."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import NamedTuple

from lifeboat.storage.options import ObjectKind

MARKER = "lifeboat-repo.json"
MANIFEST = "manifest.json"
MANIFEST_COPY = "manifest.copy.json"
FORMAT_VERSION = 1

# A backup id is the UTC time the backup started, to the microsecond, and a random suffix:
# 20260303T143000.123456Z-3f9a. Two runs never get the same id, not even a run killed and
# the next one in the same second. Ids of Lifeboat before that, 20260303T143000Z, remain
# valid. Order ids with backup_order, never as strings: "." sorts before "Z", so
# 20260303T143000.5Z-... would come before 20260303T143000Z although it is later.
_ID = re.compile(r"([0-9]{8}T[0-9]{6})(?:\.([0-9]{6})Z-([0-9a-f]{4})|Z)")
_SOURCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class BackupOrder(NamedTuple):
    """Where a backup id sorts: by its time, then its random suffix ("" in an id without
    one, which so comes first among the ids of its moment)."""

    time: datetime
    suffix: str


def backup_id(moment: datetime, suffix: str | None = None) -> str:
    """The id of a backup started at moment; suffix: 4 lower-case hex digits, random if
    not given."""
    suffix = secrets.token_hex(2) if suffix is None else suffix
    made = f"{moment.astimezone(UTC):%Y%m%dT%H%M%S.%f}Z-{suffix}"
    if not is_backup_id(made):
        raise ValueError(f"invalid backup id suffix {suffix!r}: 4 lower-case hex digits")
    return made


def parse_backup_id(value: str) -> BackupOrder | None:
    """The time and suffix of a backup id (either form), else None."""
    match = _ID.fullmatch(value)
    if match is None:
        return None
    try:
        moment = datetime.strptime(match[1], "%Y%m%dT%H%M%S")
    except ValueError:  # e.g. month 13
        return None
    moment = moment.replace(microsecond=int(match[2] or 0), tzinfo=UTC)
    return BackupOrder(moment, match[3] or "")


def is_backup_id(value: str) -> bool:
    return parse_backup_id(value) is not None


def backup_order(backup: str) -> BackupOrder:
    """The sort key of a backup id: every place that orders backups by id uses it."""
    parsed = parse_backup_id(backup)
    if parsed is None:
        raise ValueError(f"not a backup id: {backup!r}")
    return parsed


def backup_time(backup: str) -> datetime:
    return backup_order(backup).time


def sorted_ids(ids: Iterable[str]) -> list[str]:
    """Backup ids oldest first."""
    return sorted(ids, key=backup_order)


def check_source_name(name: str) -> str:
    if not _SOURCE.match(name) or name in ("locks", "audit"):
        raise ValueError(f"invalid source name {name!r}: letters, digits, _ . - (max 63)")
    return name


def backups_prefix(source: str) -> str:
    return f"{source}/backups/"


def backup_prefix(source: str, backup: str) -> str:
    return f"{source}/backups/{backup}/"


def object_key(source: str, backup: str, name: str) -> str:
    return f"{source}/backups/{backup}/{name}"


def manifest_key(source: str, backup: str) -> str:
    return object_key(source, backup, MANIFEST)


def manifest_copy_key(source: str, backup: str) -> str:
    return object_key(source, backup, MANIFEST_COPY)


def lock_key(name: str) -> str:
    return f"locks/{name}.lock"


def parse_backup_key(key: str) -> tuple[str, str, str] | None:
    """(source, backup id, object name) of a key under a backup folder, else None."""
    parts = key.split("/")
    if len(parts) != 4 or parts[1] != "backups" or not is_backup_id(parts[2]):
        return None
    return parts[0], parts[2], parts[3]


def object_kind(key: str) -> ObjectKind:
    """Which kind of object a repository key names: backup data, WAL, or the small files
    (manifests, markers, locks, holds) that must stay cheap and quick to read. Handed to
    the storage backend, which sets storage class, tier and retention by kind."""
    parts = key.split("/")
    if len(parts) >= 3 and parts[1] in ("wal", "wal-stream"):
        return "wal"
    parsed = parse_backup_key(key)
    if parsed is not None and parsed[2] not in (MANIFEST, MANIFEST_COPY):
        return "data"
    return "metadata"


# --- the cluster a source holds ----------------------------------------------------------
# <source>/cluster/<8 digits>.json: write-once records of the PostgreSQL cluster (system
# identifier) whose WAL and backups the source takes; the highest number is in force.

_CLUSTER_RECORD = re.compile(r"^(\d{8})\.json$")


def cluster_prefix(source: str) -> str:
    return f"{source}/cluster/"


def cluster_record_key(source: str, number: int) -> str:
    return f"{cluster_prefix(source)}{number:08d}.json"


def parse_cluster_record_key(source: str, key: str) -> int | None:
    """The number of a cluster record key of source, else None."""
    prefix = cluster_prefix(source)
    match = _CLUSTER_RECORD.match(key[len(prefix) :]) if key.startswith(prefix) else None
    return int(match[1]) if match else None


# --- WAL archive ---------------------------------------------------------------------------
# <source>/wal/<timeline+log>/<name>-<plain sha256>.zst.<age|gpg>, at most 256 segments a
# folder (16 MiB segments); history files in <source>/wal/history/. The plaintext hash in the
# name makes a repeated push comparable without the key, as pgBackRest does.

WAL_OBJECT_SUFFIX = ".zst"


def wal_folder(source: str, name: str) -> str:
    if name.endswith(".history"):
        return f"{source}/wal/history/"
    return f"{source}/wal/{name[:16]}/"


def wal_key(source: str, name: str, plain_sha256: str, encryption_suffix: str) -> str:
    return f"{wal_folder(source, name)}{name}-{plain_sha256}{WAL_OBJECT_SUFFIX}{encryption_suffix}"


def wal_prefix(source: str, name: str) -> str:
    """Keys of every stored copy of one WAL file start with this."""
    return f"{wal_folder(source, name)}{name}-"


def parse_wal_key(key: str) -> tuple[str, str] | None:
    """(WAL file name, plaintext sha256) of a WAL archive key, else None."""
    leaf = key.rsplit("/", 1)[-1]
    name, dash, rest = leaf.rpartition("-")
    digest = rest.split(".", 1)[0]
    if not dash or len(digest) != 64 or not rest.startswith(digest + WAL_OBJECT_SUFFIX):
        return None
    return name, digest


# --- WAL stream partials ---------------------------------------------------------------------
# <source>/wal-stream/<segment>.partial-<streamed length, 8 hex>-<plain sha256>.zst.<age|gpg>:
# the growing segment `lifeboat wal-stream` receives, uploaded again whenever it grew. Kept
# apart from <source>/wal/, whose objects never change, and deleted once the full segment is
# archived. The length (up to the last non-zero byte) orders two copies of one segment.

_STREAM_PARTIAL = re.compile(
    r"^([0-9A-F]{24})\.partial-([0-9a-f]{8})-([0-9a-f]{64})" + re.escape(WAL_OBJECT_SUFFIX) + r"\."
)


def stream_prefix(source: str) -> str:
    return f"{source}/wal-stream/"


def stream_partial_prefix(source: str, segment: str) -> str:
    """Keys of every streamed partial copy of one segment start with this."""
    return f"{stream_prefix(source)}{segment}.partial-"


def stream_partial_key(
    source: str, segment: str, streamed_length: int, plain_sha256: str, encryption_suffix: str
) -> str:
    return (
        f"{stream_partial_prefix(source, segment)}{streamed_length:08x}-{plain_sha256}"
        f"{WAL_OBJECT_SUFFIX}{encryption_suffix}"
    )


def parse_stream_partial_key(key: str) -> tuple[str, int, str] | None:
    """(segment name, streamed length, plaintext sha256) of a stream partial key, else None."""
    leaf = key.rsplit("/", 1)[-1]
    match = _STREAM_PARTIAL.match(leaf)
    if match is None:
        return None
    return match[1], int(match[2], 16), match[3]
