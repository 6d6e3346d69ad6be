"""TOML + ${ENV} interpolation -> validated LifeboatConfig, with one-line errors."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from lifeboat.config.model import LifeboatConfig
from lifeboat.errors import ConfigError

DEFAULT_CONFIG = Path("lifeboat.toml")
CONFIG_ENV = "LIFEBOAT_CONFIG"
_ENV_REF = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


def resolve_config_path(cli_value: str | None) -> Path:
    if cli_value:
        return Path(cli_value)
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    return DEFAULT_CONFIG


def _interpolate(value: Any, where: str, path: Path) -> Any:
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name = match["name"]
            if name in os.environ:
                return os.environ[name]
            if match["default"] is not None:
                return match["default"]
            raise ConfigError(f"{path}: {where}: environment variable {name} is not set")

        return _ENV_REF.sub(substitute, value)
    if isinstance(value, dict):
        return {k: _interpolate(v, f"{where}.{k}" if where else k, path) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, f"{where}[{i}]", path) for i, v in enumerate(value)]
    return value


def _describe(error: ValidationError, path: Path) -> str:
    parts = []
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"] if not str(p).startswith("function-"))
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif item["type"] == "missing":
            message = "missing required key"
        parts.append(f"{key}: {message}" if key else message)
    return f"{path}: " + "; ".join(parts)


def load_config(path: Path) -> LifeboatConfig:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: config file not found (use --config, {CONFIG_ENV} or ./lifeboat.toml)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: config file is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return LifeboatConfig.model_validate(_interpolate(raw, "", path))
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None
