"""What wal-push and wal-fetch need from the configuration, without importing the models."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifeboat.errors import NotInitialisedError, UsageError
from lifeboat.pipeline.crypto import Decryptor, Encryptor, make_decryptor, make_encryptor
from lifeboat.repo import layout
from lifeboat.storage.base import NotFound, Storage
from lifeboat.storage.registry import open_storage

if TYPE_CHECKING:
    from lifeboat.config.model import LifeboatConfig


def essentials(config: LifeboatConfig) -> dict[str, Any]:
    enc = config.encryption
    return {
        "repositories": {name: repo.url for name, repo in config.repositories.items()},
        "sources": {name: src.repositories for name, src in config.sources.items()},
        "encryption": {
            "age_recipients": list(enc.age_recipients),
            "age_identity_file": str(enc.age_identity_file) if enc.age_identity_file else None,
            "gpg_recipients": list(enc.gpg_recipients),
            "gpg_homedir": str(enc.gpg_homedir) if enc.gpg_homedir else None,
        },
        "level": config.compression.level,
        "archive": {
            name: {
                "async": src.archive.async_push,
                "spool_dir": str(src.archive.spool_dir) if src.archive.spool_dir else None,
                "spool_max_segments": src.archive.spool_max_segments,
                "workers": src.archive.workers,
                "prefetch": src.archive.prefetch,
            }
            for name, src in config.sources.items()
        },
    }


def default_spool_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "state"
    )
    return Path(base) / "lifeboat" / "spool"


@dataclass(frozen=True)
class ArchiveSettings:
    """[sources.NAME.archive] with the spool folder of this source resolved."""

    async_push: bool
    spool: Path
    spool_max_segments: int
    workers: int
    prefetch: int


@dataclass
class WalSettings:
    values: dict[str, Any]

    @classmethod
    def load(cls, config_path: Path) -> WalSettings:
        from lifeboat.config import cache

        cached = cache.load(config_path)
        if cached is not None:
            return cls(cached)
        from lifeboat.config.load import load_config  # validates, and refreshes the cache

        return cls(essentials(load_config(config_path)))

    @property
    def level(self) -> int:
        return int(self.values["level"])

    def _check_source(self, source: str) -> None:
        sources: dict[str, list[str] | None] = self.values["sources"]
        if source not in sources:
            known = ", ".join(sorted(sources)) or "none configured"
            raise UsageError(f"unknown source {source!r} (sources: {known})")

    def archive(self, source: str) -> ArchiveSettings:
        self._check_source(source)
        values = self.values["archive"][source]
        base = Path(values["spool_dir"]) if values["spool_dir"] else default_spool_dir()
        return ArchiveSettings(
            async_push=bool(values["async"]),
            spool=base / source,
            spool_max_segments=int(values["spool_max_segments"]),
            workers=int(values["workers"]),
            prefetch=int(values["prefetch"]),
        )

    def storage(self, source: str) -> Storage:
        self._check_source(source)
        sources: dict[str, list[str] | None] = self.values["sources"]
        repositories: dict[str, str] = self.values["repositories"]
        names = sources[source] or list(repositories)
        storage = open_storage(repositories[names[0]])
        try:
            storage.stat(layout.MARKER)
        except NotFound:
            raise NotInitialisedError(
                f"repository {names[0]} ({storage.url}) is not initialised: run `lifeboat init`"
            ) from None
        return storage

    def encryptor(self) -> Encryptor:
        enc = self.values["encryption"]
        homedir = Path(enc["gpg_homedir"]) if enc["gpg_homedir"] else None
        return make_encryptor(enc["age_recipients"], enc["gpg_recipients"], homedir)

    def decryptor(self, method: str) -> Decryptor:
        enc = self.values["encryption"]
        identity = Path(enc["age_identity_file"]) if enc["age_identity_file"] else None
        homedir = Path(enc["gpg_homedir"]) if enc["gpg_homedir"] else None
        return make_decryptor(method, identity, homedir)
