"""Kubernetes manifests as YAML, without a YAML library: the documents are plain dicts,
lists, strings, integers and booleans. Strings are written double-quoted with JSON's
escapes (valid YAML), except a multi-line text, written as a literal block so that the
ConfigMap shows the config file as it is."""

from __future__ import annotations

import json
import re

Value = str | int | bool | list["Value"] | dict[str, "Value"]

# a literal block keeps the text exactly when no line needs escaping or has trailing
# spaces, and the text ends with one newline
_BLOCK_SAFE = re.compile(r"(?:[^\x00-\x08\x0b-\x1f\x7f\u0085\u2028\u2029\ufeff]*\n)+")
INDENT = "  "


def dump_all(documents: list[dict[str, Value]], header: list[str] | None = None) -> str:
    """Documents separated by ---, after the header's comment lines."""
    lines = [f"# {line}" if line else "#" for line in header or []]
    for number, document in enumerate(documents):
        if number or lines:
            lines.append("---")
        lines += _mapping(document, 0)
    return "\n".join(lines) + "\n"


def _scalar(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def _block(text: str, depth: int) -> list[str] | None:
    """A literal block scalar of text, or None when text cannot be one exactly."""
    if "\n" not in text or not _BLOCK_SAFE.fullmatch(text) or text.endswith("\n\n"):
        return None
    body = text[:-1].split("\n")
    if any(line != line.rstrip(" \t") for line in body) or body[0][:1] in (" ", "\t"):
        return None
    pad = INDENT * depth
    return ["|"] + [f"{pad}{line}" if line else "" for line in body]


def _mapping(mapping: dict[str, Value], depth: int) -> list[str]:
    pad = INDENT * depth
    if not mapping:
        return [f"{pad}{{}}"]
    lines: list[str] = []
    for key, value in mapping.items():
        lines += _entry(f"{pad}{_scalar(key) if _needs_quotes(key) else key}:", value, depth)
    return lines


def _entry(prefix: str, value: Value, depth: int) -> list[str]:
    if isinstance(value, dict):
        return [f"{prefix} {{}}"] if not value else [prefix, *_mapping(value, depth + 1)]
    if isinstance(value, list):
        return [f"{prefix} []"] if not value else [prefix, *_sequence(value, depth + 1)]
    if isinstance(value, str):
        block = _block(value, depth + 1)
        if block is not None:
            return [f"{prefix} {block[0]}", *block[1:]]
    return [f"{prefix} {_scalar(value)}"]


def _sequence(items: list[Value], depth: int) -> list[str]:
    pad = INDENT * depth
    lines: list[str] = []
    for item in items:
        if isinstance(item, dict) and item:
            inner = _mapping(item, depth + 1)
            # the first key goes on the dash's line
            lines.append(f"{pad}- {inner[0].lstrip()}")
            lines += inner[1:]
        else:
            lines += _entry(f"{pad}-", item, depth)
    return lines


def _needs_quotes(key: str) -> bool:
    return not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_./\-]*", key) or key.lower() in (
        "true", "false", "yes", "no", "on", "off", "null", "y", "n",
    )  # fmt: skip
