"""Repository locks: at most one backup, copy or prune of a source in a repository at once.

Two protocols, both stored in the repository so that they work on any backend, and each
checks for the other's files, so that they never both grant the lock:

- **Exclusive create** (`locks/<name>.lock`), where the store has it and honours it: the
  first run to create the file holds the lock; the store refuses everyone else. Some
  S3-compatible stores and emulators accept the condition and overwrite anyway, so each
  run first checks that a second create of a probe object is refused.
- **Write, wait, list** (restic's protocol, for stores without it): each contender writes
  its own `locks/<name>.lock.contender-<time>-<token>`, waits a moment and lists them.
  Alone, it holds the lock; behind an earlier name (or a held `<name>.lock`) it withdraws
  and fails; ahead of later names it waits for those to withdraw. A contender only ever
  wins when it saw no other live file after writing its own, so two never both win.

A holder is stale when it is on this host and its process is gone (taken over at once), or
on another host and started `stale_after` ago or more. Taking over a stale `<name>.lock`
goes through an exclusively created marker named after it, so that of two runs that found
the same stale lock only one replaces it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import socket
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lifeboat.errors import LockedError
from lifeboat.repo import layout
from lifeboat.storage.base import AlreadyExists, NotFound, Storage
from lifeboat.storage.capabilities import ExclusiveCreate, exclusive_create
from lifeboat.util.proc import pid_alive

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(hours=24)
# write, wait, list: how long a contender lets the store settle before listing (restic
# waits as long), and how long the first in line waits for later ones to withdraw
SETTLE_SECONDS = 0.2
WITHDRAW_SECONDS = 10.0
POLL_SECONDS = 0.05
# times the lock may change hands (released, taken over) while one run tries to take it
ATTEMPTS = 5
CONTENDER = ".contender-"
_CONTENDER_NAME = re.compile(re.escape(CONTENDER) + r"(\d{8}T\d{6}\.\d{6}Z)-([0-9a-f]{16})$")


# --- who holds a lock --------------------------------------------------------------------


@dataclass(frozen=True)
class Holder:
    """The content of a lock file. `identity` tells two holders apart: the token, or for a
    file that cannot be read, a digest of its bytes."""

    identity: str
    host: str | None = None
    pid: int | None = None
    started_at: str | None = None
    purpose: str | None = None
    readable: bool = True

    @classmethod
    def new(cls, purpose: str) -> Holder:
        return cls(
            identity=secrets.token_hex(8),
            host=socket.gethostname(),
            pid=os.getpid(),
            started_at=datetime.now(UTC).isoformat(),
            purpose=purpose,
        )

    @classmethod
    def parse(cls, data: bytes) -> Holder:
        try:
            fields = json.loads(data)
            holder = cls(
                identity=str(fields["token"]),
                host=str(fields["host"]),
                pid=int(fields["pid"]),
                started_at=str(fields["started_at"]),
                purpose=str(fields.get("purpose") or "another run"),
            )
            datetime.fromisoformat(str(holder.started_at))
        except (ValueError, KeyError, TypeError):
            return cls(identity="sha256-" + hashlib.sha256(data).hexdigest()[:16], readable=False)
        return holder

    def encode(self) -> bytes:
        return json.dumps(
            {
                "host": self.host,
                "pid": self.pid,
                "started_at": self.started_at,
                "purpose": self.purpose,
                "token": self.identity,
            }
        ).encode()

    def describe(self) -> str:
        return f"{self.purpose} (pid {self.pid} on {self.host} since {self.started_at})"

    def is_stale(self, stale_after: timedelta) -> bool:
        if not self.readable or self.started_at is None or self.pid is None:
            return True
        if self.host == socket.gethostname():
            return not pid_alive(self.pid)
        started = datetime.fromisoformat(self.started_at)
        if started.tzinfo is None:
            started = started.replace(tzinfo=UTC)
        return datetime.now(UTC) - started >= stale_after


def _read(storage: Storage, key: str) -> Holder | None:
    """The holder recorded under key, or None once the file is gone."""
    try:
        with storage.read(key) as stream:
            return Holder.parse(stream.read())
    except NotFound:
        return None


def _locked(name: str, holder: Holder) -> LockedError:
    return LockedError(f"{name} is locked by {holder.describe()}")


# --- the lock ----------------------------------------------------------------------------


@contextmanager
def repository_lock(
    storage: Storage, name: str, purpose: str, stale_after: timedelta = STALE_AFTER
) -> Iterator[None]:
    """Hold the lock `name` for the block; LockedError (naming the holder) when another
    run holds it."""
    me = Holder.new(purpose)
    creator = _reliable_exclusive_create(storage)
    if creator is not None:
        _acquire_exclusively(storage, creator, name, me, stale_after)
        try:
            yield
        finally:
            _release_exclusive(storage, name, me)
    else:
        mine = _acquire_by_listing(storage, name, me, stale_after)
        try:
            yield
        finally:
            storage.delete(mine)


# --- exclusive create ----------------------------------------------------------------------


def _acquire_exclusively(
    storage: Storage, creator: ExclusiveCreate, name: str, me: Holder, stale_after: timedelta
) -> None:
    key = layout.lock_key(name)
    for _ in range(ATTEMPTS):
        try:
            creator.create_exclusive(key, me.encode())
        except AlreadyExists:
            pass
        else:
            _keep_if_alone(storage, name, me, stale_after)
            return
        holder = _read(storage, key)
        if holder is None:
            continue  # released meanwhile
        if not holder.is_stale(stale_after):
            raise _locked(name, holder)
        if _take_over(storage, creator, name, holder, me, stale_after):
            log.warning("%s: took over the stale lock of %s", name, holder.describe())
            _keep_if_alone(storage, name, me, stale_after)
            return
    raise LockedError(f"{name}: the lock kept changing hands while this run tried to take it")


def _keep_if_alone(storage: Storage, name: str, me: Holder, stale_after: timedelta) -> None:
    """After creating `<name>.lock`: a contender of the listing protocol (a run that found
    this store without a reliable exclusive create) withdraws when it sees the file; one
    that does not has won before this run, which then gives the lock back."""
    try:
        deadline = time.monotonic() + WITHDRAW_SECONDS
        while others := _contenders(storage, name, stale_after):
            if time.monotonic() > deadline:
                raise _locked(name, others[0][1])
            time.sleep(POLL_SECONDS)
    except BaseException:
        _release_exclusive(storage, name, me)
        raise


def _take_over(
    storage: Storage,
    creator: ExclusiveCreate,
    name: str,
    stale: Holder,
    me: Holder,
    stale_after: timedelta,
) -> bool:
    """Replace the stale lock with ours. Only the run that creates the marker named after
    the stale holder deletes it, so a run that still saw the stale lock cannot delete the
    new one. A taker that died midway leaves its marker: the next one goes a rung up.
    True once ours; False when the lock changed meanwhile (look again); LockedError when
    another run took it."""
    key = layout.lock_key(name)
    markers: list[str] = []  # the dead takers' rungs, then ours
    for rung in range(1, ATTEMPTS + 1):
        marker = f"{key}.takeover-{stale.identity}-{rung}"
        markers.append(marker)
        try:
            creator.create_exclusive(marker, me.encode())
            break
        except AlreadyExists:
            taker = _read(storage, marker)
            if taker is None:
                return False  # that takeover is over: look at the lock again
            if not taker.is_stale(stale_after):
                raise LockedError(
                    f"{name} is being taken over from a stale lock by {taker.describe()}"
                ) from None
    else:
        raise LockedError(
            f"{name}: {ATTEMPTS} runs died taking over its stale lock: remove {key} and "
            f"{key}.takeover-* from the repository"
        )
    try:
        current = _read(storage, key)
        if current is None or current.identity != stale.identity:
            return False
        storage.delete(key)
        try:
            creator.create_exclusive(key, me.encode())
        except AlreadyExists:
            holder = _read(storage, key)
            if holder is None:
                return False
            raise _locked(name, holder) from None
        return True
    finally:
        # Only the holder of the highest rung gets here, so no other taker is between its
        # marker and the lock's replacement: the markers guard nothing any more. (A run
        # that met a live taker above has removed nothing.)
        for marker in markers:
            storage.delete(marker)


def _release_exclusive(storage: Storage, name: str, me: Holder) -> None:
    key = layout.lock_key(name)
    holder = _read(storage, key)
    if holder is not None and holder.identity == me.identity:
        storage.delete(key)


# stores found to honour (or ignore) exclusive create, so that each run probes once
_probed: weakref.WeakKeyDictionary[Storage, bool] = weakref.WeakKeyDictionary()


def _reliable_exclusive_create(storage: Storage) -> ExclusiveCreate | None:
    """The store's exclusive create, if it has one that refuses a second create; None
    otherwise (the caller falls back to write, wait, list)."""
    creator = exclusive_create(storage)
    if creator is None:
        return None
    if storage not in _probed:
        _probed[storage] = _refuses_second_create(storage, creator)
        if not _probed[storage]:
            log.warning(
                "%s accepts a second exclusive create of the same key: locking by "
                "listing lock files instead",
                storage.url,
            )
    return creator if _probed[storage] else None


def _refuses_second_create(storage: Storage, creator: ExclusiveCreate) -> bool:
    probe = f"locks/probe-{secrets.token_hex(8)}"
    creator.create_exclusive(probe, b"first")
    try:
        creator.create_exclusive(probe, b"second")
    except AlreadyExists:
        return True
    else:
        return False
    finally:
        storage.delete(probe)


# --- write, wait, list ---------------------------------------------------------------------


def _contender_key(name: str, me: Holder) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"{layout.lock_key(name)}{CONTENDER}{stamp}-{me.identity}"


def _contenders(storage: Storage, name: str, stale_after: timedelta) -> list[tuple[str, Holder]]:
    """The live contenders' files of the lock, in their order (time, then token); stale
    ones are removed on the way (each is its own holder's file: nobody else's to lose)."""
    prefix = layout.lock_key(name) + CONTENDER
    found = []
    for info in storage.list(prefix):
        if not _CONTENDER_NAME.search(info.key):
            continue  # another source's lock whose name starts like this one's
        holder = _read(storage, info.key)
        if holder is None:
            continue  # withdrawn meanwhile
        if holder.is_stale(stale_after):
            log.warning("%s: removing the stale lock file of %s", name, holder.describe())
            storage.delete(info.key)
            continue
        found.append((info.key, holder))
    return sorted(found, key=lambda item: item[0])


def _live_lock(storage: Storage, name: str, stale_after: timedelta) -> Holder | None:
    holder = _read(storage, layout.lock_key(name))
    return holder if holder is not None and not holder.is_stale(stale_after) else None


def _acquire_by_listing(storage: Storage, name: str, me: Holder, stale_after: timedelta) -> str:
    """The key of this run's contender file, once it holds the lock."""
    mine = _contender_key(name, me)
    storage.write(mine, [me.encode()])
    try:
        time.sleep(SETTLE_SECONDS)  # for stores whose listings lag behind their writes
        deadline = time.monotonic() + WITHDRAW_SECONDS
        while True:
            held = _live_lock(storage, name, stale_after)
            if held is not None:
                raise _locked(name, held)
            others = [(key, h) for key, h in _contenders(storage, name, stale_after) if key != mine]
            if not others:
                return mine
            first_key, first = others[0]
            if first_key < mine or time.monotonic() > deadline:
                raise _locked(name, first)
            time.sleep(POLL_SECONDS)  # first in line: the later ones withdraw on seeing us
    except BaseException:
        storage.delete(mine)
        raise
