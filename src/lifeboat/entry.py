"""The `lifeboat` executable.

PostgreSQL runs `wal-push` once per WAL segment and `wal-fetch` once per file it replays,
so their plain form (`lifeboat [--config FILE] wal-push SOURCE PATH`, as setup-archiving
prints it; `wal-fetch [--repo NAME] SOURCE NAME DEST`, as restore writes it) skips loading
the full command-line parser; anything else goes to it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NamedTuple

import lifeboat.util.clock  # noqa: F401  (early: it notes when the command started)

_POSITIONALS = {"wal-push": 2, "wal-fetch": 3}
# options the lean path takes after the command: restore_command names the repository a
# restore came from (`wal-fetch --repo NAME SOURCE %f %p`)
_COMMAND_OPTIONS = {"wal-fetch": ("--repo",)}


class WalCall(NamedTuple):
    config: str | None
    command: str
    positionals: list[str]
    repository: str | None = None


def plain_wal_call(args: list[str]) -> WalCall | None:
    """The call when args are exactly a plain wal-push/wal-fetch."""
    config: str | None = None
    rest = list(args)
    while rest and rest[0] != "--" and rest[0].startswith("-"):
        option = rest.pop(0)
        if option in ("--config", "-c") and rest:
            config = rest.pop(0)
        elif option.startswith("--config="):
            config = option.removeprefix("--config=")
        else:
            return None
    if not rest or rest[0] not in _POSITIONALS:
        return None
    command, positionals = rest[0], rest[1:]
    repository: str | None = None
    if positionals and positionals[0].split("=", 1)[0] in _COMMAND_OPTIONS.get(command, ()):
        option = positionals.pop(0)
        if "=" in option:
            repository = option.split("=", 1)[1]
        elif positionals:
            repository = positionals.pop(0)
        else:
            return None
    if len(positionals) != _POSITIONALS[command] or any(p.startswith("-") for p in positionals):
        return None
    return WalCall(config, command, positionals, repository)


def main() -> None:
    call = plain_wal_call(sys.argv[1:])
    if call is None:
        from lifeboat.cli.main import main as full_main
        from lifeboat.util.memory import keep_freed_memory

        keep_freed_memory()  # backups, restores and drills stream through large buffers
        full_main()
        return
    from lifeboat.cli import logsetup
    from lifeboat.errors import report_exception

    config, command, positionals, repository = call
    logsetup.configure("auto", "info", False)
    try:
        from lifeboat.wal import commands as wal_commands

        if command == "wal-push":
            wal_commands.wal_push(config, positionals[0], Path(positionals[1]))
        else:
            wal_commands.wal_fetch(
                config, positionals[0], positionals[1], Path(positionals[2]), repository
            )
    except (Exception, KeyboardInterrupt) as exc:
        sys.exit(report_exception(exc))
    sys.exit(0)
