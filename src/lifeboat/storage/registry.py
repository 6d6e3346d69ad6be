"""Repository URL -> storage backend."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from lifeboat.errors import ConfigError
from lifeboat.storage.base import Storage


def open_storage(url: str) -> Storage:
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
    raise ConfigError(f"repository URL {url!r}: unsupported scheme {parts.scheme!r} (use file://)")
