"""Context: the resolved configuration and the live objects built from it, once per run.

Two views of one run. `Context` is the full one the commands get: the validated
LifeboatConfig, its repositories, a progress reporter. `LeanContext` is what the per-WAL-file
commands (wal-push, wal-fetch and the spool's workers) need: the lean configuration
(config/lean.py), the storages of a source, the encryptor and decryptor. wal/ code takes a
`WalView`, which both offer (`Context.lean` is the same configuration, typed), so a command
can hand its full context to it. This module imports no model, cipher or backend at load
time: wal-push imports it for every segment."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol

from lifeboat.config.lean import LeanConfig, RepositoryTarget
from lifeboat.errors import BackupNotFoundError, LifeboatError, NotInitialisedError, UsageError
from lifeboat.util.progress import Reporter, quiet

if TYPE_CHECKING:
    from lifeboat.config.model import AnySourceConfig, LifeboatConfig, PostgresSourceConfig
    from lifeboat.pipeline.crypto import Decryptor, Encryptor
    from lifeboat.repo.catalog import Repository
    from lifeboat.repo.manifest import Manifest
    from lifeboat.storage.base import Storage
    from lifeboat.storage.options import StorageOptions

log = logging.getLogger(__name__)


class WalView(Protocol):
    """What archiving and fetching WAL use of a run's context."""

    @property
    def lean(self) -> LeanConfig: ...

    def storages(self, source: str, only: str | None = None) -> list[Storage]:
        """The source's repositories (or only `only`), each checked to be initialised."""
        ...

    def encryptor(self) -> Encryptor: ...

    def decryptor(self, method: str) -> Decryptor: ...


def _open_repository_storage(url: str, options: StorageOptions) -> Storage:
    """A repository's storage, told by the layout which of its keys are data, WAL or
    metadata."""
    from lifeboat.repo import layout
    from lifeboat.storage.registry import open_storage

    return open_storage(url, options, classify=layout.object_kind)


def _initialised(target: RepositoryTarget, storage: Storage) -> Storage:
    from lifeboat.repo import layout
    from lifeboat.storage.base import NotFound

    try:
        storage.stat(layout.MARKER)
    except NotFound:
        raise NotInitialisedError(
            f"repository {target.name} ({storage.url}) is not initialised: run `lifeboat init`"
        ) from None
    return storage


def _encryptor(keys: LeanConfig) -> Encryptor:
    # imported here: an async wal-push only spools and needs no cipher
    from lifeboat.pipeline.crypto import make_encryptor

    enc = keys.encryption
    return make_encryptor(list(enc.age_recipients), list(enc.gpg_recipients), enc.gpg_homedir)


def _decryptor(keys: LeanConfig, method: str) -> Decryptor:
    from lifeboat.pipeline.crypto import make_decryptor

    enc = keys.encryption
    return make_decryptor(method, enc.age_identity_file, enc.gpg_homedir)


class LeanContext(NamedTuple):
    """The hot path's context: built from the config cache when it is fresh. A named tuple
    rather than a frozen dataclass, as the lean configuration: cheaper to define for every
    wal-push."""

    lean: LeanConfig
    config_path: Path

    @classmethod
    def load(cls, config_path: Path) -> LeanContext:
        from lifeboat.config import cache

        cached = cache.load(config_path)
        if cached is not None:
            return cls(cached, config_path)
        from lifeboat.config.load import load_config  # validates, and refreshes the cache

        return cls(LeanConfig.from_config(load_config(config_path)), config_path)

    def storages(self, source: str, only: str | None = None) -> list[Storage]:
        return [
            _initialised(target, _open_repository_storage(target.url, target.options))
            for target in self.lean.targets(source, only)
        ]

    def encryptor(self) -> Encryptor:
        return _encryptor(self.lean)

    def decryptor(self, method: str) -> Decryptor:
        return _decryptor(self.lean, method)


@dataclass
class Context:
    config: LifeboatConfig
    config_path: Path
    reporter: Reporter = field(default_factory=quiet)

    @classmethod
    def load(cls, path: Path, reporter: Reporter | None = None) -> Context:
        from lifeboat.config.load import load_config

        return cls(load_config(path), path, reporter or quiet())

    @cached_property
    def lean(self) -> LeanConfig:
        return LeanConfig.from_config(self.config)

    def storages(self, source: str, only: str | None = None) -> list[Storage]:
        """WalView's: the storages of the repositories already opened for this run."""
        return [
            _initialised(target, self.repository(target.name).storage)
            for target in self.lean.targets(source, only)
        ]

    def source(self, name: str) -> AnySourceConfig:
        try:
            return self.config.sources[name]
        except KeyError:
            known = ", ".join(sorted(self.config.sources)) or "none configured"
            raise UsageError(
                f"unknown source {name!r} in {self.config_path} (sources: {known})"
            ) from None

    def postgres_source(self, name: str, what: str = "this") -> PostgresSourceConfig:
        """The source, which `what` needs to be a PostgreSQL one (WAL archiving, a physical
        backup, a point-in-time recovery...)."""
        from lifeboat.config.model import PostgresSourceConfig

        config = self.source(name)
        if not isinstance(config, PostgresSourceConfig):
            raise UsageError(
                f"source {name!r} is a {config.type} source: {what} needs a PostgreSQL one"
            )
        return config

    @cached_property
    def repositories(self) -> dict[str, Repository]:
        from lifeboat.policy.retention import parse_duration
        from lifeboat.repo.catalog import Repository

        return {
            name: Repository(
                name,
                _open_repository_storage(repo.url, repo.storage_options()),
                lock_stale_after=parse_duration(repo.lock_stale_after),
                upload_grace=parse_duration(repo.upload_grace),
            )
            for name, repo in self.config.repositories.items()
        }

    def repository(self, name: str | None = None) -> Repository:
        if name is None:
            return next(iter(self.repositories.values()))
        try:
            return self.repositories[name]
        except KeyError:
            known = ", ".join(self.repositories)
            raise UsageError(
                f"unknown repository {name!r} in {self.config_path} (repositories: {known})"
            ) from None

    def repository_for(self, source: str) -> Repository:
        """A source's first repository: the one restore and reports look at first."""
        return self.repositories_for(source)[0]

    def repositories_for(self, source: str, only: str | None = None) -> list[Repository]:
        """The repositories a source writes to, in its order (default: every configured
        one); or just `only`, any configured repository (a copy target's retention is
        applied by naming it)."""
        self.source(source)  # an unknown source is a usage error
        if only is not None:
            return [self.repository(only)]
        names = self.source(source).repositories or list(self.config.repositories)
        return [self.repository(name) for name in names]

    def repositories_to_read(self, source: str | None, only: str | None = None) -> list[Repository]:
        """Where reading commands look: `only` (any configured repository), else the
        source's own repositories, then every other configured one: a copy target still
        holds the backups and WAL when the source's own are gone."""
        if only is not None:
            return [self.repository(only)]
        if source is None:
            return list(self.repositories.values())
        own = self.repositories_for(source)
        return own + [r for r in self.repositories.values() if r not in own]

    def may_pass_over(self, source: str | None, only: str | None, repo: Repository) -> bool:
        """Whether a reading command may skip repo when it cannot be read: a repository the
        source does not write to, looked in only because reading commands look everywhere
        (it may belong to other sources, or be a copy target not set up yet)."""
        return only is None and source is not None and not self.is_own_repository(source, repo)

    def is_own_repository(self, source: str, repo: Repository) -> bool:
        """Whether the source writes to repo (else repo only holds copies of its backups)."""
        return repo in self.repositories_for(source)

    def encryptor(self) -> Encryptor:
        return _encryptor(self.lean)

    def decryptor(self, method: str) -> Decryptor:
        return _decryptor(self.lean, method)

    def decryptor_for(self, manifest: Manifest) -> Decryptor:
        """The decryptor for a backup, once it is known to hold a key the backup was
        encrypted to (DecryptionKeyError, naming both, before any byte is read)."""
        from lifeboat.pipeline.crypto import Recipient

        decryptor = self.decryptor(manifest.encryption.method)
        decryptor.check_can_decrypt(
            [Recipient(r["type"], r["id"]) for r in manifest.encryption.recipients]
        )
        return decryptor

    def backups_named(
        self, backup: str, source: str | None = None, repo_name: str | None = None
    ) -> list[tuple[Repository, Manifest]]:
        """Every repository that has the backup (only repo_name, if given), copy targets
        included, with its manifest there; BackupNotFoundError when none has it."""
        repos = self.repositories_to_read(source, repo_name)
        found = []
        for repo in repos:
            try:
                repo.ensure_initialised()
                manifest = repo.load_manifest(source, backup) if source else repo.find(backup)
            except BackupNotFoundError:
                continue
            except LifeboatError as exc:
                if not self.may_pass_over(source, repo_name, repo):
                    raise
                log.debug("repository %s passed over: %s", repo.name, exc.message)
                continue
            found.append((repo, manifest))
        if not found:
            where = ", ".join(r.name for r in repos)
            raise BackupNotFoundError(f"backup {backup} not found in {where}")
        return found
