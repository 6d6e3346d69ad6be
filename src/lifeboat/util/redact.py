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


# A query string can carry a credential (an Azure SAS token, a signed URL's signature, the
# upload_id that lets anyone write to a GCS resumable session): service messages lose it.
_URL_QUERY = re.compile(r"((?:https?://|/)[^\s?'\"]*)\?[^\s'\"]*?(?=[.,:;)]?(?:[\s'\"]|$))")
# credentials written as settings (connection strings, token answers, auth headers); a
# quoted value goes up to its closing quote (or the end of the line): the private_key of
# a service-account document holds spaces ("-----BEGIN PRIVATE KEY-----\nMII...")
_SECRET_SETTING = re.compile(
    r"\b(sig|signature|AccountKey|SharedAccessSignature|access_token|refresh_token|"
    r"id_token|client_secret|private_key|X-Goog-Signature|X-Amz-Signature|"
    r"X-Amz-Security-Token)(['\"]?\s*[=:]\s*)"
    r"(?:(['\"])(?:(?!\3).)*(\3?)|[^\s&;,'\"]+)",
    re.I,
)
_BEARER = re.compile(r"\b(Bearer|SharedKey)\s+[^\s,'\"]+", re.I)


def hide_credentials(line: str) -> str:
    """One line of what a service or the network said (an SDK's message, a traceback's
    line) without the credentials such text carries that redact() does not know by value:
    URL query strings, secrets written as settings, authorization headers."""
    line = _URL_QUERY.sub(r"\1", line)
    line = _SECRET_SETTING.sub(_hide_setting, line)
    return _BEARER.sub(lambda m: f"{m[1]} ***", line)


def _hide_setting(match: re.Match[str]) -> str:
    """A secret setting with its value replaced, keeping the quotes around it, if any."""
    return f"{match[1]}{match[2]}{match[3] or ''}***{match[4] or ''}"
