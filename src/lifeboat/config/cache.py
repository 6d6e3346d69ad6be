"""A cache of the validated configuration for the commands PostgreSQL runs once per WAL file.

Validating the TOML with pydantic costs more than archiving a segment should; wal-push and
wal-fetch reuse what the last full validation of the same file (same bytes, same values of
the environment variables it names) produced, and fall back to a full validation otherwise.
Only what they need is kept: no DSN, no password."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifeboat import __version__
from lifeboat.util.fs import write_atomically

if TYPE_CHECKING:
    from lifeboat.config.model import LifeboatConfig

# 5: repository options checked against their backend, safety-backup expiry
CACHE_FORMAT = 5
_ENV_REF = re.compile(rb"\$\{([A-Za-z_][A-Za-z0-9_]*)")


def cache_file(config_path: Path) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    digest = hashlib.sha256(str(config_path.absolute()).encode()).hexdigest()[:16]
    return Path(base) / "lifeboat" / f"config-{digest}.json"


def fingerprint(raw: bytes) -> str:
    names = sorted({m.decode() for m in _ENV_REF.findall(raw)})
    environment = "\0".join(f"{name}={os.environ.get(name, '')}" for name in names)
    return hashlib.sha256(raw + b"\0" + environment.encode()).hexdigest()


def essentials(config: LifeboatConfig) -> dict[str, Any]:
    """What the cache keeps of a validated configuration: what wal-push and wal-fetch use."""
    enc = config.encryption
    return {
        "repositories": {
            name: {"url": repo.url, "options": repo.storage_options()._asdict()}
            for name, repo in config.repositories.items()
        },
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


def save(config_path: Path, raw: bytes, kept: dict[str, Any]) -> None:
    """Best effort: a cache that cannot be written only makes the next run slower."""
    target = cache_file(config_path)
    document = {
        "format": CACHE_FORMAT,
        "lifeboat": __version__,
        "fingerprint": fingerprint(raw),
        "config": kept,
    }
    try:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomically(target, json.dumps(document).encode())
    except OSError:
        return


def load(config_path: Path) -> dict[str, Any] | None:
    try:
        raw = config_path.read_bytes()
        document = json.loads(cache_file(config_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (
        not isinstance(document, dict)
        or document.get("format") != CACHE_FORMAT
        or document.get("lifeboat") != __version__
        or document.get("fingerprint") != fingerprint(raw)
    ):
        return None
    config = document.get("config")
    return config if isinstance(config, dict) else None
