"""Repository URL -> storage backend."""

from __future__ import annotations

import importlib
from pathlib import Path
from urllib.parse import unquote, urlsplit

from lifeboat.errors import ConfigError
from lifeboat.storage.base import Storage
from lifeboat.storage.options import (
    KeyClassifier,
    StorageOptions,
    set_options,
    shown_url,
    unsupported,
)

SCHEMES = "file://, s3://, az:// or gs://"
# scheme -> module, class, pip extra; each SDK is imported only for its own scheme
CLOUD_BACKENDS = {
    "s3": ("lifeboat.storage.s3", "S3Storage", "s3"),
    "az": ("lifeboat.storage.azure", "AzureBlobStorage", "azure"),
    "gs": ("lifeboat.storage.gcs", "GcsStorage", "gcs"),
}


def open_storage(
    url: str, options: StorageOptions | None = None, *, classify: KeyClassifier
) -> Storage:
    """The backend for a repository URL; each cloud SDK is imported only for its scheme.
    Options the backend cannot honour are refused, never dropped. classify tells the
    backend which kind of object each key is (the repository layout's object_kind)."""
    options = options or StorageOptions()
    refused = unsupported(url, set_options(options))
    if refused:
        raise ConfigError(f"repository {shown_url(url)}: " + "; ".join(refused))
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
    if parts.scheme in CLOUD_BACKENDS:
        module_name, class_name, extra = CLOUD_BACKENDS[parts.scheme]
        try:
            storage: Storage = getattr(importlib.import_module(module_name), class_name)(
                url, options, classify=classify
            )
        except ModuleNotFoundError as exc:
            raise ConfigError(
                f"repository URL {url!r} needs the Python package {exc.name}: "
                f"pip install 'lifeboat[{extra}]'"
            ) from None
        return storage
    raise ConfigError(
        f"repository URL {url!r}: unsupported scheme {parts.scheme!r} (use {SCHEMES})"
    )
