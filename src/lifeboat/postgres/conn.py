"""Connections to PostgreSQL with readable errors and no password on any command line."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifeboat.errors import ConfigError, DatabaseError
from lifeboat.util.redact import redact

if TYPE_CHECKING:
    import psycopg

CONNECT_TIMEOUT = 10


@dataclass(frozen=True)
class PgEndpoint:
    """Where a database lives, with its password kept apart from the DSN."""

    params: dict[str, Any]
    password: str | None = None

    @classmethod
    def from_dsn(cls, dsn: str, password_file: Path | None = None) -> PgEndpoint:
        # psycopg is imported where it is needed: it costs a restore 70 ms of start-up
        import psycopg
        from psycopg.conninfo import conninfo_to_dict

        try:
            params = conninfo_to_dict(dsn)
        except psycopg.ProgrammingError as exc:
            raise ConfigError(f"invalid DSN {redact(dsn)}: {exc}") from None
        if "sslpassword" in params:
            # libpq takes it only in the connection string, which pg_dump would show in `ps`
            raise ConfigError(
                f"DSN {redact(dsn)}: sslpassword is not supported, use an unencrypted client "
                "key readable only by this user"
            )
        password = params.pop("password", None)
        if password_file is not None:
            try:
                password = password_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"cannot read password_file {password_file}: {exc.strerror}"
                ) from None
        return cls(params, str(password) if password is not None else None)

    @property
    def dbname(self) -> str:
        # libpq's order: dbname, PGDATABASE, then the user name (user, PGUSER, OS user)
        name = (
            self.params.get("dbname")
            or os.environ.get("PGDATABASE")
            or self.params.get("user")
            or os.environ.get("PGUSER")
            or getpass.getuser()
        )
        return str(name)

    def with_dbname(self, dbname: str) -> PgEndpoint:
        return replace(self, params={**self.params, "dbname": dbname})

    def conninfo(self) -> str:
        """The DSN without the password: safe for a command line or a log."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo(**{k: str(v) for k, v in self.params.items()})

    def describe(self) -> str:
        host = self.params.get("host") or os.environ.get("PGHOST") or "local socket"
        port = self.params.get("port") or os.environ.get("PGPORT") or "5432"
        user = self.params.get("user") or os.environ.get("PGUSER") or ""
        who = f"{user}@" if user else ""
        return f"{who}{host}:{port}/{self.dbname}"

    def env(self) -> dict[str, str]:
        """Environment for pg_dump/pg_restore: the password travels here, never in argv."""
        env = dict(os.environ)
        if self.password is not None:
            env["PGPASSWORD"] = self.password
        env.setdefault("PGCONNECT_TIMEOUT", str(CONNECT_TIMEOUT))
        return env

    def connect(self, *, autocommit: bool = False) -> psycopg.Connection[Any]:
        import psycopg

        kwargs: dict[str, Any] = {
            "connect_timeout": CONNECT_TIMEOUT,
            "application_name": "lifeboat",
        }
        if self.password is not None:
            kwargs["password"] = self.password
        try:
            return psycopg.connect(self.conninfo(), autocommit=autocommit, **kwargs)
        except psycopg.OperationalError as exc:
            raise DatabaseError(explain_connect_error(str(exc), self.describe())) from None


def error_reason(exc: Exception) -> str:
    """The server's own message; an error without one (a lost connection, a Lifeboat
    error) gives the first line of its text."""
    import psycopg

    primary = exc.diag.message_primary if isinstance(exc, psycopg.Error) else None
    text = primary or str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def explain_connect_error(message: str, where: str) -> str:
    text = redact(message)
    lowered = text.lower()
    if (
        "password authentication failed" in lowered
        or "no password supplied" in lowered
        or ("authentication failed" in lowered)
    ):
        return (
            f"authentication failed for {where}: check the user and password "
            "(PGPASSWORD, ~/.pgpass or password_file)"
        )
    if 'database "' in lowered and "does not exist" in lowered:
        return f"database does not exist on {where}"
    if 'role "' in lowered and "does not exist" in lowered:
        return f"login role does not exist on {where}"
    if "no pg_hba.conf entry" in lowered:
        return f"the server at {where} refuses this connection (no pg_hba.conf entry)"
    first = next((line.strip() for line in text.splitlines() if line.strip()), text)
    return f"cannot reach database {where}: {first}"
