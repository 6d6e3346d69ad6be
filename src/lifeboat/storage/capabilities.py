"""What a storage backend may do beyond the five operations of storage/base.py.

Each extra is a declared protocol, not duck typing: a backend that has one names it among
its bases (its methods are abstract, so a backend missing one of them cannot even be
built), a backend that lacks one does not, and callers ask for it with the lookup
functions at the end, which see through wrappers.
A lookup that answers None is the plain statement that the store cannot do it; callers
then do without (no legal hold is set, no object is re-tagged), never guess.

Which backend has which (the contract suite, tests/contract/, checks each declaration):

    extra            memory  local  S3   Azure  GCS
    ExclusiveCreate  yes     yes    yes  yes    yes
    UploadJanitor    -       yes    yes  yes    -    (memory writes are atomic; a GCS
                                                      resumable session cannot be listed)
    ObjectLocking    -       -      yes  -      -    (in effect where the bucket has
    LegalHolds       -       -      yes  -      -     Object Lock: see object_locking)
    Tiering          -       -      yes  -      -
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from datetime import datetime
from typing import NamedTuple, Protocol, runtime_checkable

from lifeboat.storage.base import NotFound, ObjectInfo, Storage


@runtime_checkable
class ExclusiveCreate(Protocol):
    @abstractmethod
    def create_exclusive(self, key: str, data: bytes) -> ObjectInfo:
        """Store data under key only if no object is there yet, atomically: of several
        callers racing for one key exactly one succeeds, the others get AlreadyExists and
        the first content stays. Readers only ever see the complete object. A key that
        already holds exactly `data` counts as created: the first attempt of a retried
        request may have made it (callers that must tell apart put something unique in
        data)."""
        ...


def holding(storage: Storage, key: str, data: bytes) -> ObjectInfo | None:
    """For create_exclusive after the store refused: the object under key if it holds
    exactly data (made by an earlier attempt of the same request), else None."""
    try:
        with storage.read(key) as stream:
            if stream.read(len(data) + 1) != data:
                return None
        return storage.stat(key)
    except NotFound:
        return None


class PendingUpload(NamedTuple):
    """An upload a writer began and never finished: not an object, but it takes space."""

    key: str  # the key it was writing
    started: datetime  # when it was last written to (or started, where that is all known)
    handle: str  # what the backend needs to remove it: a temporary name, an upload id
    size: int | None = None  # bytes it holds, where the backend says


@runtime_checkable
class UploadJanitor(Protocol):
    """For backends where a killed writer leaves a pending upload behind (a temporary file,
    an unfinished multipart upload, uncommitted blocks) that nothing else would remove."""

    @abstractmethod
    def pending_uploads(self, prefix: str) -> Iterator[PendingUpload]:
        """The pending uploads of keys starting with prefix."""
        ...

    @abstractmethod
    def remove_pending_upload(self, upload: PendingUpload) -> None:
        """Remove one, if it is still pending; one already gone is fine. A writer still
        using it fails instead of completing: callers leave young ones alone."""
        ...


class LockState(NamedTuple):
    """The write-once protection of an object's current version."""

    retain_until: datetime | None  # no version of it can be deleted before then
    legal_hold: bool  # no version of it can be deleted while this is on


@runtime_checkable
class ObjectLocking(Protocol):
    """For stores that can keep an object from being deleted, even by a credential allowed
    to delete (S3 Object Lock): what protects an object now."""

    @abstractmethod
    def object_lock_state(self, key: str) -> LockState:
        """Raises NotFound for a missing key."""
        ...


@runtime_checkable
class LegalHolds(Protocol):
    """For stores with a legal hold: a protection without end date, until released."""

    @abstractmethod
    def set_legal_hold(self, key: str, on: bool) -> None:
        """Put (on) or release (off) the legal hold of key; a missing key raises NotFound
        (S3 answers 404; moto, the emulator, answers 500 instead)."""
        ...


@runtime_checkable
class Tiering(Protocol):
    """For stores that tag objects with their backup's retention tier (daily, weekly,
    monthly, yearly), so that the store's own lifecycle rules can move or expire them."""

    @abstractmethod
    def tier(self, key: str) -> str | None:
        """The tier key is tagged with; None when untagged."""
        ...

    @abstractmethod
    def set_tier(self, key: str, tier: str) -> None: ...


@runtime_checkable
class Wrapper(Protocol):
    """A storage that adds behaviour around another one (retries, dry run, metrics). The
    lookups below see through it, so a wrapper need not forward the extras itself. They
    take the outermost layer that has an extra: a wrapper whose behaviour must cover an
    extra too (a dry run sets no legal hold) implements that extra itself, or the callers
    reach the wrapped store's directly."""

    def unwrap(self) -> Storage: ...


def _layers(storage: Storage) -> Iterator[object]:
    """The storage, then each storage it wraps, innermost last."""
    current: object = storage
    while True:
        yield current
        if not isinstance(current, Wrapper):
            return
        current = current.unwrap()


# One lookup per extra rather than one generic lookup(storage, Protocol): mypy does not
# accept a protocol class where a type[T] is expected.


def exclusive_create(storage: Storage) -> ExclusiveCreate | None:
    """The storage's exclusive create, or that of a storage it wraps; None without one."""
    return next((s for s in _layers(storage) if isinstance(s, ExclusiveCreate)), None)


def upload_janitor(storage: Storage) -> UploadJanitor | None:
    """The storage's pending-upload cleanup, or that of a storage it wraps; None when its
    writes can leave nothing behind."""
    return next((s for s in _layers(storage) if isinstance(s, UploadJanitor)), None)


def object_locking(storage: Storage) -> ObjectLocking | None:
    """The storage's Object Lock state, or that of a storage it wraps; None where the store
    has no Object Lock, or this bucket has it switched off (capabilities.object_lock)."""
    found = next((s for s in _layers(storage) if isinstance(s, ObjectLocking)), None)
    return found if found is not None and storage.capabilities.object_lock else None


def legal_holds(storage: Storage) -> LegalHolds | None:
    """The storage's legal holds, or those of a storage it wraps; None where the store has
    none, or this bucket has no Object Lock (which legal holds need)."""
    found = next((s for s in _layers(storage) if isinstance(s, LegalHolds)), None)
    return found if found is not None and storage.capabilities.object_lock else None


def tiering(storage: Storage) -> Tiering | None:
    """The storage's retention-tier tags, or those of a storage it wraps; None without."""
    return next((s for s in _layers(storage) if isinstance(s, Tiering)), None)
