"""Secrets never reach output: redact(), strip_password() and PgEndpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifeboat.errors import ConfigError
from lifeboat.postgres.conn import PgEndpoint, explain_connect_error
from lifeboat.redact import redact, strip_password

SECRET = "s3cr3t-Pw"

# --- redact ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"postgresql://backup:{SECRET}@db.internal:5432/wms",
            "postgresql://backup:***@db.internal:5432/wms",
        ),
        (
            f"postgres://backup:{SECRET}@db/wms?sslmode=require",
            "postgres://backup:***@db/wms?sslmode=require",
        ),
        (f"postgresql://:{SECRET}@db/wms", "postgresql://:***@db/wms"),
        ("postgresql://backup:p%40ss%2F@db/wms", "postgresql://backup:***@db/wms"),
        (
            f"connecting to postgresql://a:{SECRET}@h1/x and postgresql://b:{SECRET}@h2/y now",
            "connecting to postgresql://a:***@h1/x and postgresql://b:***@h2/y now",
        ),
        (f"s3://key:{SECRET}@bucket/path", "s3://key:***@bucket/path"),
        (
            f"host=db user=backup password={SECRET} dbname=wms",
            "host=db user=backup password=*** dbname=wms",
        ),
        (f"host=db password = {SECRET} dbname=wms", "host=db password = *** dbname=wms"),
        (f"PASSWORD={SECRET}", "PASSWORD=***"),
        ("host=db password='two words' dbname=wms", "host=db password=*** dbname=wms"),
        (r"host=db password='it\'s secret' dbname=wms", "host=db password=*** dbname=wms"),
        (
            f"postgresql://backup@db/wms?password={SECRET}",
            "postgresql://backup@db/wms?password=***",
        ),
    ],
)
def test_redact_hides_passwords(text: str, expected: str) -> None:
    result = redact(text)
    assert result == expected
    for secret in (SECRET, "two words", "secret'", "p%40ss"):
        assert secret not in result


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://backup@db.internal:5432/wms",
        "postgresql://db.internal/wms",
        "postgresql:///wms?host=/var/run/postgresql",
        "host=db user=backup dbname=wms",
        'FATAL:  password authentication failed for user "backup"',
        "file:///var/backups/lifeboat",
        "12:30:45 backup finished",
        "",
    ],
)
def test_redact_leaves_passwordless_text_intact(text: str) -> None:
    assert redact(text) == text


@pytest.mark.xfail(
    strict=True,
    reason="redact() matches \\bpassword= only, so libpq's sslpassword=... (the client key "
    "passphrase) is printed in clear",
)
def test_redact_hides_sslpassword() -> None:
    assert SECRET not in redact(f"host=db sslpassword={SECRET} dbname=wms")


# --- strip_password --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dsn", "stripped", "password"),
    [
        (
            f"postgresql://backup:{SECRET}@db.internal:5432/wms",
            "postgresql://backup@db.internal:5432/wms",
            SECRET,
        ),
        (
            "postgresql://backup:p%40ss%3Aw@db/wms?sslmode=require",
            "postgresql://backup@db/wms?sslmode=require",
            "p@ss:w",
        ),
        (f"postgresql://:{SECRET}@db/wms", "postgresql://db/wms", SECRET),
        ("postgresql://backup@db:5432/wms", "postgresql://backup@db:5432/wms", None),
        ("postgresql:///wms", "postgresql:///wms", None),
        (f"host=db password={SECRET} dbname=wms", "host=db  dbname=wms", SECRET),
        (f"password={SECRET} host=db", "host=db", SECRET),
        ("host=db password='two words' dbname=wms", "host=db  dbname=wms", "two words"),
        ("host=db dbname=wms", "host=db dbname=wms", None),
    ],
)
def test_strip_password(dsn: str, stripped: str, password: str | None) -> None:
    assert strip_password(dsn) == (stripped, password)


def test_strip_password_output_has_no_secret() -> None:
    for dsn in (f"postgresql://u:{SECRET}@h/d", f"host=h password={SECRET}"):
        without, password = strip_password(dsn)
        assert SECRET not in without
        assert password == SECRET


@pytest.mark.xfail(
    strict=True,
    reason="strip_password rebuilds the netloc from parts.hostname, which drops the "
    "brackets of an IPv6 literal: postgresql://u@::1:5432/db",
)
def test_strip_password_ipv6_host() -> None:
    assert strip_password(f"postgresql://u:{SECRET}@[::1]:5432/db") == (
        "postgresql://u@[::1]:5432/db",
        SECRET,
    )


@pytest.mark.xfail(
    strict=True,
    reason="strip_password reads parts.port, which raises ValueError for a libpq "
    "multi-host URL (h1:5432,h2:5433)",
)
def test_strip_password_multi_host() -> None:
    assert strip_password(f"postgresql://u:{SECRET}@h1:5432,h2:5433/db") == (
        "postgresql://u@h1:5432,h2:5433/db",
        SECRET,
    )


@pytest.mark.xfail(
    strict=True,
    reason="strip_password only strips the surrounding quotes of a key=value password: "
    "password='it\\'s' comes back as it\\'s with the backslash",
)
def test_strip_password_unescapes_quoted_value() -> None:
    assert strip_password(r"host=db password='it\'s' dbname=wms")[1] == "it's"


# --- PgEndpoint --------------------------------------------------------------------------------


def test_endpoint_from_url_keeps_password_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    endpoint = PgEndpoint.from_dsn(f"postgresql://backup:{SECRET}@db.internal:5432/wms")
    conninfo = endpoint.conninfo()
    assert SECRET not in conninfo
    assert "password" not in conninfo
    assert "host=db.internal" in conninfo
    assert "dbname=wms" in conninfo
    assert "user=backup" in conninfo
    assert "port=5432" in conninfo
    assert endpoint.password == SECRET
    env = endpoint.env()
    assert env["PGPASSWORD"] == SECRET
    assert env["PGCONNECT_TIMEOUT"] == "10"
    assert SECRET not in repr(endpoint.params)
    assert endpoint.describe() == "backup@db.internal:5432/wms"
    assert endpoint.dbname == "wms"


def test_endpoint_from_keyword_dsn_with_quoted_password() -> None:
    endpoint = PgEndpoint.from_dsn("host=db user=backup password='two words' dbname=wms")
    assert endpoint.password == "two words"
    assert "two words" not in endpoint.conninfo()
    assert endpoint.env()["PGPASSWORD"] == "two words"


def test_endpoint_percent_encoded_password() -> None:
    endpoint = PgEndpoint.from_dsn("postgresql://backup:p%40ss%2Fw@db/wms")
    assert endpoint.password == "p@ss/w"
    assert "p%40ss" not in endpoint.conninfo()


def test_endpoint_without_password_leaves_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    endpoint = PgEndpoint.from_dsn("postgresql://backup@db/wms")
    assert endpoint.password is None
    assert "PGPASSWORD" not in endpoint.env()
    monkeypatch.setenv("PGPASSWORD", "from-environment")
    assert endpoint.env()["PGPASSWORD"] == "from-environment"


def test_endpoint_password_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "pw"
    secret_file.write_text(f"{SECRET}\n", encoding="utf-8")
    endpoint = PgEndpoint.from_dsn("postgresql://backup:ignored@db/wms", secret_file)
    assert endpoint.password == SECRET
    assert endpoint.env()["PGPASSWORD"] == SECRET
    assert SECRET not in endpoint.conninfo()
    assert "ignored" not in endpoint.conninfo()


def test_endpoint_missing_password_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        PgEndpoint.from_dsn("postgresql://backup@db/wms", tmp_path / "absent")
    assert "password_file" in str(caught.value)
    assert str(tmp_path / "absent") in str(caught.value)


def test_endpoint_invalid_dsn_is_redacted() -> None:
    with pytest.raises(ConfigError) as caught:
        PgEndpoint.from_dsn(f"host=db password={SECRET} bogus")
    assert SECRET not in str(caught.value)
    assert "invalid DSN" in str(caught.value)


def test_endpoint_with_dbname() -> None:
    endpoint = PgEndpoint.from_dsn(f"postgresql://backup:{SECRET}@db/wms")
    other = endpoint.with_dbname("postgres")
    assert other.dbname == "postgres"
    assert other.password == SECRET
    assert endpoint.dbname == "wms"
    assert "dbname=postgres" in other.conninfo()


@pytest.mark.xfail(
    strict=True,
    reason="PgEndpoint.from_dsn pops only 'password': sslpassword stays in conninfo(), "
    "which logical.py passes to pg_dump/pg_restore on the command line",
)
def test_endpoint_keeps_sslpassword_off_the_command_line() -> None:
    endpoint = PgEndpoint.from_dsn(f"host=db sslpassword={SECRET} dbname=wms")
    assert SECRET not in endpoint.conninfo()


# --- connection errors ------------------------------------------------------------------------

WHERE = "backup@db.internal:5432/wms"


@pytest.mark.parametrize(
    "message",
    [
        'connection to server at "db.internal" (10.0.0.5), port 5432 failed: FATAL:  '
        'password authentication failed for user "backup"',
        "fe_sendauth: no password supplied",
        'FATAL:  Ident authentication failed for user "backup"',
    ],
)
def test_explain_authentication_failure(message: str) -> None:
    text = explain_connect_error(message, WHERE)
    assert text.startswith(f"authentication failed for {WHERE}")
    assert "PGPASSWORD" in text


@pytest.mark.parametrize(
    ("message", "start"),
    [
        ('FATAL:  database "wms" does not exist', f"database does not exist on {WHERE}"),
        ('FATAL:  role "backup" does not exist', f"login role does not exist on {WHERE}"),
        (
            'FATAL:  no pg_hba.conf entry for host "10.0.0.9", user "backup"',
            f"the server at {WHERE} refuses",
        ),
        (
            "connection refused\n\tIs the server running on that host?",
            f"cannot reach database {WHERE}: connection refused",
        ),
    ],
)
def test_explain_other_failures(message: str, start: str) -> None:
    text = explain_connect_error(message, WHERE)
    assert text.startswith(start)
    assert "\n" not in text


@pytest.mark.parametrize(
    "message",
    [
        f'password authentication failed for user "backup" password={SECRET}',
        f"could not connect to postgresql://backup:{SECRET}@db/wms: timeout",
        f"invalid connection option password='{SECRET}' near x",
    ],
)
def test_explain_never_echoes_a_password(message: str) -> None:
    assert SECRET not in explain_connect_error(message, WHERE)
