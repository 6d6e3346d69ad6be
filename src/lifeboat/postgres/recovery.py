"""Writing what makes a data directory recover: recovery settings in postgresql.auto.conf,
recovery.signal, the restore_command that fetches WAL through Lifeboat, tablespace_map.

Which target and which settings is decided elsewhere (policy/recovery.py); this module only
writes them the way PostgreSQL reads them."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

from lifeboat.errors import UsageError

AUTO_CONF = "postgresql.auto.conf"
RECOVERY_SIGNAL = "recovery.signal"
# files an earlier server left that would keep the restored one from starting cleanly
STALE_SERVER_FILES = ("postmaster.pid", "postmaster.opts")


def quote_setting(value: str) -> str:
    """A value quoted for postgresql.conf: quotes and backslashes doubled, as ALTER SYSTEM
    writes them (the parser reads a backslash as an escape)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def setting_lines(settings: Mapping[str, str]) -> list[str]:
    return [f"{key} = {quote_setting(value)}" for key, value in settings.items()]


def restore_command(
    lifeboat: str,
    source: str,
    *,
    config_path: Path | None,
    repository: str | None,
    staged_folder: str | None,
) -> str:
    """The restore_command that has `lifeboat wal-fetch` bring each WAL file; with a
    staged folder (relative to the data directory) a file already there costs a cp."""
    config = f" --config {shlex.quote(str(config_path.absolute()))}" if config_path else ""
    repo = f" --repo {shlex.quote(repository)}" if repository is not None else ""
    command = f"{shlex.quote(lifeboat)}{config} wal-fetch{repo} {shlex.quote(source)} %f %p"
    if staged_folder is not None:
        command = f"cp {staged_folder}/%f %p 2>/dev/null || {command}"
    return command


def configure_recovery(pgdata: Path, settings: Mapping[str, str], why: str) -> None:
    """Append settings to postgresql.auto.conf (the last word over postgresql.conf) under
    a comment saying why, ask for recovery with recovery.signal and remove an earlier
    server's pid files."""
    with open(pgdata / AUTO_CONF, "a", encoding="utf-8") as conf:
        conf.write(f"\n# {why}\n")
        conf.writelines(line + "\n" for line in setting_lines(settings))
    (pgdata / RECOVERY_SIGNAL).touch()
    for stale in STALE_SERVER_FILES:
        (pgdata / stale).unlink(missing_ok=True)


def write_tablespace_map(pgdata: Path, places: Sequence[tuple[int, Path]]) -> None:
    """Recovery recreates pg_tblspc's links from tablespace_map: it must name the new places
    (oid, folder), or the restored cluster would write into the original cluster's folders."""
    lines = []
    for oid, place in places:
        if "\n" in str(place) or "\r" in str(place):
            raise UsageError(f"tablespace folder {str(place)!r} contains a line break")
        lines.append(f"{oid} {place}\n")
    (pgdata / "tablespace_map").write_text("".join(lines), encoding="utf-8")
