"""What commands print on stdout: rich tables for people, JSON for programs."""

from __future__ import annotations

import json
import sys
from typing import Any

from lifeboat.util.progress import human_bytes


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")


def console() -> Any:
    from rich.console import Console

    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.table import Table

    grid = Table(title=title, show_edge=False, header_style="bold")
    for column in columns:
        grid.add_column(column)
    for row in rows:
        grid.add_row(*[str(cell) for cell in row])
    console().print(grid)


def size(n: int) -> str:
    return human_bytes(n)


def backup_type(kind: str, safety: bool) -> str:
    """A backup's type as tables show it: a restore's safety backup is marked as one."""
    return f"{kind} (safety)" if safety else kind


def labels(values: dict[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in values.items())
