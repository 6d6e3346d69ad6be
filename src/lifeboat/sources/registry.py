"""Which source kind does a job: for a configured source (its `type`, and for PostgreSQL
the backup type asked for), and for a backup (its manifest's kind).

A new kind of source registers here once; the commands, the daemon, drills and verify
find it through these functions rather than naming it."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lifeboat.errors import UsageError

if TYPE_CHECKING:
    from lifeboat.config.model import AnySourceConfig
    from lifeboat.repo.manifest import Manifest
    from lifeboat.sources.base import PathSource, Source


# the kinds restored to a path, by their source type (which is also their kind): module
# and class, imported only when one is asked for, so that a command pays for the one kind it
# runs and not for every kind's libraries (redis-py...)
_PATH_KINDS: dict[str, tuple[str, str]] = {
    "files": ("lifeboat.sources.files.kind", "FilesKind"),
    "redis": ("lifeboat.sources.redis.kind", "RedisKind"),
    "sqlite": ("lifeboat.sources.sqlite.kind", "SqliteKind"),
}


def _path_kind_class(source_type: str) -> Callable[[], PathSource] | None:
    where = _PATH_KINDS.get(source_type)
    if where is None:
        return None
    kind: Callable[[], PathSource] = getattr(importlib.import_module(where[0]), where[1])
    return kind


@dataclass(frozen=True)
class BackupOptions:
    """The options of one backup run (`lifeboat backup`'s; the daemon uses the defaults)."""

    backup_type: str | None = None  # PostgreSQL: logical (default) or physical
    wal_timeout: float = 120.0
    incremental: bool = False
    accept_new_cluster: bool = False


def backup_kind(name: str, config: AnySourceConfig, options: BackupOptions) -> Source[Any]:
    """The kind that backs up source `name` as options ask."""
    if config.type == "postgres":
        from lifeboat.sources.postgres.kinds import PostgresLogical, PostgresPhysical

        if options.backup_type not in (None, "logical", "physical"):
            raise UsageError(
                f"source {name!r} is a PostgreSQL source: --type is logical or physical"
            )
        if options.backup_type == "physical":
            return PostgresPhysical(
                options.wal_timeout, options.incremental, options.accept_new_cluster
            )
        if options.incremental:
            raise UsageError("--incremental needs --type physical")
        return PostgresLogical(options.accept_new_cluster)
    if options.backup_type is not None and options.backup_type != config.type:
        raise UsageError(
            f"source {name!r} is a {config.type} source: --type {options.backup_type} is for "
            "PostgreSQL sources"
        )
    if options.incremental or options.accept_new_cluster:
        raise UsageError(
            f"source {name!r} is a {config.type} source: --incremental and "
            "--accept-new-cluster are for PostgreSQL sources"
        )
    return path_kind(name, config.type)


def backup_type_of(config: AnySourceConfig, requested: str | None) -> str:
    """The type a backup of the source is told by (notifications, metrics): --type, else
    logical for PostgreSQL (`backup`'s default), else the source's own type (redis...)."""
    return requested or ("logical" if config.type == "postgres" else config.type)


def path_kind(name: str, source_type: str) -> PathSource:
    """The kind of a source restored to a path (`restore SOURCE --to PATH`)."""
    factory = _path_kind_class(source_type)
    if factory is None:
        if source_type == "postgres":
            raise UsageError(
                f"source {name!r} is a PostgreSQL source: restore it into a database "
                "(--target-dsn, --target-db) or a data directory (--pgdata), not --to"
            )
        raise UsageError(f"{source_type} sources cannot be backed up by this Lifeboat")
    return factory()


def kind_of(manifest: Manifest) -> Source[Any]:
    """The kind that took a backup: the one that restores and drills it."""
    if not manifest.postgres:
        return path_kind(manifest.source, manifest.kind)
    from lifeboat.sources.postgres.kinds import PostgresLogical, PostgresPhysical

    if manifest.kind == "postgres-physical":
        return PostgresPhysical()
    return PostgresLogical()


def deep_verifier(manifest: Manifest) -> PathSource:
    """The kind that reads a backup other than PostgreSQL's back for `verify --deep`."""
    return path_kind(manifest.source, manifest.kind)


def facts_of(manifest: Manifest) -> dict[str, Any]:
    """What is particular to the backup, as its kind describes it (`show`); a kind this
    Lifeboat cannot run (its program missing from the build) shows its manifest's details
    as stored."""
    try:
        kind = kind_of(manifest)
    except UsageError:
        return manifest.details.model_dump(mode="json")
    return kind.describe(manifest)
