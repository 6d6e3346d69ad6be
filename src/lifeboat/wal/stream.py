"""lifeboat wal-stream: pg_receivewal into the repository, for a recovery point near zero.

pg_receivewal writes the WAL it receives into a staging folder: completed segments and
history files, and the segment being filled as `<segment>.partial`. This module supervises
it (restarting it with backoff when the connection drops) and moves what it writes into the
repository: completed files through `archive.push` (the same objects archive_command
stores, so both may push a segment), the growing partial under its own replaceable keys
(`archive.push_stream_partial`), which `wal-fetch` serves when the archive lacks the
segment."""

from __future__ import annotations

import contextlib
import logging
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lifeboat.context import Context
from lifeboat.errors import LifeboatError, UsageError
from lifeboat.pipeline.crypto import Encryptor
from lifeboat.postgres import wal
from lifeboat.postgres.binaries import PgTools, find_tools
from lifeboat.postgres.conn import PgEndpoint
from lifeboat.storage.base import PermanentError, Storage
from lifeboat.util.fs import state_home
from lifeboat.util.proc import StderrCollector, stop_on_signals
from lifeboat.util.singleton import held_or_none
from lifeboat.wal.archive import (
    WalRefusedError,
    admit_stream_partial,
    prune_stream_partials,
    push,
    push_stream_partial,
    storage_list,
    stream_partials,
)
from lifeboat.wal.cluster_guard import refuse_other_cluster, server_identity

log = logging.getLogger(__name__)

DEFAULT_PARTIAL_INTERVAL = 5.0
POLL_SECONDS = 0.2
MAX_BACKOFF_SECONDS = 60.0
# pg_receivewal running this long counts as a good start: the next failure retries at once
STABLE_SECONDS = 60.0
STOP_TIMEOUT = 30.0
LOCK_FILE = ".lifeboat-wal-stream.lock"

_SLOT = re.compile(r"^[a-z0-9_]{1,63}$")


def default_name(source: str) -> str:
    """`lifeboat_<source>` as a replication slot name and a bare synchronous_standby_names
    entry allow it: lower-case letters, digits and _, at most 63 characters."""
    return ("lifeboat_" + re.sub(r"[^a-z0-9_]", "_", source.lower()))[:63]


def check_slot_name(name: str) -> str:
    if not _SLOT.match(name):
        raise UsageError(
            f"invalid replication slot name {name!r}: lower-case letters, digits and _ (max 63)"
        )
    return name


def default_directory(source: str) -> Path:
    return state_home() / "stream" / source


@dataclass(frozen=True)
class StreamOptions:
    slot: str
    application_name: str
    directory: Path
    create_slot: bool = True
    synchronous: bool = False
    partial_interval: float = DEFAULT_PARTIAL_INTERVAL


@dataclass
class StreamSummary:
    source: str
    slot: str
    application_name: str
    directory: str
    synchronous: bool
    uploaded: list[str] = field(default_factory=list)
    partial_uploads: int = 0
    restarts: int = 0
    left_in_staging: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "slot": self.slot,
            "application_name": self.application_name,
            "directory": self.directory,
            "synchronous": self.synchronous,
            "uploaded": self.uploaded,
            "partial_uploads": self.partial_uploads,
            "restarts": self.restarts,
            "left_in_staging": self.left_in_staging,
        }


def standby_names(setting: str) -> set[str]:
    """The names listed in synchronous_standby_names, lower-cased as PostgreSQL compares them
    (FIRST/ANY and the counts are syntax, not names)."""
    names = set()
    for quoted, bare in re.findall(r'"((?:[^"]|"")*)"|([A-Za-z0-9_$*]+)', setting):
        if quoted:
            names.add(quoted.replace('""', '"').lower())
        elif bare and not bare.isdigit() and bare.upper() not in ("FIRST", "ANY"):
            names.add(bare.lower())
    return names


def synchronous_hints(options: StreamOptions, setting: str) -> list[str]:
    """What to tell the operator about synchronous replication with this streamer."""
    names = standby_names(setting)
    listed = options.application_name.lower() in names or "*" in names
    if options.synchronous and not listed:
        return [
            "commits do not wait for this stream yet: for zero data loss set "
            f"synchronous_standby_names = '{options.application_name}' on the primary "
            "(commits then stop while the stream is down; see docs/wal-stream.md)"
        ]
    if not options.synchronous and listed:
        return [
            f"synchronous_standby_names lists {options.application_name!r} but the stream is "
            "not --synchronous: pg_receivewal then confirms WAL only when a segment is full, "
            "so every commit waits that long"
        ]
    return []


class StagingUploader:
    """Moves what pg_receivewal wrote in the staging folder into the repository.

    Completed segments and history files are pushed to the WAL archive, then deleted
    locally (their streamed partials in the repository with them). `.partial` files are
    uploaded when they changed, at most every partial_interval seconds unless forced."""

    def __init__(
        self,
        storages: Storage | Sequence[Storage],
        source: str,
        directory: Path,
        encryptor: Encryptor,
        level: int,
        partial_interval: float,
    ) -> None:
        # every repository of the source gets the WAL and the partials
        self.storages = storage_list(storages)
        self.source = source
        self.directory = directory
        self.encryptor = encryptor
        self.level = level
        self.partial_interval = partial_interval
        self.uploaded: list[str] = []
        self.partial_uploads = 0
        self._partial_state: dict[str, tuple[int, int]] = {}
        self._next_partial_upload = time.monotonic() + partial_interval
        # files the repositories refused for good (a conflict, another cluster's WAL)
        self._refused: set[str] = set()

    def _files(self) -> list[Path]:
        try:
            return sorted(p for p in self.directory.iterdir() if p.is_file())
        except OSError as exc:
            raise LifeboatError(f"cannot list {self.directory}: {exc.strerror}") from None

    def completed(self) -> list[Path]:
        return [
            p for p in self._files() if wal.is_segment_name(p.name) or wal.is_history_name(p.name)
        ]

    def partials(self) -> list[Path]:
        return [p for p in self._files() if wal.is_partial_name(p.name)]

    def _drop_partials(self, segment: str) -> None:
        """The segment is archived: its streamed partials are of no more use. A credential
        that may create but not delete (the writer policy) leaves them; wal-fetch prefers
        the archived segment anyway, and pruning with a stronger credential removes them."""
        for storage in self.storages:
            for partial in stream_partials(storage, self.source, segment):
                try:
                    storage.delete(partial.key)
                except PermanentError as exc:
                    log.warning("cannot remove the streamed partial %s: %s", partial.key, exc)
                    break

    def upload_completed(self) -> bool:
        """Push every completed file; False when one could not be (it stays for a retry)."""
        ok = True
        for path in self.completed():
            if path.name in self._refused:
                ok = False
                continue
            try:
                result = push(self.storages, self.source, path, self.encryptor, self.level)
                if wal.is_segment_name(path.name):
                    self._drop_partials(path.name)
                path.unlink()
            except WalRefusedError as exc:
                ok = self._refuse(path, exc)
                continue
            except (LifeboatError, OSError) as exc:
                log.warning("cannot upload %s yet, will retry: %s", path.name, exc)
                ok = False
                continue
            self.uploaded.append(path.name)
            self._partial_state.pop(path.name + ".partial", None)
            log.info(
                "%s %s",
                "already archived:" if result.already_archived else "streamed and archived",
                path.name,
            )
        return ok

    def _refuse(self, path: Path, error: WalRefusedError) -> bool:
        """Never retried, logged once: the local copy stays for an operator to look at.
        False, for the caller's result."""
        self._refused.add(path.name)
        log.error("%s (kept in %s)", error, self.directory)
        return False

    def upload_partials(self, force: bool = False) -> bool:
        """Upload the .partial files that changed since their last upload; False on failure."""
        now = time.monotonic()
        if not force and now < self._next_partial_upload:
            return True
        self._next_partial_upload = now + self.partial_interval
        ok = True
        for path in self.partials():
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue  # completed (renamed) meanwhile
            # taken before reading, so a write during the upload shows as a change next time
            signature = (stat.st_mtime_ns, stat.st_size)
            if path.name in self._refused:
                ok = False  # still reported
                continue
            if self._partial_state.get(path.name) == signature:
                continue
            try:
                admitted = admit_stream_partial(self.storages, self.source, path)
            except WalRefusedError as exc:
                ok = self._refuse(path, exc)
                continue
            except (LifeboatError, OSError) as exc:
                if path.exists():
                    log.warning("cannot upload %s yet, will retry: %s", path.name, exc)
                    ok = False
                continue
            uploaded = len(admitted) == len(self.storages)
            ok = ok and uploaded
            for storage in admitted:
                try:
                    stored = push_stream_partial(
                        storage, self.source, path, self.encryptor, self.level, admitted=True
                    )
                except (LifeboatError, OSError) as exc:
                    if path.exists():
                        log.warning("cannot upload %s yet, will retry: %s", path.name, exc)
                        uploaded = ok = False
                    continue
                if stored is not None:
                    self.partial_uploads += 1
            if uploaded:
                self._partial_state[path.name] = signature
        return ok

    def sweep(self, force_partials: bool = False) -> bool:
        archived_before = len(self.uploaded)
        completed = self.upload_completed()
        if len(self.uploaded) > archived_before:
            # partials of segments archive_command stored while no stream completed them
            self.prune()
        partials = self.upload_partials(force_partials)
        return completed and partials

    def prune(self) -> None:
        for storage in self.storages:
            try:
                removed = prune_stream_partials(storage, self.source)
            except LifeboatError as exc:
                log.warning("cannot prune streamed partials in %s: %s", storage.url, exc)
                continue
            for key in removed:
                log.info("removed %s: its segment is archived", key)

    def partial_is_uploaded(self, path: Path) -> bool:
        """Whether the repository holds this .partial as it is now (or needs it no more)."""
        return self._partial_state.get(path.name) == _signature(path)


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_mtime_ns, stat.st_size


def _is_problem(line: str) -> bool:
    return "error:" in line or "warning:" in line or "fatal:" in line.lower()


def _log_receiver_line(line: str) -> None:
    """pg_receivewal's stderr, logged line by line: its problems as warnings."""
    if _is_problem(line):
        log.warning("%s", line)
    else:
        log.debug("%s", line)


def _last_problem(stderr: StderrCollector) -> str:
    return next((line for line in reversed(stderr.lines()) if _is_problem(line)), "")


def _parent_death_signal() -> Callable[[], None] | None:
    """A function for the child that asks Linux for SIGINT when Lifeboat dies, so that no
    orphaned pg_receivewal keeps the slot busy. Resolved here, not after the fork."""
    if sys.platform != "linux":
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def ask() -> None:
        prctl(pr_set_pdeathsig, signal.SIGINT)

    return ask


class Receiver:
    """One pg_receivewal run into the staging folder."""

    def __init__(self, tools: PgTools, endpoint: PgEndpoint, options: StreamOptions) -> None:
        self.tools = tools
        self.endpoint = endpoint
        self.options = options

    def _conninfo(self) -> str:
        from psycopg.conninfo import make_conninfo

        # application_name is what synchronous_standby_names matches
        return make_conninfo(
            self.endpoint.conninfo(), application_name=self.options.application_name
        )

    def _base(self) -> list[str]:
        return [
            self.tools.path("pg_receivewal"),
            "--dbname",
            self._conninfo(),
            "--slot",
            self.options.slot,
            "--no-password",
        ]

    def create_slot(self) -> None:
        done = subprocess.run(
            [*self._base(), "--create-slot", "--if-not-exists"],
            capture_output=True,
            text=True,
            env=self.endpoint.env(),
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            raise LifeboatError(
                f"cannot create replication slot {self.options.slot}: "
                f"{lines[-1] if lines else f'exit {done.returncode}'}"
            )

    def start(self) -> tuple[subprocess.Popen[bytes], StderrCollector]:
        command = [
            *self._base(),
            "--directory",
            str(self.options.directory),
            # exit when the connection drops: the partial is uploaded before a retry
            "--no-loop",
            "--verbose",
        ]
        if self.options.synchronous:
            command.append("--synchronous")
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=self.endpoint.env(),
            # its own session: a Ctrl-C reaches Lifeboat, which stops it after uploading
            start_new_session=True,
            preexec_fn=_parent_death_signal(),
        )
        assert process.stderr is not None
        stderr = StderrCollector(
            process.stderr, on_line=_log_receiver_line, name="pg_receivewal stderr"
        )
        stderr.start()
        return process, stderr


@contextlib.contextmanager
def _staging_lock(directory: Path) -> Iterator[None]:
    path = directory / LOCK_FILE
    with held_or_none(path) as held:
        if not held:
            raise LifeboatError(f"another `lifeboat wal-stream` uses {directory} (it holds {path})")
        yield


def prepare_directory(directory: Path) -> Path:
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        # plaintext WAL lands here until it is uploaded: only this user may read it
        directory.chmod(0o700)
    except OSError as exc:
        raise LifeboatError(f"cannot prepare {directory}: {exc.strerror}") from None
    return directory


def stream(
    ctx: Context,
    source_name: str,
    options: StreamOptions,
    stop: threading.Event | None = None,
) -> StreamSummary:
    """Run pg_receivewal until SIGTERM/SIGINT (or stop is set), keeping the repository fed.

    The first connection must succeed (a wrong DSN fails at once); later disconnections,
    such as a lost primary, are retried with backoff after the partial is uploaded."""
    from lifeboat.postgres import logical

    source = ctx.postgres_source(source_name, "WAL streaming")
    repos = ctx.repositories_for(source_name)
    for repo in repos:
        repo.ensure_initialised()
    encryptor = ctx.encryptor()
    endpoint = PgEndpoint.from_dsn(source.dsn, source.password_file)
    with endpoint.connect(autocommit=True) as conn:
        server = logical.server_info(conn)
        major = logical.server_major(server)
        # every segment of another cluster would be refused: say so once, at the start
        refuse_other_cluster(
            repos,
            source_name,
            server_identity(conn, server),
            f"the server at {endpoint.describe()}",
        )
        row = conn.execute("SELECT current_setting('synchronous_standby_names')").fetchone()
    for hint in synchronous_hints(options, str(row[0]) if row else ""):
        log.warning("%s", hint)
    tools = find_tools(major, source.pg_bin_dir, tools=("pg_receivewal",))
    directory = prepare_directory(options.directory)
    receiver = Receiver(tools, endpoint, options)
    uploader = StagingUploader(
        [repo.storage for repo in repos],
        source_name,
        directory,
        encryptor,
        ctx.config.compression.level,
        options.partial_interval,
    )
    summary = StreamSummary(
        source_name,
        options.slot,
        options.application_name,
        str(directory),
        options.synchronous,
    )
    stop = stop or threading.Event()
    with _staging_lock(directory), stop_on_signals(stop, "uploading, then stopping"):
        # leftovers of an earlier run go first, and partials of segments archived meanwhile
        uploader.sweep(force_partials=True)
        uploader.prune()
        _supervise(receiver, uploader, options, stop, summary)
        uploader.sweep(force_partials=True)
    summary.uploaded = uploader.uploaded
    summary.partial_uploads = uploader.partial_uploads
    summary.left_in_staging = [p.name for p in uploader.completed()] + [
        p.name for p in uploader.partials() if not uploader.partial_is_uploaded(p)
    ]
    if summary.left_in_staging:
        raise LifeboatError(
            f"stopped with WAL not yet in every repository ({', '.join(r.name for r in repos)}): "
            f"{', '.join(summary.left_in_staging)} in {directory}; "
            "run `lifeboat wal-stream` again to upload it"
        )
    return summary


def _supervise(
    receiver: Receiver,
    uploader: StagingUploader,
    options: StreamOptions,
    stop: threading.Event,
    summary: StreamSummary,
) -> None:
    backoff = 1.0
    first = True
    while not stop.is_set():
        if not first:
            summary.restarts += 1
        first = False
        if options.create_slot:
            try:
                receiver.create_slot()
            except LifeboatError as exc:
                log.warning("%s", exc)
        process, stderr = receiver.start()
        started = time.monotonic()
        log.info(
            "streaming %s into %s (slot %s, application_name %s%s)",
            receiver.endpoint.describe(),
            options.directory,
            options.slot,
            options.application_name,
            ", synchronous" if options.synchronous else "",
        )
        while process.poll() is None and not stop.is_set():
            uploader.sweep()
            stop.wait(POLL_SECONDS)
        if process.poll() is None:
            _stop_receiver(process)
            stderr.join(5)
            return
        stderr.join(5)
        problem = _last_problem(stderr)
        log.warning(
            "pg_receivewal exited (%s)%s: uploading what it received",
            process.returncode,
            f": {problem}" if problem else "",
        )
        # the primary may be gone for good: what the partial holds exists nowhere else
        uploader.sweep(force_partials=True)
        if time.monotonic() - started >= STABLE_SECONDS:
            backoff = 1.0
        log.info("restarting pg_receivewal in %.0f s", backoff)
        stop.wait(backoff)
        backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)


def _stop_receiver(process: subprocess.Popen[bytes]) -> None:
    """SIGINT, as pg_receivewal expects: it flushes and closes its partial, then exits."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        log.warning("pg_receivewal did not stop within %.0f s: killing it", STOP_TIMEOUT)
        process.kill()
        process.wait()
