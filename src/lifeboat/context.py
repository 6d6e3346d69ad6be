"""Context: the resolved configuration and the live objects built from it, once per run."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from lifeboat.config.load import load_config
from lifeboat.config.model import LifeboatConfig, SourceConfig
from lifeboat.errors import BackupNotFoundError, UsageError
from lifeboat.pipeline.crypto import Decryptor, Encryptor, make_decryptor, make_encryptor
from lifeboat.progress import Reporter, quiet
from lifeboat.repo.catalog import Repository
from lifeboat.repo.manifest import Manifest
from lifeboat.storage.registry import open_storage


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
        from lifeboat.retention import parse_duration

        return {
            name: Repository(
                name,
                open_storage(repo.url, repo.storage_options()),
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
            raise UsageError(f"unknown repository {name!r} in {self.config_path}") from None

    def repository_for(self, source: str) -> Repository:
        """A source's first repository: the one restore and reports look at first."""
        return self.repositories_for(source)[0]

    def repositories_for(self, source: str, only: str | None = None) -> list[Repository]:
        """The repositories of a source in its order (default: every configured one), or
        just `only` (which must be one of them)."""
        names = self.source(source).repositories or list(self.config.repositories)
        if only is not None:
            if only not in names:
                raise UsageError(
                    f"repository {only!r} is not one of source {source}'s ({', '.join(names)})"
                )
            names = [only]
        return [self.repository(name) for name in names]

    def encryptor(self) -> Encryptor:
        enc = self.config.encryption
        return make_encryptor(enc.age_recipients, enc.gpg_recipients, enc.gpg_homedir)

    def decryptor(self, method: str) -> Decryptor:
        enc = self.config.encryption
        return make_decryptor(method, enc.age_identity_file, enc.gpg_homedir)

    def backups_named(
        self, backup: str, source: str | None = None, repo_name: str | None = None
    ) -> list[tuple[Repository, Manifest]]:
        """Every repository that has the backup (only repo_name, if given), with its
        manifest there; BackupNotFoundError when none has it."""
        if repo_name is not None:
            repos = [self.repository(repo_name)]
        elif source is not None:
            repos = self.repositories_for(source)
        else:
            repos = list(self.repositories.values())
        found = []
        for repo in repos:
            repo.ensure_initialised()
            try:
                manifest = repo.load_manifest(source, backup) if source else repo.find(backup)
            except BackupNotFoundError:
                continue
            found.append((repo, manifest))
        if not found:
            where = ", ".join(r.name for r in repos)
            raise BackupNotFoundError(f"backup {backup} not found in {where}")
        return found
