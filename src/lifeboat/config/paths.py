"""Where the configuration file is: --config, else $LIFEBOAT_CONFIG, else ./lifeboat.toml."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_CONFIG = Path("lifeboat.toml")
CONFIG_ENV = "LIFEBOAT_CONFIG"


def resolve_config_path(cli_value: str | None) -> Path:
    if cli_value:
        return Path(cli_value)
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    return DEFAULT_CONFIG
