"""Find PostgreSQL's programs: client tools of the right major version, and the server
programs (initdb, pg_ctl, postgres) of every major version installed.

The one search order, for both: the directories of `LIFEBOAT_PG_BIN_DIRS`, of `PATH`, the
one `pg_config --bindir` names, then the usual install places (Debian's
/usr/lib/postgresql/*/bin, the PGDG RPMs' /usr/pgsql-*/bin, a source build's
/usr/local/pgsql/bin). A developer checkout's own build (scripts/setup.sh's .cache/pg17)
comes last, for the server programs only, and can be left out."""

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
SERVER_PROGRAMS = ("initdb", "pg_ctl", "postgres")
INSTALL_PLACES = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin")
_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")
# a hung `--version` on a loaded machine must not hang discovery for ever
_VERSION_TIMEOUT = 60


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
            [str(executable), "--version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_VERSION_TIMEOUT,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = _VERSION.search(out)
    if not match:
        return None
    return int(match[1]), f"{match[1]}.{match[2]}" if match[2] else match[1]


@cache
def _pg_config_bindir() -> tuple[Path, ...]:
    """The bin folder of the installation whose pg_config is on PATH (none without one)."""
    try:
        done = subprocess.run(
            ["pg_config", "--bindir"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_VERSION_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ()
    folder = done.stdout.strip()
    return (Path(folder),) if done.returncode == 0 and folder else ()


def checkout_root() -> Path | None:
    """The source checkout this package runs from (src/lifeboat in a folder with a
    pyproject.toml), or None when it is installed."""
    package = Path(__file__).resolve().parents[1]
    root = package.parents[1]
    if package == root / "src" / "lifeboat" and (root / "pyproject.toml").is_file():
        return root
    return None


def _checkout_cache() -> list[Path]:
    root = checkout_root()
    if root is None:
        return []
    cache_dir = root / ".cache" / "pg17"
    return [cache_dir / "bin", *sorted(cache_dir.glob("*/bin"))]


def candidate_dirs(*, checkout_cache: bool = False) -> list[Path]:
    """Every folder to look in, in order of preference, each once."""
    dirs: list[Path] = []
    for variable in (BIN_DIRS_ENV, "PATH"):
        dirs += [Path(entry) for entry in os.environ.get(variable, "").split(os.pathsep) if entry]
    dirs += _pg_config_bindir()
    for pattern in INSTALL_PLACES:
        dirs += [Path(p) for p in sorted(glob.glob(pattern))]
    if checkout_cache:
        dirs += _checkout_cache()
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


def is_server_bin_dir(path: Path) -> bool:
    return all(_is_executable(path / program) for program in SERVER_PROGRAMS)


def bin_dir_major(bin_dir: Path) -> int:
    """Major version (e.g. 15, 17) of the server in bin_dir, from `postgres --version`."""
    postgres = Path(bin_dir).resolve() / "postgres"
    found = tool_version(postgres)
    if found is None:
        raise ToolError(f"cannot tell the PostgreSQL version of {postgres} (postgres --version)")
    return found[0]


def find_bin_dirs(*, checkout_cache: bool = True) -> list[Path]:
    """Every usable server bin folder, one per major version, sorted by major.

    A folder qualifies when it holds executable initdb, pg_ctl and postgres. It is named
    by where its postgres really is, so a PATH folder of links (/usr/local/bin ->
    /usr/lib/postgresql/15/bin) gives the installation's folder, with its other tools. For
    equal majors the first found wins. `checkout_cache=False` leaves out a developer
    checkout's own build."""
    by_major: dict[int, Path] = {}
    for candidate in candidate_dirs(checkout_cache=checkout_cache):
        if not is_server_bin_dir(candidate):
            continue
        real = (candidate / "postgres").resolve().parent
        if real in by_major.values() or not is_server_bin_dir(real):
            continue
        found = tool_version(real / "postgres")
        if found is not None:
            by_major.setdefault(found[0], real)
    return [by_major[major] for major in sorted(by_major)]
