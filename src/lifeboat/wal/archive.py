"""The WAL archive: what wal-push stores for archive_command, and how an archived file or a
streamed partial is found and read back (wal/stage.py writes it where restore_command wants
it).

Each file is compressed, encrypted and stored under a name carrying its plaintext sha256, so
pushing the same file again is recognised without the key, and a different file under a name
already archived is refused instead of overwriting history. A segment must also be whole and
of the cluster the source holds (repo/cluster.py): its first page header says which; for a
.history or .backup file, the pg_control of the data directory it is archived from."""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import mmap
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from lifeboat.errors import IntegrityError, LifeboatError, UsageError
from lifeboat.postgres import wal, walheader
from lifeboat.repo import cluster, layout
from lifeboat.repo.wal_files import archived_files, read_verified
from lifeboat.storage.base import PermanentError, Storage

if TYPE_CHECKING:
    from lifeboat.pipeline.crypto import Decryptor, Encryptor

log = logging.getLogger(__name__)

MAP_AT_LEAST = 1 << 20


class WalRefusedError(LifeboatError):
    """The archive refuses this file for good: pushing it again cannot succeed."""


class WalConflictError(WalRefusedError):
    """A different file is already archived under this name."""


class NotASegmentError(WalRefusedError):
    """A file named like a WAL segment that is not a whole one."""


class ForeignWalError(WalRefusedError):
    """WAL of another cluster than the one the source holds."""


class WalNotFoundError(LifeboatError):
    """The archive holds no such WAL file (normal at the end of recovery)."""


class PushResult(NamedTuple):
    name: str
    key: str
    plain_size: int
    stored_size: int
    already_archived: bool
    plain_sha256: str


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


def push(
    storages: Storage | Sequence[Storage],
    source: str,
    path: Path,
    encryptor: Encryptor,
    level: int,
    decryptor_for: Callable[[str], Decryptor] | None = None,
) -> PushResult:
    """Archive one WAL file into every repository given, compressed and encrypted once. A
    repository that fails does not keep the others from getting the file; the first
    failure is raised after all were tried (archive_command then fails and PostgreSQL
    tries again, which the repositories that have the file answer at once). decryptor_for,
    when given, lets a repository without a cluster record learn it from its archived WAL
    (cluster.ensure_recorded)."""
    configured = storage_list(storages)
    name = wal.check_archive_name(path.name)
    failures: list[BaseException] = []
    with _mapped(path) as data:
        found = segment_identity(name, data)
        if found is not None:
            targets = admit(configured, source, name, found, failures, decryptor_for=decryptor_for)
        else:
            targets = admit_headerless(configured, source, name, path, failures)
        if not targets:
            raise failures[0]
        # hashing and compressing both let go of the interpreter: run them side by side
        # (the compression is wasted only on the rare push of a segment already archived)
        hashed: list[str] = []
        hasher = threading.Thread(target=lambda: hashed.append(hashlib.sha256(data).hexdigest()))
        hasher.start()
        try:
            import zstandard  # while the hashing runs

            compressed = zstandard.ZstdCompressor(level=level, write_checksum=True).compress(data)
        finally:
            hasher.join()  # before the mapping goes
        size = len(data)
    digest = hashed[0]
    encrypted: list[bytes] = []
    results: list[PushResult] = []
    for storage in targets:
        try:
            results.append(
                _store(storage, source, name, digest, size, compressed, encrypted, encryptor)
            )
        except (LifeboatError, OSError) as exc:
            _note_failure(name, storage, exc, failures, len(configured))
    if failures:
        raise failures[0]
    return results[0]


def segment_identity(name: str, data: bytes | memoryview) -> cluster.ClusterIdentity | None:
    """The cluster a segment (or a .partial one) comes from, once it is checked to be a whole
    segment; None for .history and .backup files, which have no page header."""
    if not wal.is_whole_segment_name(name):
        return None
    try:
        # a copy, not a view: a view still referenced (from a traceback) keeps the mapping
        head = bytes(data[: walheader.LONG_HEADER_SIZE])
        header = walheader.whole_segment_header(name, head, len(data))
    except ValueError as exc:
        raise NotASegmentError(str(exc)) from None
    return cluster.ClusterIdentity(str(header.system_identifier), header.major, header.segment_size)


def sender_identity(path: Path) -> cluster.ClusterIdentity | None:
    """The cluster that sends a .history or .backup file, from the pg_control of the data
    directory it lies in (postgres/pgcontrol.py); None when it lies elsewhere."""
    from lifeboat.postgres import pgcontrol

    system_identifier = pgcontrol.sender_system_identifier(path)
    return None if system_identifier is None else cluster.ClusterIdentity(str(system_identifier))


def admit_headerless(
    targets: list[Storage],
    source: str,
    name: str,
    path: Path,
    failures: list[BaseException],
) -> list[Storage]:
    """admit() for a .history or .backup file: refused when its sender is known and another
    cluster than the one recorded; taken unchecked when the sender is unknown. It records
    nothing: the record is left to a segment or a backup, which also give the version and
    segment size."""
    found = sender_identity(path)
    if found is None:
        return targets
    return admit(targets, source, name, found, failures, record=False)


def admit(
    targets: list[Storage],
    source: str,
    name: str,
    found: cluster.ClusterIdentity,
    failures: list[BaseException],
    *,
    record: bool = True,
    decryptor_for: Callable[[str], Decryptor] | None = None,
) -> list[Storage]:
    """The repositories that take WAL of the cluster found: every one, unless one holds
    another cluster, which refuses the file everywhere before anything is written. Where
    the source has no cluster record yet, found becomes it (unless record is False). A
    repository whose record cannot be read is left out, its failure added to failures."""
    readable: list[Storage] = []
    for storage in targets:
        try:
            other = cluster.contradiction(storage, source, found)
        except (LifeboatError, OSError) as exc:
            _note_failure(name, storage, exc, failures, len(targets))
            continue
        if other is not None:
            raise ForeignWalError(_foreign_message(name, source, found, other, storage))
        readable.append(storage)
    if not record:
        return readable
    admitted: list[Storage] = []
    for storage in readable:
        try:
            other = cluster.ensure_recorded(
                storage, source, found, f"WAL file {name}", decryptor_for
            )
        except (LifeboatError, OSError) as exc:
            _note_failure(name, storage, exc, failures, len(targets))
            continue
        if other is not None:  # another cluster recorded itself first, a moment ago
            raise ForeignWalError(_foreign_message(name, source, found, other, storage))
        admitted.append(storage)
    return admitted


def _foreign_message(
    name: str,
    source: str,
    found: cluster.ClusterIdentity,
    record: cluster.ClusterRecord,
    storage: Storage,
) -> str:
    return (
        cluster.mismatch_message(name, source, found, record, storage)
        + ": refusing it; is another server's archive_command (or wal-stream) pointed at "
        "this source?"
    )


def _note_failure(
    name: str, storage: Storage, exc: BaseException, failures: list[BaseException], of: int
) -> None:
    if of > 1:
        log.warning("%s could not be archived to %s: %s", name, storage.url, exc)
    failures.append(exc)


def storage_list(storages: Storage | Sequence[Storage]) -> list[Storage]:
    """One storage or several, as a list: WAL goes to every repository of a source."""
    return list(storages) if isinstance(storages, Sequence) else [storages]


def _store(
    storage: Storage,
    source: str,
    name: str,
    digest: str,
    size: int,
    compressed: bytes,
    encrypted: list[bytes],
    encryptor: Encryptor,
) -> PushResult:
    copies = _stored_copies(storage, source, name)
    if digest in copies:
        log.info("%s already archived with the same content", name)
        return PushResult(name, copies[digest], size, 0, True, digest)
    if copies:
        raise WalConflictError(
            f"{name} is already archived with different content ({', '.join(sorted(copies))}); "
            "refusing to overwrite it: is another cluster archiving into this source?"
        )
    if not encrypted:  # once, for the first repository that needs it
        sink = io.BytesIO()
        encryptor.encrypt(io.BytesIO(compressed), sink)
        encrypted.append(sink.getvalue())
    key = layout.wal_key(source, name, digest, encryptor.suffix)
    info = storage.write(key, encrypted)
    log.info("archived %s (%d -> %d bytes)", name, size, info.size)
    return PushResult(name, key, size, info.size, False, digest)


@contextlib.contextmanager
def _mapped(path: Path) -> Iterator[memoryview]:
    """The file's content, mapped rather than read when it is large: reading a 16 MiB
    segment into a new buffer costs a push about 10 ms of copying and page faults.
    PostgreSQL does not change a segment it is archiving."""
    mapped: mmap.mmap | None = None
    try:
        with open(path, "rb") as handle:
            if os.fstat(handle.fileno()).st_size < MAP_AT_LEAST:
                view = memoryview(handle.read())
            else:
                mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
                view = memoryview(mapped)
    except OSError as exc:
        raise LifeboatError(f"cannot read {path}: {exc.strerror}") from None
    try:
        yield view
    finally:
        view.release()
        if mapped is not None:
            mapped.close()


def read_archived(
    storage: Storage, source: str, name: str, decryptor_for: Callable[[str], Decryptor]
) -> bytes:
    """The plaintext of the archived file `name`, checked against its sha256."""
    copies = _stored_copies(storage, source, name)
    if not copies:
        raise WalNotFoundError(f"{name} is not in the archive of {source}")
    if len(copies) > 1:
        raise IntegrityError(
            f"{name} is archived with several contents: {', '.join(sorted(copies))}"
        )
    digest, key = next(iter(copies.items()))
    return read_verified(storage, key, digest, decryptor_for)


# --- stream partials (lifeboat wal-stream) ---------------------------------------------------


class StreamPartial(NamedTuple):
    key: str
    segment: str
    streamed_length: int
    plain_sha256: str


def stream_partials(
    storage: Storage, source: str, segment: str | None = None
) -> list[StreamPartial]:
    """Streamed partials in the repository (of one segment when given), shortest first."""
    prefix = (
        layout.stream_partial_prefix(source, segment) if segment else layout.stream_prefix(source)
    )
    found = []
    for info in storage.list(prefix):
        parsed = layout.parse_stream_partial_key(info.key)
        if parsed is not None and (segment is None or parsed[0] == segment):
            found.append(StreamPartial(info.key, *parsed))
    return sorted(found, key=lambda p: (p.segment, p.streamed_length, p.key))


def newest_stream_partial(storage: Storage, source: str, segment: str) -> StreamPartial | None:
    """The copy holding the most WAL: a later upload of a growing file is never shorter."""
    copies = stream_partials(storage, source, segment)
    return copies[-1] if copies else None


def streamed_length(data: bytes) -> int:
    """Bytes up to the last non-zero one: pg_receivewal zero-fills a new segment first, so
    this grows as WAL arrives."""
    return len(data.rstrip(b"\0"))


def _read_partial(path: Path) -> bytes:
    if not wal.is_partial_name(path.name):
        raise UsageError(f"{path.name!r} is not a .partial WAL segment name")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise LifeboatError(f"cannot read {path}: {exc.strerror}") from None


def admit_stream_partial(storages: list[Storage], source: str, path: Path) -> list[Storage]:
    """The repositories that take this `<segment>.partial`, decided once for all of them
    before any gets it: a partial one repository refuses (another cluster's) goes to none
    (ForeignWalError). A repository whose record cannot be read is left out; with none
    left, the first failure is raised."""
    data = _read_partial(path)
    if streamed_length(data) == 0:
        return storages  # no WAL yet (zero-filled), nothing to tell: none will store it
    found = segment_identity(path.name, data)
    assert found is not None  # a .partial name
    failures: list[BaseException] = []
    admitted = admit(storages, source, path.name, found, failures)
    if not admitted:
        raise failures[0]
    return admitted


def push_stream_partial(
    storage: Storage,
    source: str,
    path: Path,
    encryptor: Encryptor,
    level: int,
    *,
    admitted: bool = False,
) -> StreamPartial | None:
    """Upload a growing `<segment>.partial` under a new key, then delete the shorter copies.

    The new copy is durable before an older one goes, so a reader always finds one. Returns
    None (and stores nothing) when the full segment is already archived or the file holds
    no WAL yet (pg_receivewal zero-fills it first). admitted: admit_stream_partial let this
    repository take it already."""
    import zstandard

    data = _read_partial(path)
    segment = path.name.removesuffix(".partial")
    if streamed_length(data) == 0:
        return None
    if not admitted:
        admit_stream_partial([storage], source, path)
    if is_archived(storage, source, segment):
        return None
    digest = hashlib.sha256(data).hexdigest()
    length = streamed_length(data)
    existing = stream_partials(storage, source, segment)
    same = next((p for p in existing if p.plain_sha256 == digest), None)
    if same is not None:
        return same
    compressed = zstandard.ZstdCompressor(level=level, write_checksum=True).compress(data)
    sink = io.BytesIO()
    encryptor.encrypt(io.BytesIO(compressed), sink)
    key = layout.stream_partial_key(source, segment, length, digest, encryptor.suffix)
    storage.write(key, [sink.getvalue()])
    for older in existing:
        # a longer copy can only come from another streamer that is further ahead: keep it
        if older.streamed_length <= length:
            try:
                storage.delete(older.key)
            except PermanentError as exc:
                # a writer credential may not delete: the longest copy is served anyway
                log.warning("cannot remove the older streamed partial %s: %s", older.key, exc)
                break
    log.info("uploaded %s (%d bytes of WAL)", path.name, length)
    return StreamPartial(key, segment, length, digest)


def prune_stream_partials(storage: Storage, source: str) -> list[str]:
    """Delete the streamed partials of segments now archived in full; returns their keys."""
    removed = []
    archived: dict[str, bool] = {}
    for partial in stream_partials(storage, source):
        if partial.segment not in archived:
            archived[partial.segment] = is_archived(storage, source, partial.segment)
        if archived[partial.segment]:
            storage.delete(partial.key)
            removed.append(partial.key)
    return removed


def history_names(storage: Storage, source: str) -> list[str]:
    """Timeline history files in the archive."""
    names = set()
    for info in storage.list(f"{source}/wal/history/"):
        parsed = layout.parse_wal_key(info.key)
        if parsed is not None and wal.is_history_name(parsed[0]):
            names.add(parsed[0])
    return sorted(names)


def archived_segments(
    storage: Storage, source: str, segment_size: int = wal.DEFAULT_SEGMENT_SIZE
) -> dict[int, set[int]]:
    """Segment numbers in the archive, per timeline (segments only; not .partial files).
    The numbers count segments of the cluster's segment_size: how many segments a log id
    holds depends on it, so names are parsed with it (a name no such segment can have is
    left out)."""
    found: dict[int, set[int]] = {}
    for archived in archived_files(storage, source):
        if wal.is_segment_name(archived.name):
            try:
                segment = wal.Segment.parse(archived.name, segment_size)
            except ValueError:
                continue
            found.setdefault(segment.timeline, set()).add(segment.number)
    return found


def continuity_problems(
    archived: dict[int, set[int]],
    timeline: int,
    first: int,
    needed_until: int,
    segment_size: int = wal.DEFAULT_SEGMENT_SIZE,
) -> list[str]:
    """What keeps recovery from a base backup from replaying its WAL: a segment missing up to
    needed_until (the backup's end), then the first gap before the newest archived segment."""
    from lifeboat.wal.continuity import continuity, single_timeline

    found = continuity(archived, single_timeline(timeline), first, needed_until)
    if found.missing is None:
        return []
    if not found.consistent:
        return [
            f"WAL segment {found.missing.name(segment_size)}, needed to make the backup "
            "consistent, is missing"
        ]
    assert found.reachable is not None
    return [
        f"WAL gap: segment {found.missing.name(segment_size)} is missing, so recovery from "
        f"this backup stops at {found.reachable.name(segment_size)}"
    ]


def check_archive(
    storage: Storage, source: str, decryptor_for: Callable[[str], Decryptor]
) -> tuple[int, list[str]]:
    """Decrypt and decompress every archived WAL file and check it against the sha256 its
    name carries; (files checked, problems)."""
    checked, problems = 0, []
    for archived in archived_files(storage, source):
        checked += 1
        try:
            read_verified(storage, archived.key, archived.plain_sha256, decryptor_for)
        except LifeboatError as exc:
            problems.append(str(exc))
    return checked, problems
