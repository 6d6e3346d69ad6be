"""Find PostgreSQL client tools of the right major version."""

from __future__ import annotations

import glob
import os
import re
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from lifeboat.errors import ToolError

BIN_DIRS_ENV = "LIFEBOAT_PG_BIN_DIRS"
_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class PgTools:
    bin_dir: Path
    major: int
    version: str

    def path(self, tool: str) -> str:
        return str(self.bin_dir / tool)


@cache
def tool_version(executable: Path) -> tuple[int, str] | None:
    try:
        out = subprocess.run(
            [str(executable), "--version"], capture_output=True, text=True, timeout=15, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = _VERSION.search(out)
    if not match:
        return None
    return int(match[1]), f"{match[1]}.{match[2]}" if match[2] else match[1]


def candidate_dirs() -> list[Path]:
    dirs: list[Path] = []
    for entry in os.environ.get(BIN_DIRS_ENV, "").split(os.pathsep):
        if entry:
            dirs.append(Path(entry))
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if entry:
            dirs.append(Path(entry))
    for pattern in ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin"):
        dirs += [Path(p) for p in sorted(glob.glob(pattern))]
    unique: list[Path] = []
    for directory in dirs:
        if directory not in unique:
            unique.append(directory)
    return unique


def _is_executable(path: Path) -> bool:
    try:
        return path.is_file() and os.access(path, os.X_OK)
    except OSError:  # e.g. a PATH entry in a home folder this user may not enter
        return False


def _tools_in(directory: Path, tools: tuple[str, ...]) -> PgTools | None:
    if not all(_is_executable(directory / tool) for tool in tools):
        return None
    found = tool_version(directory / tools[0])
    if found is None:
        return None
    return PgTools(directory, found[0], found[1])


def find_tools(
    min_major: int,
    configured: Path | None = None,
    tools: tuple[str, ...] = ("pg_dump", "pg_restore"),
) -> PgTools:
    """The tools of the lowest major version >= min_major: a newer client reads older servers,
    and the lowest one keeps the archive readable by as many pg_restore versions as possible."""
    if configured is not None:
        chosen = _tools_in(configured, tools)
        if chosen is None:
            raise ToolError(f"pg_bin_dir {configured} does not hold {', '.join(tools)}")
        if chosen.major < min_major:
            raise ToolError(
                f"{tools[0]} {chosen.version} in {configured} "
                f"is too old for PostgreSQL {min_major}: "
                f"point pg_bin_dir at PostgreSQL {min_major} or newer client tools"
            )
        return chosen
    seen: list[PgTools] = []
    for directory in candidate_dirs():
        found = _tools_in(directory, tools)
        if found is not None:
            seen.append(found)
    fitting = [t for t in seen if t.major >= min_major]
    if not fitting:
        have = ", ".join(sorted({f"{t.major} ({t.bin_dir})" for t in seen})) or "none"
        raise ToolError(
            f"no {tools[0]} of PostgreSQL {min_major} or newer found (found: {have}); "
            f"install the PostgreSQL {min_major} client or set pg_bin_dir"
        )
    return min(fitting, key=lambda t: t.major)
