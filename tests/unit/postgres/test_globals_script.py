"""Reading pg_dumpall --globals-only output: each role's statements and the memberships."""

from __future__ import annotations

import pytest

from lifeboat.errors import RestoreError
from lifeboat.postgres.roles import identifier, parse_globals, statements

PG17_SCRIPT = """--
-- PostgreSQL database cluster dump
--

\\restrict F5DhO1m4XtGF9Ftl4owsitxas0fPsVpC7whmxpZD9fTbhtL6nmXmRVFUIyE9vOb

SET default_transaction_read_only = off;

SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;

--
-- Roles
--

CREATE ROLE postgres;
ALTER ROLE postgres WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS;
CREATE ROLE "report reader";
ALTER ROLE "report reader" WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB NOLOGIN;
CREATE ROLE "wms.app";
ALTER ROLE "wms.app" WITH NOSUPERUSER INHERIT LOGIN CONNECTION LIMIT 20;
CREATE ROLE "say ""hi"" x";
COMMENT ON ROLE "say ""hi"" x" IS 'a comment;
over two lines; with ''quotes''';
CREATE ROLE wms_owner;
CREATE ROLE "o'brien";

--
-- User Configurations
--

ALTER ROLE "wms.app" SET search_path TO 'public', 'Sales EU';

--
-- Role memberships
--

GRANT "report reader" TO "wms.app" WITH INHERIT TRUE GRANTED BY postgres;
GRANT pg_read_all_data TO wms_owner GRANTED BY "say ""hi"" x";
GRANT wms_owner TO "say ""hi"" x" WITH ADMIN OPTION;

\\unrestrict F5DhO1m4XtGF9Ftl4owsitxas0fPsVpC7whmxpZD9fTbhtL6nmXmRVFUIyE9vOb

--
-- PostgreSQL database cluster dump complete
--
"""


def test_each_role_gets_its_own_statements() -> None:
    parsed = parse_globals(PG17_SCRIPT)
    assert sorted(parsed.roles) == [
        "o'brien",
        "postgres",
        "report reader",
        'say "hi" x',
        "wms.app",
        "wms_owner",
    ]
    assert parsed.roles["wms.app"] == [
        'CREATE ROLE "wms.app";',
        'ALTER ROLE "wms.app" WITH NOSUPERUSER INHERIT LOGIN CONNECTION LIMIT 20;',
        "ALTER ROLE \"wms.app\" SET search_path TO 'public', 'Sales EU';",
    ]
    # a comment spanning lines, with semicolons and quotes in it, stays one statement
    assert parsed.roles['say "hi" x'][1] == (
        "COMMENT ON ROLE \"say \"\"hi\"\" x\" IS 'a comment;\nover two lines; with ''quotes''';"
    )


def test_memberships_lose_their_grantor() -> None:
    parsed = parse_globals(PG17_SCRIPT)
    assert [(m.role, m.member, m.statement) for m in parsed.memberships] == [
        ("report reader", "wms.app", 'GRANT "report reader" TO "wms.app" WITH INHERIT TRUE;'),
        ("pg_read_all_data", "wms_owner", "GRANT pg_read_all_data TO wms_owner;"),
        ("wms_owner", 'say "hi" x', 'GRANT wms_owner TO "say ""hi"" x" WITH ADMIN OPTION;'),
    ]


def test_settings_meta_commands_and_comments_are_not_statements_about_roles() -> None:
    found = list(statements(PG17_SCRIPT))
    assert found[0] == "SET default_transaction_read_only = off;"
    assert not any(s.startswith(("\\", "--")) for s in found)


@pytest.mark.parametrize(
    ("text", "name", "end"),
    [("wms_owner;", "wms_owner", 9), ('  "a ""b"" c" x', 'a "b" c', 13), ("Upper", "upper", 5)],
)
def test_identifiers_are_read_as_postgresql_reads_them(text: str, name: str, end: int) -> None:
    assert identifier(text, 0) == (name, end)


@pytest.mark.parametrize("script", ['CREATE ROLE "open;\n', "CREATE ROLE x\n"])
def test_a_truncated_script_is_an_error(script: str) -> None:
    with pytest.raises(RestoreError):
        parse_globals(script)


def test_a_grant_that_is_not_a_membership_is_an_error() -> None:
    with pytest.raises(RestoreError, match="cannot read the membership"):
        parse_globals("GRANT x ON y TO z;\n")


def test_privileges_on_parameters_are_not_memberships() -> None:
    """pg_dumpall (PostgreSQL 15+) writes GRANT ... ON PARAMETER among the globals: they
    are read past, not refused as a membership that cannot be read."""
    script = (
        "CREATE ROLE rdr;\n"
        "GRANT SET ON PARAMETER log_statement TO rdr;\n"
        'GRANT SET, ALTER SYSTEM ON PARAMETER "app.mode" TO "wms.app" WITH GRANT OPTION;\n'
        'GRANT "report reader" TO rdr WITH INHERIT TRUE GRANTED BY postgres;\n'
    )
    parsed = parse_globals(script)
    assert list(parsed.roles) == ["rdr"]
    assert [(m.role, m.member) for m in parsed.memberships] == [("report reader", "rdr")]
