"""Keep secrets out of everything Lifeboat prints or logs."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_URL_PASSWORD = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:@/\s]*):(?P<pw>[^@/\s]*)@", re.I
)
_KV_PASSWORD = re.compile(r"(?P<key>\bpassword\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|\S+)", re.I)


def redact(text: str) -> str:
    """Replace passwords in URLs (user:secret@) and key=value DSNs with ***."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    return _KV_PASSWORD.sub(lambda m: f"{m['key']}***", text)


def strip_password(dsn: str) -> tuple[str, str | None]:
    """Split a URL DSN into the DSN without password and the password, so the password can
    travel in the environment (PGPASSWORD) rather than on a command line others can read."""
    if "://" not in dsn:
        match = _KV_PASSWORD.search(dsn)
        if not match:
            return dsn, None
        password = match["pw"].strip("'")
        return (dsn[: match.start()] + dsn[match.end() :]).strip(), password
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn, None
    netloc = parts.hostname or ""
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    from urllib.parse import unquote

    return urlunsplit(parts._replace(netloc=netloc)), unquote(parts.password)
