"""The configuration wal-push and wal-fetch need, typed and without the models.

PostgreSQL runs those commands once per WAL file, so they must not pay for pydantic: they
read this structure from the validated-config cache (config/cache.py) and build it from the
full LifeboatConfig only when the cache does not hold it. It keeps no DSN and no password.

Named tuples: nothing on the hot path can change them, and they are cheap to define, which
every wal-push pays for (six frozen dataclasses cost it about 2.5 ms more)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from lifeboat.errors import UsageError
from lifeboat.storage.options import StorageOptions

if TYPE_CHECKING:
    from lifeboat.config.model import LifeboatConfig


def default_spool_dir() -> Path:
    from lifeboat.util.fs import state_home

    return state_home() / "spool"


class RepositoryTarget(NamedTuple):
    """A repository as wal-push and wal-fetch open it."""

    name: str
    url: str
    options: StorageOptions


class EncryptionKeys(NamedTuple):
    """[encryption]: who backups are encrypted to, and what decrypts them."""

    age_recipients: tuple[str, ...]
    age_identity_file: Path | None
    gpg_recipients: tuple[str, ...]
    gpg_homedir: Path | None


class ArchiveOptions(NamedTuple):
    """[sources.NAME.archive] as configured."""

    async_push: bool
    spool_dir: Path | None
    spool_max_segments: int
    workers: int
    prefetch: int


class SourceArchiving(NamedTuple):
    """What wal-push and wal-fetch need of a source: its repositories (None: every
    configured one) and its archive options."""

    repositories: tuple[str, ...] | None
    archive: ArchiveOptions


class ArchiveSettings(NamedTuple):
    """[sources.NAME.archive] with the spool folder of this source resolved."""

    async_push: bool
    spool: Path
    spool_max_segments: int
    workers: int
    prefetch: int


class LeanConfig(NamedTuple):
    repositories: Mapping[str, RepositoryTarget]  # in the configuration's order
    sources: Mapping[str, SourceArchiving]
    encryption: EncryptionKeys
    level: int  # zstd level

    @classmethod
    def from_config(cls, config: LifeboatConfig) -> LeanConfig:
        from lifeboat.config.model import archive_of

        enc = config.encryption
        return cls(
            repositories={
                name: RepositoryTarget(name, repo.url, repo.storage_options())
                for name, repo in config.repositories.items()
            },
            sources={
                name: SourceArchiving(
                    tuple(src.repositories) if src.repositories is not None else None,
                    ArchiveOptions(
                        async_push=archive_of(src).async_push,
                        spool_dir=archive_of(src).spool_dir,
                        spool_max_segments=archive_of(src).spool_max_segments,
                        workers=archive_of(src).workers,
                        prefetch=archive_of(src).prefetch,
                    ),
                )
                for name, src in config.sources.items()
            },
            encryption=EncryptionKeys(
                tuple(enc.age_recipients),
                enc.age_identity_file,
                tuple(enc.gpg_recipients),
                enc.gpg_homedir,
            ),
            level=config.compression.level,
        )

    def to_document(self) -> dict[str, Any]:
        """The JSON form the cache stores (the layout of cache format 5, unchanged)."""
        enc = self.encryption
        return {
            "repositories": {
                name: {"url": repo.url, "options": repo.options._asdict()}
                for name, repo in self.repositories.items()
            },
            "sources": {
                name: list(src.repositories) if src.repositories is not None else None
                for name, src in self.sources.items()
            },
            "encryption": {
                "age_recipients": list(enc.age_recipients),
                "age_identity_file": _text(enc.age_identity_file),
                "gpg_recipients": list(enc.gpg_recipients),
                "gpg_homedir": _text(enc.gpg_homedir),
            },
            "level": self.level,
            "archive": {
                name: {
                    "async": src.archive.async_push,
                    "spool_dir": _text(src.archive.spool_dir),
                    "spool_max_segments": src.archive.spool_max_segments,
                    "workers": src.archive.workers,
                    "prefetch": src.archive.prefetch,
                }
                for name, src in self.sources.items()
            },
        }

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> LeanConfig:
        """The structure to_document wrote. Raises KeyError, TypeError or ValueError on a
        document of another shape: the cache then counts as missing."""
        enc = document["encryption"]
        archive = document["archive"]
        sources = {}
        for name, repositories in document["sources"].items():
            values = archive[name]
            sources[name] = SourceArchiving(
                tuple(_strings(repositories)) if repositories is not None else None,
                ArchiveOptions(
                    async_push=_typed(values["async"], bool),
                    spool_dir=_path(values["spool_dir"]),
                    spool_max_segments=_typed(values["spool_max_segments"], int),
                    workers=_typed(values["workers"], int),
                    prefetch=_typed(values["prefetch"], int),
                ),
            )
        return cls(
            repositories={
                name: RepositoryTarget(
                    name, _typed(repo["url"], str), StorageOptions(**repo["options"])
                )
                for name, repo in document["repositories"].items()
            },
            sources=sources,
            encryption=EncryptionKeys(
                _strings(enc["age_recipients"]),
                _path(enc["age_identity_file"]),
                _strings(enc["gpg_recipients"]),
                _path(enc["gpg_homedir"]),
            ),
            level=_typed(document["level"], int),
        )

    def _archiving(self, source: str) -> SourceArchiving:
        try:
            return self.sources[source]
        except KeyError:
            known = ", ".join(sorted(self.sources)) or "none configured"
            raise UsageError(f"unknown source {source!r} (sources: {known})") from None

    def targets(self, source: str, only: str | None = None) -> list[RepositoryTarget]:
        """Each repository the source's WAL goes to, in the source's order (default: every
        configured one); or `only`, any configured repository (a copy target a restore came
        from)."""
        names = self._archiving(source).repositories
        if only is not None:
            if only not in self.repositories:
                known = ", ".join(self.repositories)
                raise UsageError(f"unknown repository {only!r} (repositories: {known})")
            names = (only,)
        return [self.repositories[name] for name in names or self.repositories]

    def archive(self, source: str, only: str | None = None) -> ArchiveSettings:
        """only: the one repository WAL is fetched from (see targets)."""
        options = self._archiving(source).archive
        base = options.spool_dir or default_spool_dir()
        # one spool per source and repositories: two configurations on one host may use the
        # same source name for different clusters, and prefetched WAL of one is not the other's
        urls = "\n".join(target.url for target in self.targets(source, only))
        repository = hashlib.sha256(urls.encode()).hexdigest()[:10]
        return ArchiveSettings(
            async_push=options.async_push,
            spool=base / f"{source}-{repository}",
            spool_max_segments=options.spool_max_segments,
            workers=options.workers,
            prefetch=options.prefetch,
        )


T = TypeVar("T")


def _text(path: Path | None) -> str | None:
    return str(path) if path is not None else None


def _path(value: Any) -> Path | None:
    return Path(_typed(value, str)) if value else None


def _strings(values: Any) -> tuple[str, ...]:
    if not isinstance(values, list):
        raise TypeError(f"expected a list, got {type(values).__name__}")
    return tuple(_typed(value, str) for value in values)


def _typed(value: Any, kind: type[T]) -> T:
    # bool is an int: a level of `true` is as wrong as a level of "4"
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
    return value
