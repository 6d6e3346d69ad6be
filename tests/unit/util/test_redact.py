"""Secrets never reach output: redact() and PgEndpoint."""

from __future__ import annotations

import pytest

from lifeboat.util.redact import hide_credentials, redact

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


def test_redact_hides_sslpassword() -> None:
    assert SECRET not in redact(f"host=db sslpassword={SECRET} dbname=wms")


# --- PgEndpoint --------------------------------------------------------------------------------


# --- hide_credentials --------------------------------------------------------------------------


def test_hide_credentials_removes_what_services_quote_of_a_request() -> None:
    line = (
        "PUT https://acme.blob.core.windows.net/c/k?sv=2022&sig=SECRET failed: "
        "{'access_token': 'SECRET', 'expires_in': 3599}, Authorization: Bearer SECRET"
    )
    hidden = hide_credentials(line)
    assert hidden == (
        "PUT https://acme.blob.core.windows.net/c/k failed: "
        "{'access_token': '***', 'expires_in': 3599}, Authorization: Bearer ***"
    )
