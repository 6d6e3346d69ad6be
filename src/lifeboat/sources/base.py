"""What a kind of source offers: the one shape every backup source has.

A source kind (a PostgreSQL database dumped with pg_dump, a PostgreSQL cluster copied with
pg_basebackup; later a Redis instance, a folder of files, an SQLite database) backs up one
configured source into its repositories, restores one of its backups, says what is
particular about a backup of its kind, and checks before a backup that one can work. The
commands go through this protocol, so a new kind is one more implementation of it (under
sources/<system>/) rather than one more branch in each command.

An implementation is built with the options of one run (for a physical backup: how long to
wait for WAL, incremental or not), so the methods take only what every kind has: the run's
context and the source's name. A restore's options differ too much between kinds to share:
each kind names its request type (the protocol's type parameter)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from lifeboat.context import Context
    from lifeboat.repo.manifest import Manifest


class BackupOutcome(Protocol):
    """What a backup reports: its manifest, and which repositories got it."""

    @property
    def manifest(self) -> Manifest: ...

    @property
    def repository(self) -> str:
        """The first repository that holds the backup."""
        ...

    @property
    def repositories(self) -> list[str]:
        """Every repository that holds it."""
        ...

    @property
    def failed(self) -> dict[str, str]:
        """Repository -> why it did not get the backup (the others hold it)."""
        ...

    @property
    def removed_leftovers(self) -> list[str]: ...


class RestoreOutcome(Protocol):
    def summary(self) -> dict[str, Any]:
        """What the restore did, for --json and the text report."""
        ...


RequestT = TypeVar("RequestT", contravariant=True)


class Source(Protocol[RequestT]):
    @property
    def kind(self) -> str:
        """The kind of backup it takes, e.g. postgres-logical."""
        ...

    def backup(self, ctx: Context, source: str) -> BackupOutcome:
        """Back up the configured source into its repositories."""
        ...

    def restore(self, ctx: Context, source: str, request: RequestT) -> RestoreOutcome:
        """Restore one of the source's backups as request says."""
        ...

    def describe(self, manifest: Manifest) -> dict[str, Any]:
        """What is particular to a backup of this kind (the rest of a manifest is common)."""
        ...

    def checks(self, ctx: Context, source: str) -> list[str]:
        """What would keep a backup of the source from working, found without writing
        anything; empty when nothing would."""
        ...
