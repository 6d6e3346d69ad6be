"""What of a config file's text is secret: the ${VAR}s it references and the files holding
keys and passwords it names. A config shipped as a Kubernetes ConfigMap (readable by
anyone who may read the namespace's configuration) must hold no secret written out."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lifeboat.config.model import LifeboatConfig, PostgresSourceConfig, RedisSourceConfig
from lifeboat.config.variables import REFERENCE, written_password
from lifeboat.export.schedule import NotExportable

# a Secret's key: what kubectl create secret --from-file=KEY=FILE accepts
SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")


def referenced_variables(raw_text: str) -> dict[str, bool]:
    """Every ${VAR} the file names -> whether it has a default (${VAR:-default})."""
    found: dict[str, bool] = {}
    for match in REFERENCE.finditer(raw_text):
        found[match["name"]] = found.get(match["name"], True) and match["default"] is not None
    return found


def check_no_inline_secret(raw: dict[str, Any], shown: Path) -> None:
    """Refuse a config that writes a secret out instead of referencing it as ${VAR}: a
    DSN's password, a notification channel's password, HMAC secret or (Slack, Apprise)
    URL, a schedule's ping_url, a password in any URL."""
    for path, value in _strings(raw, ()):
        if _inline_secret(path, value, raw):
            location = ".".join(str(part) for part in path)
            raise NotExportable(
                f"{shown}: {location} holds a secret written out; the config becomes a "
                "ConfigMap, which is no place for one: write it as ${VAR} and put VAR in "
                "the Secret"
            )


Location = tuple[str | int, ...]


def _inline_secret(path: Location, value: str, raw: dict[str, Any]) -> bool:
    if path[0] == "sources" and path[-1] in ("dsn", "target_dsn"):
        return written_password(value)
    if path[0] == "notifications" and len(path) == 3:
        if path[2] in ("password", "hmac_secret"):
            return REFERENCE.fullmatch(value) is None
        channel = raw["notifications"][path[1]]
        if path[2] == "url" and channel.get("type") in ("slack", "apprise"):
            # their URL is the credential: a Slack webhook's path, an Apprise URL's token
            return REFERENCE.search(value) is None
    if path[0] == "schedule" and path[-1] == "ping_url" and len(path) == 3:
        # a dead-man's-switch check URL is its credential: whoever has it reports success
        return REFERENCE.search(value) is None
    if "://" in value:
        try:
            password = urlsplit(value).password
        except ValueError:
            return False
        if not password:
            return False
        return REFERENCE.fullmatch(password) is None
    return False


def _strings(value: Any, where: Location) -> list[tuple[Location, str]]:
    """Every string of a TOML document with the keys (and list indexes) leading to it."""
    if isinstance(value, str):
        return [(where, value)]
    if isinstance(value, dict):
        return [item for key, inner in value.items() for item in _strings(inner, (*where, key))]
    if isinstance(value, list):
        return [item for i, inner in enumerate(value) for item in _strings(inner, (*where, i))]
    return []


def secret_files(config: LifeboatConfig) -> dict[str, Path]:
    """The files of keys, passwords and certificates the config names, by where it names
    them (which is also the key each has in the Secret of files)."""
    files: dict[str, Path | None] = {
        "encryption.age_identity_file": config.encryption.age_identity_file
    }
    for name, source in config.sources.items():
        if isinstance(source, PostgresSourceConfig | RedisSourceConfig):
            files[f"sources.{name}.password_file"] = source.password_file
        files[f"sources.{name}.drill.target_password_file"] = source.drill.target_password_file
    for name, channel in config.notifications.items():
        files[f"notifications.{name}.password_file"] = channel.password_file
        files[f"notifications.{name}.ca_file"] = channel.ca_file
    found = {key: path for key, path in files.items() if path is not None}
    for key, path in found.items():
        if not path.is_absolute():
            raise NotExportable(f"{key} = {str(path)!r} must be an absolute path in a container")
        if not SECRET_KEY.fullmatch(key):
            raise NotExportable(f"{key}: the name cannot be a key of a Kubernetes Secret")
    return found
