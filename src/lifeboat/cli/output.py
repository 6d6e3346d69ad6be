"""What commands print on stdout: rich tables for people, JSON for programs."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from lifeboat.util.progress import human_bytes


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")


def console() -> Any:
    from rich.console import Console

    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def table(
    title: str | None, columns: list[str], rows: list[list[Any]], whole: Sequence[str] = ()
) -> None:
    """rows under columns; the cells of the columns named in whole are never wrapped nor cut
    (ids), the others give way."""
    from rich.table import Table

    grid = Table(title=title, show_edge=False, header_style="bold")
    for column in columns:
        grid.add_column(column, no_wrap=column in whole)
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


def seconds(value: float | None) -> str:
    """A measured duration as people read it: 42.3s, 12m05s, 4h03m, 2d04h; — when none."""
    if value is None:
        return "—"
    if value < 60:
        return f"{value:.1f}s"
    whole = round(value)
    for unit, size, rest_unit, rest_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60)):
        if whole >= size:
            return f"{whole // size}{unit}{(whole % size) // rest_size:02d}{rest_unit}"
    return f"{whole // 60}m{whole % 60:02d}s"


def shortened(text: str, width: int) -> str:
    """text cut to width characters, an ellipsis marking the cut."""
    return text if len(text) <= width else text[: width - 1] + "…"
