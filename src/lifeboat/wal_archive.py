"""The WAL archive: wal-push for archive_command, wal-fetch for restore_command.

Each file is compressed, encrypted and stored under a name carrying its plaintext sha256, so
pushing the same file again is recognised without the key, and a different file under a name
already archived is refused instead of overwriting history."""

from __future__ import annotations

import hashlib
import io
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lifeboat.errors import IntegrityError, LifeboatError, UsageError
from lifeboat.pipeline.compress import decompressing_writer
from lifeboat.pipeline.crypto import Decryptor, Encryptor
from lifeboat.postgres import wal
from lifeboat.repo import layout
from lifeboat.storage.base import Storage

log = logging.getLogger(__name__)


class WalConflictError(LifeboatError):
    """A different file is already archived under this name."""


class WalNotFoundError(LifeboatError):
    """The archive holds no such WAL file (normal at the end of recovery)."""


@dataclass(frozen=True)
class PushResult:
    name: str
    key: str
    plain_size: int
    stored_size: int
    already_archived: bool


def check_wal_name(name: str) -> str:
    if not (
        wal.is_segment_name(name)
        or wal.is_partial_name(name)
        or wal.is_history_name(name)
        or wal.is_backup_label_name(name)
    ):
        raise UsageError(f"{name!r} is not a WAL segment, .partial, .history or .backup file name")
    return name


def _stored_copies(storage: Storage, source: str, name: str) -> dict[str, str]:
    """plaintext sha256 -> key of every stored copy of name."""
    copies = {}
    for info in storage.list(layout.wal_prefix(source, name)):
        parsed = layout.parse_wal_key(info.key)
        if parsed and parsed[0] == name:
            copies[parsed[1]] = info.key
    return copies


def is_archived(storage: Storage, source: str, name: str) -> bool:
    return bool(_stored_copies(storage, source, name))


def push(storage: Storage, source: str, path: Path, encryptor: Encryptor, level: int) -> PushResult:
    import zstandard

    name = check_wal_name(path.name)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LifeboatError(f"cannot read {path}: {exc.strerror}") from None
    digest = hashlib.sha256(data).hexdigest()
    copies = _stored_copies(storage, source, name)
    if digest in copies:
        log.info("%s already archived with the same content", name)
        return PushResult(name, copies[digest], len(data), 0, already_archived=True)
    if copies:
        raise WalConflictError(
            f"{name} is already archived with different content ({', '.join(sorted(copies))}); "
            "refusing to overwrite it: is another cluster archiving into this source?"
        )
    compressed = zstandard.ZstdCompressor(level=level, write_checksum=True).compress(data)
    sink = io.BytesIO()
    encryptor.encrypt(io.BytesIO(compressed), sink)
    key = layout.wal_key(source, name, digest, encryptor.suffix)
    info = storage.write(key, [sink.getvalue()])
    log.info("archived %s (%d -> %d bytes)", name, len(data), info.size)
    return PushResult(name, key, len(data), info.size, already_archived=False)


def fetch(
    storage: Storage,
    source: str,
    name: str,
    destination: Path,
    decryptor_for: Callable[[str], Decryptor],
) -> int:
    """Write the archived file `name` to destination; returns its size. decryptor_for gets
    the object's encryption method ("age" or "gpg")."""
    import zstandard

    check_wal_name(name)
    copies = _stored_copies(storage, source, name)
    if not copies:
        raise WalNotFoundError(f"{name} is not in the archive of {source}")
    if len(copies) > 1:
        raise IntegrityError(
            f"{name} is archived with several contents: {', '.join(sorted(copies))}"
        )
    digest, key = next(iter(copies.items()))
    decryptor = decryptor_for("age" if key.endswith(".age") else "gpg")
    with storage.read(key) as stream:
        plain = io.BytesIO()
        decompressor = decompressing_writer(plain)
        try:
            decryptor.decrypt(stream, decompressor)
            decompressor.flush()
        except zstandard.ZstdError as exc:
            raise IntegrityError(
                f"{key}: decompression failed, the object is corrupted: {exc}"
            ) from None
        except IntegrityError as exc:
            raise IntegrityError(f"{key}: {exc}") from None
    data = plain.getvalue()
    if hashlib.sha256(data).hexdigest() != digest:
        raise IntegrityError(f"{key}: content does not match its checksum, the object is corrupted")
    temp = destination.with_name(f".{destination.name}.lifeboat-tmp")
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, destination)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise LifeboatError(f"cannot write {destination}: {exc.strerror}") from None
    return len(data)


def archived_segments(storage: Storage, source: str) -> dict[int, set[int]]:
    """Segment numbers in the archive, per timeline (segments only; not .partial files)."""
    found: dict[int, set[int]] = {}
    for info in storage.list(f"{source}/wal/"):
        parsed = layout.parse_wal_key(info.key)
        if parsed is None or not wal.is_segment_name(parsed[0]):
            continue
        segment = wal.Segment.parse(parsed[0])
        found.setdefault(segment.timeline, set()).add(segment.number)
    return found


def continuity_problems(
    archived: dict[int, set[int]], timeline: int, first: int, needed_until: int
) -> list[str]:
    """What keeps recovery from a base backup from replaying its WAL: a segment missing up to
    needed_until (the backup's end), then the first gap before the newest archived segment."""
    have = archived.get(timeline, set())
    problems = []
    missing = [n for n in range(first, needed_until + 1) if n not in have]
    if missing:
        name = wal.Segment(timeline, missing[0]).name()
        problems.append(f"WAL segment {name}, needed to make the backup consistent, is missing")
        return problems
    newest = max(have, default=needed_until)
    gap = next((n for n in range(needed_until + 1, newest) if n not in have), None)
    if gap is not None:
        problems.append(
            f"WAL gap: segment {wal.Segment(timeline, gap).name()} is missing, so recovery from "
            f"this backup stops at {wal.Segment(timeline, gap - 1).name()}"
        )
    return problems
