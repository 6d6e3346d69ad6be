"""Keep secrets out of everything Lifeboat prints or logs."""

from __future__ import annotations

import re

_URL_PASSWORD = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:@/\s]*):(?P<pw>[^@/\s]*)@", re.I
)
# a value is quoted ('...') or runs to the first space; in both a backslash escapes one character
_KV_PASSWORD = re.compile(
    r"(?P<key>\b(?:ssl)?password\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|(?:[^\s\\]|\\.)+)", re.I
)
# secrets known by value (a password taken from the environment), whatever text holds them
_SECRETS: set[str] = set()


def register_secret(secret: str) -> None:
    """From now on, redact() replaces secret wherever it appears."""
    if secret:
        _SECRETS.add(secret)


def redact(text: str) -> str:
    """Replace registered secrets, and passwords in URLs (user:secret@) and key=value DSNs,
    with ***."""
    for secret in sorted(_SECRETS, key=len, reverse=True):  # a longer one may hold a shorter
        text = text.replace(secret, "***")
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    return _KV_PASSWORD.sub(lambda m: f"{m['key']}***", text)
