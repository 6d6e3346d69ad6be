"""Logging to stderr: plain lines or JSON lines, always with secrets redacted."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from lifeboat.util.redact import redact


class _PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return redact(f"{stamp} {record.levelname.lower()} {record.getMessage()}")


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": redact(record.getMessage()),
            }
        )


def configure(fmt: str, level: str, debug: bool) -> None:
    """fmt: auto (quiet on a terminal where progress bars show, plain otherwise), plain, json."""
    root = logging.getLogger("lifeboat")
    root.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    interactive = sys.stderr.isatty()
    handler.setFormatter(_JsonFormatter() if fmt == "json" else _PlainFormatter())
    root.addHandler(handler)
    root.propagate = False
    if debug:
        root.setLevel(logging.DEBUG)
    elif fmt == "auto" and interactive:
        root.setLevel(logging.WARNING)
    else:
        root.setLevel(getattr(logging, level.upper()))
