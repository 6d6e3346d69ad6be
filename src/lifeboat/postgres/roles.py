"""The cluster's roles as `pg_dumpall --globals-only` writes them, and creating the ones a
restore needs from that script."""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from lifeboat.errors import RestoreError
from lifeboat.pipeline.stream import ProcessOutput
from lifeboat.postgres.binaries import PgTools
from lifeboat.postgres.conn import PgEndpoint

log = logging.getLogger(__name__)

_UNQUOTED = re.compile(r"[A-Za-z_\x80-\uffff][A-Za-z0-9_$\x80-\uffff]*")
# statements about one role, its name right after the prefix
_ROLE_STATEMENTS = ("CREATE ROLE ", "ALTER ROLE ", "COMMENT ON ROLE ")
# privileges on settings (PostgreSQL 15+), their keywords in capitals as pg_dumpall writes
# them (a role name there would be lower case or quoted)
_PARAMETER_GRANT = re.compile(r"GRANT [A-Z ,]+ ON PARAMETER ")


class GlobalsStream(ProcessOutput):
    """`pg_dumpall --globals-only` on stdout: roles, memberships, role settings, tablespaces.

    Without passwords it reads pg_roles, which any role may; with them it reads
    pg_authid, which needs a superuser or a member of pg_read_all_data."""

    def __init__(self, tools: PgTools, endpoint: PgEndpoint, with_passwords: bool) -> None:
        command = [
            tools.path("pg_dumpall"),
            "--globals-only",
            "--no-password",
            *([] if with_passwords else ["--no-role-passwords"]),
            "--dbname",
            endpoint.conninfo(),
        ]
        super().__init__(command, endpoint.env(), "pg_dumpall")


@dataclass
class Membership:
    role: str
    member: str
    statement: str = field(repr=False)  # the GRANT, without its GRANTED BY


@dataclass
class Globals:
    """A globals script read: each role's own statements, and the memberships."""

    roles: dict[str, list[str]] = field(default_factory=dict)
    memberships: list[Membership] = field(default_factory=list)


def quoted_name(text: str, position: int) -> tuple[str, int] | None:
    """The double-quoted name starting at position ("" for a quote inside) -> (name,
    position after it); None when its closing quote is missing."""
    chars: list[str] = []
    position += 1
    while position < len(text):
        if text[position] == '"':
            if text.startswith('""', position):
                chars.append('"')
                position += 2
                continue
            return "".join(chars), position + 1
        chars.append(text[position])
        position += 1
    return None


def identifier(text: str, position: int) -> tuple[str, int]:
    """The SQL identifier at position (after spaces) -> (name, position after it)."""
    while position < len(text) and text[position].isspace():
        position += 1
    if text.startswith('"', position):
        quoted = quoted_name(text, position)
        if quoted is None:
            raise RestoreError(f"unterminated quoted name in the backup's roles: {text[:80]!r}")
        return quoted
    found = _UNQUOTED.match(text, position)
    if found is None:
        raise RestoreError(f"no role name where expected in the backup's roles: {text[:80]!r}")
    return found.group().lower(), found.end()


def statements(script: str) -> Iterator[str]:
    """The SQL statements of a pg_dumpall script, without comments and psql meta-commands.
    A statement ends with a line ending in `;` outside a string literal (literals, as in a
    role's comment, may span lines; standard_conforming_strings is on in these scripts)."""
    pending: list[str] = []
    for line in script.splitlines():
        if not pending and (not line.strip() or line.startswith(("--", "\\"))):
            continue
        pending.append(line)
        text = "\n".join(pending)
        if text.rstrip().endswith(";") and not _inside_quotes(text):
            yield text.strip()
            pending = []
    if pending:
        raise RestoreError("the backup's roles script ends inside a statement")


def _inside_quotes(text: str) -> bool:
    """Whether text ends inside a string literal or a quoted name (doubled quotes, the
    only escape in these scripts, toggle twice and so cancel out)."""
    open_quote = ""
    for char in text:
        if open_quote:
            if char == open_quote:
                open_quote = ""
        elif char in "'\"":
            open_quote = char
    return bool(open_quote)


def parse_globals(script: str) -> Globals:
    parsed = Globals()
    for statement in statements(script):
        for prefix in _ROLE_STATEMENTS:
            if statement.startswith(prefix):
                name, _ = identifier(statement, len(prefix))
                parsed.roles.setdefault(name, []).append(statement)
                break
        else:
            if statement.startswith("GRANT ") and not _PARAMETER_GRANT.match(statement):
                parsed.memberships.append(_membership(statement))
    return parsed


def _membership(statement: str) -> Membership:
    """`GRANT role TO member [WITH ...] [GRANTED BY grantor];` (pg_dumpall's other GRANTs,
    on parameters, are left to parse_globals). The grantor is left out: it need not exist
    where the role is created, and the restoring superuser grants in its stead."""
    role, position = identifier(statement, len("GRANT "))
    if not statement.startswith(" TO ", position):
        raise RestoreError(f"cannot read the membership {statement[:80]!r} of the backup")
    member, position = identifier(statement, position + len(" TO "))
    options = statement[position:].rstrip(";")
    options = options.split(" GRANTED BY ", 1)[0]  # only keywords come before it
    return Membership(role, member, statement[:position] + options + ";")


def existing_roles(admin: psycopg.Connection[Any], names: Iterable[str]) -> set[str]:
    rows = admin.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", (list(names),))
    return {str(row[0]) for row in rows}


def create_roles(admin: psycopg.Connection[Any], parsed: Globals, names: Collection[str]) -> None:
    """Create `names` with their attributes, settings and comments as the script has them,
    then the memberships of these new roles (existing roles are never altered), in one
    transaction: all of them or none. Every name must be in the script."""
    chosen = [s for name in sorted(names) for s in parsed.roles[name]]
    granted = {m.role for m in parsed.memberships if m.member in names}
    present = existing_roles(admin, granted) | set(names)
    chosen += [m.statement for m in parsed.memberships if m.member in names and m.role in present]
    try:
        with admin.transaction():
            for statement in chosen:
                admin.execute(statement.encode())  # as pg_dumpall wrote it, quoted by it
    except psycopg.Error as exc:
        raise RestoreError(
            f"cannot create roles {', '.join(sorted(names))}: {exc.diag.message_primary}"
        ) from None
    for name, powers in _powers(admin, names).items():
        log.warning("created role %s has %s, as in the backup", name, ", ".join(powers))
    # an existing login that was a member of a recreated group stays outside it: say how
    # to put it back, as adding it silently would alter a role that was already there
    members = existing_roles(admin, {m.member for m in parsed.memberships if m.role in names})
    for membership in parsed.memberships:
        if membership.role in names and membership.member in members - set(names):
            log.warning(
                "existing role %s was a member of the created role %s in the backup; "
                "left as it is (to restore it: %s)",
                membership.member,
                membership.role,
                membership.statement,
            )


def _powers(admin: psycopg.Connection[Any], names: Collection[str]) -> dict[str, list[str]]:
    """The attributes of `names` that reach beyond their own objects: worth a word when a
    restore creates such a role from a backup."""
    rows = admin.execute(
        "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls "
        "FROM pg_roles WHERE rolname = ANY(%s) ORDER BY 1",
        (list(names),),
    )
    labels = ("SUPERUSER", "CREATEROLE", "CREATEDB", "REPLICATION", "BYPASSRLS")
    found = {}
    for name, *flags in rows:
        powers = [label for label, flag in zip(labels, flags, strict=True) if flag]
        if powers:
            found[str(name)] = powers
    return found


def drop_roles(admin: psycopg.Connection[Any], names: Collection[str]) -> None:
    """Undo create_roles after a failed restore. Best effort: the failure being handled is
    what the user needs to see; roles that came to own something stay, with a warning."""
    try:
        with admin.transaction():
            for name in sorted(names):
                admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        log.warning(
            "roles %s created for the restore were left: %s",
            ", ".join(sorted(names)),
            exc.diag.message_primary,
        )
