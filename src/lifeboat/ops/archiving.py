"""Setting up WAL archiving and proving it works end to end."""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lifeboat.context import Context
from lifeboat.errors import DatabaseError, LifeboatError
from lifeboat.postgres import logical
from lifeboat.postgres.conn import PgEndpoint
from lifeboat.util.executable import lifeboat_executable
from lifeboat.wal.archive import is_archived
from lifeboat.wal.cluster_guard import refuse_other_cluster, server_identity

if TYPE_CHECKING:
    from lifeboat.wal.spool_paths import SpoolPaths


def async_spool(ctx: Context, source: str) -> SpoolPaths | None:
    """The spool of a source archiving asynchronously, else None."""
    from lifeboat.wal.spool_paths import SpoolPaths

    archive = ctx.lean.archive(source)
    return SpoolPaths(archive.spool) if archive.async_push else None


def wanted_settings(
    ctx: Context, source: str, archive_timeout: int = 60, server_version_num: int = 0
) -> dict[str, str]:
    config = shlex.quote(str(ctx.config_path.absolute()))
    command = f"{shlex.quote(lifeboat_executable())} --config {config} wal-push {source} %p"
    spool = async_spool(ctx, source)
    if spool is not None:
        # The async worker archives ready segments ahead of time and leaves a marker:
        # consuming it in the shell costs a millisecond, not a Python start.
        # While the worker is archiving this very segment, wait for it (at most 10 s) in
        # the shell too, rather than start Lifeboat to wait.
        marker = shlex.quote(str(spool.acknowledged)) + "/%f"
        busy = shlex.quote(str(spool.reading_ahead)) + "/%f"
        command = (
            f"n=0; while [ -f {busy} ] && [ $n -lt 1000 ]; do sleep 0.01; n=$((n+1)); done; "
            f"[ -f {marker} ] && rm {marker} || {command}"
        )
    settings = {
        "wal_level": "replica",
        "archive_mode": "on",
        "archive_command": command,
        "archive_timeout": str(archive_timeout),
        "max_wal_senders": "10",
    }
    if server_version_num >= 170000:
        settings["summarize_wal"] = "on"  # for `backup --type physical --incremental`
    return settings


@dataclass
class SettingCheck:
    name: str
    wanted: str
    current: str | None

    @property
    def ok(self) -> bool:
        if self.current is None:
            return False
        if self.name == "wal_level":
            return self.current in ("replica", "logical")
        if self.name == "max_wal_senders":
            return self.current.isdigit() and int(self.current) >= 2
        if self.name == "archive_mode":
            return self.current in ("on", "always")
        if self.name == "archive_timeout":
            return self.current not in ("0",)
        return self.current == self.wanted


def check_settings(ctx: Context, source: str) -> list[SettingCheck]:
    src = ctx.postgres_source(source, "WAL archiving")
    endpoint = PgEndpoint.from_dsn(src.dsn, src.password_file)
    with endpoint.connect(autocommit=True) as conn:
        row = conn.execute("SELECT current_setting('server_version_num')::int").fetchone()
        settings = wanted_settings(ctx, source, server_version_num=int(row[0]) if row else 0)
        current = {
            str(name): str(value)
            for name, value in conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)",
                (list(settings),),
            )
        }
    return [SettingCheck(name, value, current.get(name)) for name, value in settings.items()]


@dataclass
class ArchiveCheck:
    segment: str
    seconds: float
    archived_count: int
    failed_count: int
    last_failed_wal: str | None
    problems: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "segment": self.segment,
            "seconds": round(self.seconds, 3),
            "archived_count": self.archived_count,
            "failed_count": self.failed_count,
            "last_failed_wal": self.last_failed_wal,
            "problems": self.problems,
        }


def check_archiving(ctx: Context, source: str, timeout: float = 60.0) -> ArchiveCheck:
    """Switch to a new WAL segment and wait until the finished one is in the repository."""
    src = ctx.postgres_source(source, "WAL archiving")
    repos = ctx.repositories_for(source)
    for repo in repos:
        repo.ensure_initialised()
    endpoint = PgEndpoint.from_dsn(src.dsn, src.password_file)
    with endpoint.connect(autocommit=True) as conn:
        # the server's WAL would be refused: say that rather than time out waiting for it
        refuse_other_cluster(
            repos,
            source,
            server_identity(conn, logical.server_info(conn)),
            f"the server at {endpoint.describe()}",
        )
    problems = [
        f"{c.name} is {c.current!r}, want {c.wanted!r}"
        for c in check_settings(ctx, source)
        if not c.ok
    ]
    with endpoint.connect(autocommit=True) as conn:
        if any(p.startswith("archive_mode") for p in problems):
            raise LifeboatError(f"archiving is not set up on {endpoint.describe()}: {problems[0]}")
        try:
            # a record first, so that the switch always closes a segment with something in it
            conn.execute("SELECT pg_create_restore_point('lifeboat check')")
            # pg_switch_wal() returns the end of the segment it completed, which
            # pg_walfile_name() maps to that segment's name
            row = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
        except Exception as exc:
            raise DatabaseError(f"cannot switch WAL on {endpoint.describe()}: {exc}") from None
        assert row is not None
        segment = str(row[0])
        started = time.monotonic()
        waiting = list(repos)  # the segment must reach every repository of the source
        while waiting := [r for r in waiting if not is_archived(r.storage, source, segment)]:
            repo = waiting[0]
            if time.monotonic() - started > timeout:
                stats = conn.execute(
                    "SELECT last_failed_wal, last_failed_time::text FROM pg_stat_archiver"
                ).fetchone()
                failure = f"; last failure {stats[0]} at {stats[1]}" if stats and stats[0] else ""
                raise LifeboatError(
                    f"segment {segment} did not reach repository {repo.name} within "
                    f"{timeout:.0f} s{failure}: check archive_command and the server log"
                )
            time.sleep(0.1)
        seconds = time.monotonic() - started
        stats = conn.execute(
            "SELECT archived_count, failed_count, last_failed_wal FROM pg_stat_archiver"
        ).fetchone()
    assert stats is not None
    return ArchiveCheck(segment, seconds, int(stats[0]), int(stats[1]), stats[2], problems)
