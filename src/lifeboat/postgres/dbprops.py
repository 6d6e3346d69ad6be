"""A database's own properties (owner, encoding, locale, comment, ACL, settings) and the roles
its objects name: read when it is dumped, given back to the database a restore creates.

pg_dump writes these only for `pg_restore --create`, which recreates the database under its
original name; a restore into a scratch database that is then swapped in cannot use that, so
they travel in the manifest instead (the list follows pg_dump's dumpDatabase)."""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from lifeboat.errors import RestoreError
from lifeboat.postgres.facts import DatabaseGrant, DatabaseProperties, DatabaseSetting
from lifeboat.postgres.roles import quoted_name

log = logging.getLogger(__name__)

# Settings whose value is a list of (possibly quoted) names: pg_dump gives each element as
# its own literal, as a single literal would become one element (pg_dump's
# variable_is_guc_list_quote).
LIST_QUOTED_SETTINGS = frozenset(
    {
        "local_preload_libraries",
        "search_path",
        "session_preload_libraries",
        "shared_preload_libraries",
        "temp_tablespaces",
        "unix_socket_directories",
    }
)
DATABASE_PRIVILEGES = frozenset({"CONNECT", "CREATE", "TEMPORARY"})
_PROVIDERS = {"c": "libc", "i": "icu", "b": "builtin"}

_THIS_DATABASE = "(SELECT oid FROM pg_database WHERE datname = current_database())"

_PROPERTIES_SQL = """
SELECT to_jsonb(d)::text, pg_get_userbyid(d.datdba), pg_encoding_to_char(d.encoding),
       shobj_description(d.oid, 'pg_database'), d.datacl IS NULL
FROM pg_database d WHERE d.datname = current_database()
"""

_ACL_SQL = """
SELECT CASE a.grantee WHEN 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END,
       a.privilege_type, a.is_grantable
FROM pg_database d, aclexplode(d.datacl) a
WHERE d.datname = current_database()
ORDER BY 1 NULLS FIRST, 2
"""

_SETTINGS_SQL = f"""
SELECT CASE setrole WHEN 0 THEN NULL ELSE pg_get_userbyid(setrole) END, setconfig
FROM pg_db_role_setting WHERE setdatabase = {_THIS_DATABASE}
ORDER BY 1 NULLS FIRST
"""

# Owners ('o'), grantees ('a') and policy roles ('r') of the objects in this database.
_DEPENDENT_ROLES_SQL = f"""
SELECT DISTINCT deptype::text, pg_get_userbyid(refobjid)
FROM pg_shdepend
WHERE dbid = {_THIS_DATABASE} AND refclassid = 'pg_authid'::regclass
  AND deptype IN ('o', 'a', 'r')
ORDER BY 1, 2
"""

_NOT_EXTENSION_MEMBER = """NOT EXISTS (
    SELECT 1 FROM pg_depend e WHERE e.classid = {alias}.tableoid AND e.objid = {alias}.oid
    AND e.deptype = 'e')"""
_USER_NAMESPACE = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'"
)

# pg_shdepend leaves out the bootstrap superuser (it is pinned), yet pg_dump names it as the
# owner of what it owns: it is needed when it owns anything pg_dump dumps with an owner.
_BOOTSTRAP_OWNER_SQL = f"""
SELECT r.rolname FROM pg_roles r WHERE r.oid = 10 AND (
  EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relowner = 10 AND {_USER_NAMESPACE}
            AND {_NOT_EXTENSION_MEMBER.format(alias="c")})
  OR EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE p.proowner = 10 AND {_USER_NAMESPACE}
               AND {_NOT_EXTENSION_MEMBER.format(alias="p")})
  OR EXISTS (SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
             WHERE t.typowner = 10 AND t.typrelid = 0 AND {_USER_NAMESPACE}
               AND {_NOT_EXTENSION_MEMBER.format(alias="t")})
  OR EXISTS (SELECT 1 FROM pg_namespace n
             WHERE n.nspowner = 10 AND n.nspname <> 'public' AND {_USER_NAMESPACE}
               AND {_NOT_EXTENSION_MEMBER.format(alias="n")})
  OR EXISTS (SELECT 1 FROM pg_largeobject_metadata WHERE lomowner = 10))
"""


def read_properties(conn: psycopg.Connection[Any]) -> DatabaseProperties:
    """The properties of the connection's database, in the connection's transaction."""
    row = conn.execute(_PROPERTIES_SQL).fetchone()
    assert row is not None
    database: dict[str, Any] = json.loads(row[0])
    owner, encoding, comment, default_acl = str(row[1]), str(row[2]), row[3], bool(row[4])
    # the columns differ by version: datlocale (17) was daticulocale (15, 16)
    provider = _PROVIDERS.get(str(database.get("datlocprovider", "c")), "libc")
    locale = database.get("datlocale", database.get("daticulocale"))
    acl = None
    if not default_acl:
        acl = [
            DatabaseGrant(grantee=grantee, privilege=str(privilege), grantable=bool(grantable))
            for grantee, privilege, grantable in conn.execute(_ACL_SQL)
        ]
    settings = [
        DatabaseSetting(role=role, settings=list(values))
        for role, values in conn.execute(_SETTINGS_SQL)
    ]
    dependent: dict[str, set[str]] = {"o": {owner}, "a": set(), "r": set()}
    for kind, role in conn.execute(_DEPENDENT_ROLES_SQL):
        dependent[str(kind)].add(str(role))
    dependent["o"].update(str(r[0]) for r in conn.execute(_BOOTSTRAP_OWNER_SQL))
    # the owner's own entries in the database's ACL follow the owner (see apply_properties):
    # they do not make it a grantee, which --no-owner would still need
    dependent["a"].update(
        g.grantee for g in acl or [] if g.grantee is not None and g.grantee != owner
    )
    return DatabaseProperties(
        owner=owner,
        encoding=encoding,
        collate=str(database["datcollate"]),
        ctype=str(database["datctype"]),
        locale_provider=provider,  # type: ignore[arg-type]  # one of _PROVIDERS' values
        locale=locale if provider != "libc" else None,
        icu_rules=database.get("daticurules"),
        connection_limit=int(database["datconnlimit"]),
        comment=comment,
        acl=acl,
        settings=settings,
        owners=sorted(dependent["o"]),
        grantees=sorted(dependent["a"]),
        policy_roles=sorted(dependent["r"]),
    )


def creation_options(props: DatabaseProperties, server_major: int) -> sql.Composed:
    """`CREATE DATABASE` options that give a new database the original's encoding and
    locale; the locale provider is always named, as template0 may use another one."""
    literal = sql.Literal
    parts: list[sql.Composable] = [
        sql.SQL("ENCODING {} LC_COLLATE {} LC_CTYPE {}").format(
            literal(props.encoding), literal(props.collate), literal(props.ctype)
        )
    ]
    if server_major >= 15:
        parts.append(sql.SQL("LOCALE_PROVIDER {}").format(literal(props.locale_provider)))
        if props.locale_provider == "icu":
            parts.append(sql.SQL("ICU_LOCALE {}").format(literal(props.locale)))
            if props.icu_rules and server_major >= 16:
                parts.append(sql.SQL("ICU_RULES {}").format(literal(props.icu_rules)))
        elif props.locale_provider == "builtin":
            parts.append(sql.SQL("BUILTIN_LOCALE {}").format(literal(props.locale)))
    elif props.locale_provider != "libc":
        raise RestoreError(
            f"the backed-up database uses the {props.locale_provider} locale provider, which "
            f"PostgreSQL {server_major} lacks: restore into PostgreSQL 15 or newer"
        )
    return sql.SQL(" ").join(parts)


@dataclass(frozen=True)
class Ownership:
    """What a restore carries over besides the objects: their owners, their privileges."""

    owners: bool = True
    privileges: bool = True

    def pg_restore_flags(self) -> list[str]:
        return [
            *([] if self.owners else ["--no-owner"]),
            *([] if self.privileges else ["--no-privileges"]),
        ]


FULL_OWNERSHIP = Ownership()


def split_list_setting(value: str) -> list[str]:
    """The elements of a list setting as pg_db_role_setting holds it (`public, "Sales EU"`),
    as PostgreSQL's SplitGUCList reads it: comma-separated, double quotes around names that
    need them, "" for a quote inside."""
    elements: list[str] = []
    position, end = 0, len(value)
    while True:
        while position < end and value[position].isspace():
            position += 1
        if position >= end:
            return elements
        if value[position] == '"':
            quoted = quoted_name(value, position)
            if quoted is None:
                raise RestoreError(f"unterminated quoted name in the setting {value!r}")
            element, position = quoted
        else:
            start = position
            while position < end and value[position] != "," and not value[position].isspace():
                position += 1
            element = value[start:position]
        elements.append(element)
        while position < end and value[position].isspace():
            position += 1
        if position < end and value[position] != ",":
            raise RestoreError(f"cannot read the list setting {value!r} of the backup")
        position += 1


def setting_statement(database: str, role: str | None, setting: str) -> sql.Composed:
    """`ALTER DATABASE ... SET` (or `ALTER ROLE ... IN DATABASE ... SET`) for one
    `name=value` of pg_db_role_setting."""
    name, _, value = setting.partition("=")
    values = split_list_setting(value) if name.lower() in LIST_QUOTED_SETTINGS else [value]
    target = sql.SQL("DATABASE {}").format(sql.Identifier(database))
    if role is not None:
        target = sql.SQL("ROLE {} IN DATABASE {}").format(
            sql.Identifier(role), sql.Identifier(database)
        )
    return sql.SQL("ALTER {} SET {} TO {}").format(
        target, sql.Identifier(name), sql.SQL(", ").join(sql.Literal(v) for v in values)
    )


def grant_statements(database: str, acl: list[DatabaseGrant]) -> list[sql.Composed]:
    """GRANTs that rebuild an ACL on a database whose privileges were all revoked."""
    grouped: dict[tuple[str | None, bool], list[str]] = {}
    for grant in acl:
        if grant.privilege not in DATABASE_PRIVILEGES:
            raise RestoreError(f"unknown database privilege {grant.privilege!r} in the backup")
        grouped.setdefault((grant.grantee, grant.grantable), []).append(grant.privilege)
    statements = []
    for (grantee, grantable), privileges in grouped.items():
        statements.append(
            sql.SQL("GRANT {} ON DATABASE {} TO {}{}").format(
                sql.SQL(", ").join(sql.SQL(p) for p in sorted(privileges)),
                sql.Identifier(database),
                sql.SQL("PUBLIC") if grantee is None else sql.Identifier(grantee),
                sql.SQL(" WITH GRANT OPTION") if grantable else sql.SQL(""),
            )
        )
    return statements


def apply_properties(
    admin: psycopg.Connection[Any],
    database: str,
    props: DatabaseProperties,
    ownership: Ownership,
    skip_roles: Collection[str] = (),
) -> None:
    """Give `database` (created with creation_options) the original's owner, comment,
    connection limit, ACL and settings, in one transaction. Settings of `skip_roles` are
    left out (roles a restore without owners and privileges does not have), and so is,
    with a warning, a setting the server refuses."""
    ident = sql.Identifier(database)
    statements: list[sql.Composed] = []
    owner_now = props.owner
    if ownership.owners:
        statements.append(
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(ident, sql.Identifier(props.owner))
        )
    else:
        row = admin.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        assert row is not None
        owner_now = str(row[0])
    if props.comment is not None:
        statements.append(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(ident, sql.Literal(props.comment))
        )
    statements.append(
        sql.SQL("ALTER DATABASE {} CONNECTION LIMIT {}").format(
            ident, sql.SQL(str(int(props.connection_limit)))
        )
    )
    if ownership.privileges and props.acl is not None:
        statements.append(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(ident))
        statements.append(
            sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(ident, sql.Identifier(owner_now))
        )
        # an ACL is relative to its owner (pg_dump writes it so): with --no-owner, the
        # original owner's privileges are the new owner's, the restoring role's
        acl = [
            grant.model_copy(update={"grantee": owner_now})
            if grant.grantee == props.owner
            else grant
            for grant in props.acl
        ]
        statements += grant_statements(database, acl)
    settings: list[tuple[str, sql.Composed]] = []
    for entry in props.settings:
        if entry.role is not None and entry.role in skip_roles:
            continue
        for setting in entry.settings:
            described = setting if entry.role is None else f"{setting} of role {entry.role}"
            settings.append((described, setting_statement(database, entry.role, setting)))
    try:
        with admin.transaction():
            for statement in statements:
                admin.execute(statement)
            for described, statement in settings:
                try:
                    # a savepoint each: a parameter the target does not know (renamed or
                    # removed in a newer PostgreSQL) must not fail the restore of all the
                    # data, as it does not fail pg_restore --create
                    with admin.transaction():
                        admin.execute(statement)
                except psycopg.Error as exc:
                    log.warning(
                        "database setting %s left out: %s", described, exc.diag.message_primary
                    )
    except psycopg.Error as exc:
        raise RestoreError(
            f"cannot give the restored database its properties: {exc.diag.message_primary}"
        ) from None
