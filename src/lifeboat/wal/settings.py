"""What wal-push and wal-fetch need from the configuration, without importing the models."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from lifeboat.config import cache
from lifeboat.errors import NotInitialisedError, UsageError
from lifeboat.repo import layout
from lifeboat.storage.base import NotFound, Storage

if TYPE_CHECKING:
    from lifeboat.pipeline.crypto import Decryptor, Encryptor


def default_spool_dir() -> Path:
    from lifeboat.util.fs import state_home

    return state_home() / "spool"


class ArchiveSettings(NamedTuple):
    """[sources.NAME.archive] with the spool folder of this source resolved."""

    async_push: bool
    spool: Path
    spool_max_segments: int
    workers: int
    prefetch: int


class WalSettings:
    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    @classmethod
    def load(cls, config_path: Path) -> WalSettings:
        cached = cache.load(config_path)
        if cached is not None:
            return cls(cached)
        from lifeboat.config.load import load_config  # validates, and refreshes the cache

        return cls(cache.essentials(load_config(config_path)))

    @property
    def level(self) -> int:
        return int(self.values["level"])

    def _check_source(self, source: str) -> None:
        sources: dict[str, list[str] | None] = self.values["sources"]
        if source not in sources:
            known = ", ".join(sorted(sources)) or "none configured"
            raise UsageError(f"unknown source {source!r} (sources: {known})")

    def archive(self, source: str, only: str | None = None) -> ArchiveSettings:
        """only: the one repository WAL is fetched from (see _repositories)."""
        self._check_source(source)
        values = self.values["archive"][source]
        base = Path(values["spool_dir"]) if values["spool_dir"] else default_spool_dir()
        # one spool per source and repositories: two configurations on one host may use the
        # same source name for different clusters, and prefetched WAL of one is not the other's
        urls = "\n".join(url for _, url, _ in self._repositories(source, only))
        repository = hashlib.sha256(urls.encode()).hexdigest()[:10]
        return ArchiveSettings(
            async_push=bool(values["async"]),
            spool=base / f"{source}-{repository}",
            spool_max_segments=int(values["spool_max_segments"]),
            workers=int(values["workers"]),
            prefetch=int(values["prefetch"]),
        )

    def _repositories(
        self, source: str, only: str | None = None
    ) -> list[tuple[str, str, dict[str, Any]]]:
        """Name, URL and storage options of each repository the source's WAL goes to, in
        the source's order (default: every configured one); or of `only`, any configured
        repository (a copy target a restore came from)."""
        self._check_source(source)
        sources: dict[str, list[str] | None] = self.values["sources"]
        repositories: dict[str, dict[str, Any]] = self.values["repositories"]
        if only is not None and only not in repositories:
            known = ", ".join(repositories)
            raise UsageError(f"unknown repository {only!r} (repositories: {known})")
        names = [only] if only is not None else sources[source] or list(repositories)
        return [(n, repositories[n]["url"], repositories[n]["options"]) for n in names]

    def storages(self, source: str, only: str | None = None) -> list[Storage]:
        """The source's repositories (or only `only`), each checked to be initialised."""
        from lifeboat.storage.options import StorageOptions
        from lifeboat.storage.registry import open_storage

        opened = []
        for name, url, options in self._repositories(source, only):
            storage = open_storage(url, StorageOptions(**options), classify=layout.object_kind)
            try:
                storage.stat(layout.MARKER)
            except NotFound:
                raise NotInitialisedError(
                    f"repository {name} ({storage.url}) is not initialised: run `lifeboat init`"
                ) from None
            opened.append(storage)
        return opened

    def encryptor(self) -> Encryptor:
        # imported here: an async wal-push only spools and needs no cipher
        from lifeboat.pipeline.crypto import make_encryptor

        enc = self.values["encryption"]
        homedir = Path(enc["gpg_homedir"]) if enc["gpg_homedir"] else None
        return make_encryptor(enc["age_recipients"], enc["gpg_recipients"], homedir)

    def decryptor(self, method: str) -> Decryptor:
        from lifeboat.pipeline.crypto import make_decryptor

        enc = self.values["encryption"]
        identity = Path(enc["age_identity_file"]) if enc["age_identity_file"] else None
        homedir = Path(enc["gpg_homedir"]) if enc["gpg_homedir"] else None
        return make_decryptor(method, identity, homedir)
