"""TOML + ${ENV} interpolation -> validated LifeboatConfig, with one-line errors."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from lifeboat.config.model import SOURCE_TYPES, LifeboatConfig
from lifeboat.config.paths import CONFIG_ENV, DEFAULT_CONFIG, resolve_config_path
from lifeboat.config.variables import expand_dsn, expand_variables
from lifeboat.errors import ConfigError

__all__ = ["CONFIG_ENV", "DEFAULT_CONFIG", "load_config", "resolve_config_path"]


def _is_dsn(where: str) -> bool:
    # sources.NAME.dsn (and a Redis source's url): its references are parameter values, not
    # text (see expand_dsn)
    return where.startswith("sources.") and where.endswith((".dsn", ".drill.target_dsn", ".url"))


def _interpolate(value: Any, where: str, path: Path) -> Any:
    if isinstance(value, str):
        if _is_dsn(where):
            return expand_dsn(value, f"{path}: {where}")
        return expand_variables(value, f"{path}: {where}")
    if isinstance(value, dict):
        return {k: _interpolate(v, f"{where}.{k}" if where else k, path) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, f"{where}[{i}]", path) for i, v in enumerate(value)]
    return value


def _describe(error: ValidationError, path: Path) -> str:
    parts = []
    for item in error.errors():
        loc = [str(p) for p in item["loc"] if not str(p).startswith("function-")]
        source_type = None
        if len(loc) > 2 and loc[0] == "sources" and loc[2] in SOURCE_TYPES:
            # the union's tag: said in the message, not as a key of the file
            source_type = loc.pop(2)
        if item["type"] == "source_type":
            loc.append("type")
        key = ".".join(loc)
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key" + (
                f" for a {source_type} source" if source_type not in (None, "postgres") else ""
            )
        elif item["type"] == "missing":
            message = "missing required key"
        parts.append(f"{key}: {message}" if key else message)
    return f"{path}: " + "; ".join(parts)


def load_config(path: Path) -> LifeboatConfig:
    try:
        data = path.read_bytes()
        raw = tomllib.loads(data.decode("utf-8"))
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
        config = LifeboatConfig.model_validate(_interpolate(raw, "", path))
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None
    from lifeboat.config import cache
    from lifeboat.config.lean import LeanConfig

    cache.save(path, data, LeanConfig.from_config(config))
    return config
