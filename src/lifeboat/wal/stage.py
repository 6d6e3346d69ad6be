"""Staging fetched WAL: what wal-fetch (restore_command) and the prefetcher write where
PostgreSQL reads it.

An archived file is read back through the archive (wal/archive.py: decrypted, decompressed,
checked against the sha256 its name carries) and written durably to the destination; a
segment no repository archived is served from the newest streamed partial of it, zero-padded
to the segment size. Several repositories are tried in order. (wal-stream's staging folder,
wal/stream.py, is the other direction: pg_receivewal's output on its way up.)"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from lifeboat.errors import IntegrityError, LifeboatError
from lifeboat.postgres import wal, walheader
from lifeboat.repo.wal_files import read_verified
from lifeboat.storage.base import Storage
from lifeboat.wal.archive import (
    WalNotFoundError,
    newest_stream_partial,
    read_archived,
    storage_list,
)

if TYPE_CHECKING:
    from lifeboat.pipeline.crypto import Decryptor

log = logging.getLogger(__name__)


def fetch(
    storages: Storage | Sequence[Storage],
    source: str,
    name: str,
    destination: Path,
    decryptor_for: Callable[[str], Decryptor],
    *,
    allow_stream_partial: bool = True,
) -> int:
    """Write the archived file `name` to destination; returns its size. decryptor_for gets
    the object's encryption method ("age" or "gpg"). Several repositories are tried in
    order: the first that has the file serves it; one that fails is skipped, and its
    failure is raised only when no other has the file.

    A segment no repository archived is served from the newest streamed partial of it when
    `lifeboat wal-stream` uploaded one (as Barman's `get-wal --partial`): zero-padded to the
    segment size, so recovery replays it up to its last complete record and ends there.
    allow_stream_partial=False is for fetching ahead: a partial may still grow until recovery
    really asks for it."""
    wal.check_archive_name(name)
    targets = storage_list(storages)
    failures: list[LifeboatError] = []
    passes = [False, True] if allow_stream_partial and wal.is_segment_name(name) else [False]
    for partial in passes:
        for storage in targets:
            try:
                if partial:
                    return _fetch_stream_partial(storage, source, name, destination, decryptor_for)
                return _fetch_archived(storage, source, name, destination, decryptor_for)
            except WalNotFoundError:
                continue
            except LifeboatError as exc:
                if len(targets) > 1:
                    log.warning("%s: %s failed: %s", name, storage.url, exc)
                failures.append(exc)
    if failures:
        raise failures[0]
    raise WalNotFoundError(f"{name} is not in the archive of {source}")


def _fetch_archived(
    storage: Storage,
    source: str,
    name: str,
    destination: Path,
    decryptor_for: Callable[[str], Decryptor],
) -> int:
    data = read_archived(storage, source, name, decryptor_for)
    _write_durably(destination, data)
    return len(data)


def _fetch_stream_partial(
    storage: Storage,
    source: str,
    name: str,
    destination: Path,
    decryptor_for: Callable[[str], Decryptor],
) -> int:
    partial = newest_stream_partial(storage, source, name)
    if partial is None:
        raise WalNotFoundError(f"{name} is not in the archive of {source}")
    data = pad_to_segment_size(
        read_verified(storage, partial.key, partial.plain_sha256, decryptor_for)
    )
    log.info(
        "%s is not archived: serving its streamed partial (%d bytes of WAL)",
        name,
        partial.streamed_length,
    )
    _write_durably(destination, data)
    return len(data)


def _write_durably(destination: Path, data: bytes) -> None:
    from lifeboat.util.fs import write_durably

    try:
        write_durably(destination, data)
    except OSError as exc:
        raise LifeboatError(f"cannot write {destination}: {exc.strerror}") from None


def pad_to_segment_size(data: bytes) -> bytes:
    """Zero-pad a partial segment to the size PostgreSQL's restore_command must deliver.

    pg_receivewal (15, 17) writes partial files at full size, and an upload must be whole;
    this only matters for a copy cut short, whose own first page header says how large the
    segment is."""
    try:
        size = walheader.parse_long_header(data).segment_size
    except ValueError as exc:
        raise IntegrityError(f"a streamed partial segment is damaged: {exc}") from None
    if len(data) > size:
        raise IntegrityError(
            f"a streamed partial segment is larger ({len(data)}) than its segment size"
        )
    return data + bytes(size - len(data))
