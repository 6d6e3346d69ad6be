"""The SQL a restore gives a database its properties with, and the roles it needs."""

from __future__ import annotations

import json

import pytest

from lifeboat.errors import RestoreError
from lifeboat.postgres.dbprops import (
    Ownership,
    creation_options,
    grant_statements,
    setting_statement,
    split_list_setting,
)
from lifeboat.repo.manifest import (
    DatabaseGrant,
    DatabaseProperties,
    DatabaseSetting,
    _digest,
    decode,
    encode,
)
from lifeboat.sources.postgres.restore_roles import needed_roles
from tests.unit.repo.test_repository import make_manifest


def props(**changes: object) -> DatabaseProperties:
    base: dict[str, object] = {
        "owner": "wms_owner",
        "encoding": "LATIN1",
        "collate": "C",
        "ctype": "C",
        "owners": ["wms_owner"],
        "grantees": ["report reader"],
        "settings": [DatabaseSetting(role="wms.app", settings=["work_mem=4MB"])],
    }
    return DatabaseProperties.model_validate({**base, **changes})


@pytest.mark.parametrize(
    ("stored", "elements"),
    [
        ('public, "Sales EU"', ["public", "Sales EU"]),
        ('"$user", public', ["$user", "public"]),
        ('"a ""quoted"" one",b', ['a "quoted" one', "b"]),
        ('""', [""]),
        ("", []),
        ("  x  ,  y  ", ["x", "y"]),
    ],
)
def test_list_settings_split_as_postgresql_reads_them(stored: str, elements: list[str]) -> None:
    assert split_list_setting(stored) == elements


@pytest.mark.parametrize("stored", ['"open', "a b, c"])
def test_an_unreadable_list_setting_is_an_error(stored: str) -> None:
    with pytest.raises(RestoreError, match="setting"):
        split_list_setting(stored)


def test_a_list_setting_gives_one_literal_per_element() -> None:
    statement = setting_statement("plant 2", "wms.app", 'search_path=public, "Sales EU"')
    assert statement.as_string(None) == (
        'ALTER ROLE "wms.app" IN DATABASE "plant 2" SET "search_path" TO \'public\', \'Sales EU\''
    )


def test_other_settings_keep_their_whole_value_in_one_literal() -> None:
    statement = setting_statement("d", None, "lifeboat.site=plant 2, 'north'")
    assert statement.as_string(None) == (
        "ALTER DATABASE \"d\" SET \"lifeboat.site\" TO 'plant 2, ''north'''"
    )


def test_grants_are_grouped_per_grantee_and_grant_option() -> None:
    acl = [
        DatabaseGrant(grantee=None, privilege="TEMPORARY"),
        DatabaseGrant(grantee="wms_owner", privilege="CONNECT", grantable=True),
        DatabaseGrant(grantee="wms_owner", privilege="CREATE", grantable=True),
        DatabaseGrant(grantee="report reader", privilege="CONNECT"),
    ]
    assert [s.as_string(None) for s in grant_statements("d", acl)] == [
        'GRANT TEMPORARY ON DATABASE "d" TO PUBLIC',
        'GRANT CONNECT, CREATE ON DATABASE "d" TO "wms_owner" WITH GRANT OPTION',
        'GRANT CONNECT ON DATABASE "d" TO "report reader"',
    ]


def test_a_privilege_that_is_not_a_database_privilege_is_refused() -> None:
    with pytest.raises(RestoreError, match="unknown database privilege"):
        grant_statements("d", [DatabaseGrant(grantee="x", privilege="CONNECT; DROP")])


def test_creation_options_name_the_locale_provider_where_the_server_has_one() -> None:
    icu = props(locale_provider="icu", locale="de-DE", icu_rules="&a < b")
    assert creation_options(icu, 16).as_string(None) == (
        "ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' LOCALE_PROVIDER 'icu' "
        "ICU_LOCALE 'de-DE' ICU_RULES '&a < b'"
    )
    assert "ICU_RULES" not in creation_options(icu, 15).as_string(None)
    builtin = props(locale_provider="builtin", locale="C.UTF-8")
    assert (
        creation_options(builtin, 17)
        .as_string(None)
        .endswith("LOCALE_PROVIDER 'builtin' BUILTIN_LOCALE 'C.UTF-8'")
    )
    # template0 may be ICU: libc is named too
    assert creation_options(props(), 15).as_string(None).endswith("LOCALE_PROVIDER 'libc'")
    assert creation_options(props(), 14).as_string(None) == (
        "ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'"
    )
    with pytest.raises(RestoreError, match="icu locale provider, which PostgreSQL 14 lacks"):
        creation_options(icu, 14)


def test_pg_restore_flags_follow_the_ownership_options() -> None:
    assert Ownership().pg_restore_flags() == []
    assert Ownership(owners=False).pg_restore_flags() == ["--no-owner"]
    assert Ownership(owners=False, privileges=False).pg_restore_flags() == [
        "--no-owner",
        "--no-privileges",
    ]


def test_needed_roles_follow_the_ownership_options() -> None:
    p = props(policy_roles=["auditor"])
    assert needed_roles(p, Ownership()) == {"wms_owner", "report reader", "wms.app", "auditor"}
    assert needed_roles(p, Ownership(owners=False)) == {"report reader", "wms.app", "auditor"}
    assert needed_roles(p, Ownership(privileges=False)) == {"wms_owner", "wms.app", "auditor"}
    # settings of absent roles are left out instead; policies are restored either way
    assert needed_roles(p, Ownership(owners=False, privileges=False)) == {"auditor"}


def test_a_manifest_without_properties_still_reads_and_one_with_them_round_trips() -> None:
    older = make_manifest(format=1, objects=make_manifest().objects[:1])
    body = json.loads(encode(older))
    assert "database_properties" in body  # null: present as a key once written by this version
    del body["database_properties"]
    body.pop("checksum")
    read = decode(json.dumps({**body, "checksum": _digest(body)}).encode(), "older")
    assert read.database_properties is None and read.globals_object is None

    newer = make_manifest(
        database_properties=props(acl=[DatabaseGrant(grantee=None, privilege="CONNECT")])
    )
    again = decode(encode(newer), "newer")
    assert again.database_properties == newer.database_properties
    assert again.globals_object is not None and again.globals_object.name == "globals.sql.zst.age"
