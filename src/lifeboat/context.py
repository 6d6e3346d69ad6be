"""Context: the resolved configuration and the live objects built from it, once per run."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from lifeboat.config.load import load_config
from lifeboat.config.model import LifeboatConfig, SourceConfig
from lifeboat.errors import BackupNotFoundError, LifeboatError, UsageError
from lifeboat.pipeline.crypto import Decryptor, Encryptor, make_decryptor, make_encryptor
from lifeboat.repo import layout
from lifeboat.repo.catalog import Repository
from lifeboat.repo.manifest import Manifest
from lifeboat.storage.registry import open_storage
from lifeboat.util.progress import Reporter, quiet

log = logging.getLogger(__name__)


@dataclass
class Context:
    config: LifeboatConfig
    config_path: Path
    reporter: Reporter = field(default_factory=quiet)

    @classmethod
    def load(cls, path: Path, reporter: Reporter | None = None) -> Context:
        return cls(load_config(path), path, reporter or quiet())

    def source(self, name: str) -> SourceConfig:
        try:
            return self.config.sources[name]
        except KeyError:
            known = ", ".join(sorted(self.config.sources)) or "none configured"
            raise UsageError(
                f"unknown source {name!r} in {self.config_path} (sources: {known})"
            ) from None

    @cached_property
    def repositories(self) -> dict[str, Repository]:
        from lifeboat.policy.retention import parse_duration

        return {
            name: Repository(
                name,
                open_storage(repo.url, repo.storage_options(), classify=layout.object_kind),
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
        enc = self.config.encryption
        return make_encryptor(enc.age_recipients, enc.gpg_recipients, enc.gpg_homedir)

    def decryptor(self, method: str) -> Decryptor:
        enc = self.config.encryption
        return make_decryptor(method, enc.age_identity_file, enc.gpg_homedir)

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
