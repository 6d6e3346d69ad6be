"""A cache of the validated configuration for the commands PostgreSQL runs once per WAL file.

Validating the TOML with pydantic costs more than archiving a segment should; wal-push and
wal-fetch reuse what the last full validation of the same file (same bytes, same values of
the environment variables it names) produced, and fall back to a full validation otherwise.
Only what they need is kept (config/lean.py): no DSN, no password."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from lifeboat import __version__
from lifeboat.config.lean import LeanConfig
from lifeboat.util.fs import write_atomically

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


def save(config_path: Path, raw: bytes, kept: LeanConfig) -> None:
    """Best effort: a cache that cannot be written only makes the next run slower."""
    target = cache_file(config_path)
    document = {
        "format": CACHE_FORMAT,
        "lifeboat": __version__,
        "fingerprint": fingerprint(raw),
        "config": kept.to_document(),
    }
    try:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomically(target, json.dumps(document).encode())
    except OSError:
        return


def load(config_path: Path) -> LeanConfig | None:
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
    try:
        return LeanConfig.from_document(document["config"])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None  # another shape than this version writes: validate afresh
