"""Repository URL -> storage backend."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from lifeboat.errors import ConfigError
from lifeboat.storage.base import Storage
from lifeboat.storage.options import StorageOptions

SCHEMES = "file://, s3://, az:// or gs://"


def open_storage(url: str, options: StorageOptions | None = None) -> Storage:
    """The backend for a repository URL; each cloud SDK is imported only for its scheme."""
    options = options or StorageOptions()
    if "://" not in url:
        from lifeboat.storage.local import LocalStorage

        return LocalStorage(Path(url).expanduser().absolute())
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(f"file URL {url!r} must not name a host: use file:///path")
        from lifeboat.storage.local import LocalStorage

        return LocalStorage(Path(unquote(parts.path)).absolute())
    if parts.scheme == "mem":
        from lifeboat.storage.memory import MemoryStorage

        return MemoryStorage(parts.netloc or "memory")
    if not parts.netloc:
        raise ConfigError(f"repository URL {url!r} names no bucket or container")
    if parts.scheme == "s3":
        from lifeboat.storage.s3 import S3Storage

        return S3Storage(url, options)
    if parts.scheme == "az":
        from lifeboat.storage.azure import AzureBlobStorage

        return AzureBlobStorage(url, options)
    if parts.scheme == "gs":
        from lifeboat.storage.gcs import GcsStorage

        return GcsStorage(url, options)
    raise ConfigError(
        f"repository URL {url!r}: unsupported scheme {parts.scheme!r} (use {SCHEMES})"
    )
