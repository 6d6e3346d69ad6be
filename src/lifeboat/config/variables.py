"""${NAME} and ${NAME:-default} in configuration values and DSN options, from the
environment: a secret can then stay out of the file and off the command line."""

from __future__ import annotations

import os
import re

from lifeboat.errors import ConfigError

REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


def expand_variables(text: str, where: str) -> str:
    """text with every reference replaced once (a value is not expanded again); an unset
    variable without a default is a ConfigError naming where it was used."""

    def substitute(match: re.Match[str]) -> str:
        name = match["name"]
        if name in os.environ:
            return os.environ[name]
        if match["default"] is not None:
            return match["default"]
        raise ConfigError(f"{where}: environment variable {name} is not set")

    return REFERENCE.sub(substitute, text)
