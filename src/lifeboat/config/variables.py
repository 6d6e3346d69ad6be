"""${NAME} and ${NAME:-default} in configuration values and DSN options, from the
environment: a secret can then stay out of the file and off the command line."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from urllib.parse import quote

from lifeboat.errors import ConfigError

REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")
URI_SCHEMES = ("postgresql://", "postgres://")
REDIS_SCHEMES = ("redis://", "rediss://")
# in a key=value DSN a backslash makes the next character literal, quoted value or not
_KEY_VALUE_SPECIAL = re.compile(r"([\\'\s])")


def expand_variables(
    text: str, where: str, encode: Callable[[str], str] = lambda value: value
) -> str:
    """text with every reference replaced once by encode(value) (a value is not expanded
    again); an unset variable without a default is a ConfigError naming where it was used."""

    def substitute(match: re.Match[str]) -> str:
        name = match["name"]
        if name in os.environ:
            return encode(os.environ[name])
        if match["default"] is not None:
            return encode(match["default"])
        raise ConfigError(f"{where}: environment variable {name} is not set")

    return REFERENCE.sub(substitute, text)


def expand_dsn(dsn: str, where: str) -> str:
    """A libpq DSN with its references expanded, each as one literal parameter value, so
    that any value works, a password holding / @ : space ' \\ or % included: percent-encoded
    in a URI (libpq decodes every part of one), backslash-escaped in a key=value string.
    A DSN that is one reference only is the variable's value as it stands: a whole DSN.
    A password that came from the environment is redacted from every line printed."""
    if REFERENCE.fullmatch(dsn):
        return expand_variables(dsn, where)
    if not REFERENCE.search(dsn):
        return dsn
    if dsn.lower().startswith(REDIS_SCHEMES):
        expanded = expand_variables(dsn, where, lambda value: quote(value, safe=""))
        _register_url_password(expanded)
        return expanded
    if dsn.lower().startswith(URI_SCHEMES):
        expanded = expand_variables(dsn, where, lambda value: quote(value, safe=""))
    else:
        expanded = expand_variables(dsn, where, _escape_key_value)
    _register_password(expanded)
    return expanded


def _register_url_password(url: str) -> None:
    from urllib.parse import unquote, urlsplit

    from lifeboat.util.redact import register_secret

    try:
        password = urlsplit(url).password
    except ValueError:
        return  # the url is refused, redacted, where it is used
    if password:
        register_secret(unquote(password))
        register_secret(password)


def _escape_key_value(value: str) -> str:
    return _KEY_VALUE_SPECIAL.sub(r"\\\1", value)


def _register_password(dsn: str) -> None:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    from lifeboat.util.redact import register_secret

    try:
        password = conninfo_to_dict(dsn).get("password")
    except psycopg.ProgrammingError:
        return  # the DSN is refused, redacted, where it is used
    if password:
        register_secret(str(password))


def written_password(dsn: str) -> bool:
    """Whether dsn spells out a password, rather than holding none or only a ${NAME}
    reference to expand from the environment. A DSN that does not parse says no: using it
    reports why."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        password = conninfo_to_dict(dsn).get("password")
    except psycopg.ProgrammingError:
        return False
    return bool(password) and REFERENCE.fullmatch(str(password)) is None
