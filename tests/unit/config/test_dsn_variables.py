"""${NAME} in a DSN is one parameter value, whatever characters the value holds, and a
password taken from the environment never shows in an error line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from lifeboat.config.load import load_config
from lifeboat.config.variables import expand_dsn
from lifeboat.errors import ConfigError, DatabaseError
from lifeboat.postgres.conn import PgEndpoint
from lifeboat.util import redact as redact_module
from lifeboat.util.redact import redact
from tests.unit.config.sources import pg_source

from .test_config import MINIMAL, write

PASSWORDS = ["s3cr/et", "x y", "p@ss", "a:b", "it's", "back\\slash", "100%", "/@: '\\%"]
URI = "postgresql://restore:${PW}@db2:5433/postgres"
KEY_VALUE = "host=db2 port=5433 user=restore password=${PW} dbname=postgres"
QUOTED = "host=db2 port=5433 user=restore password='${PW}' dbname=postgres"
# the port is closed: connecting fails at once, with a line naming where
UNREACHABLE = "postgresql://restore:${PW}@127.0.0.1:1/postgres"


FORMS = pytest.mark.parametrize("dsn", [URI, KEY_VALUE, QUOTED])


@pytest.fixture(params=PASSWORDS)
def password(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each password, in the environment as PW."""
    value: str = request.param
    monkeypatch.setenv("PW", value)
    return value


@pytest.fixture(autouse=True)
def _no_secrets_left(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Secrets registered here are not redacted in the other tests' output."""
    monkeypatch.setattr(redact_module, "_SECRETS", set())
    yield


@FORMS
def test_a_password_from_the_environment_is_one_parameter(dsn: str, password: str) -> None:
    params = conninfo_to_dict(expand_dsn(dsn, "--target-dsn"))
    assert params == {
        "host": "db2",
        "port": "5433",
        "user": "restore",
        "password": password,
        "dbname": "postgres",
    }


def test_every_part_of_a_uri_may_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LB_DB", "my db/1")
    for unset in ("LB_USER", "LB_HOST", "LB_MODE"):
        monkeypatch.delenv(unset, raising=False)
    dsn = (
        "postgresql://${LB_USER:-back up}@${LB_HOST:-db.internal}:5432/${LB_DB}"
        "?sslmode=${LB_MODE:-prefer}"
    )
    params = conninfo_to_dict(expand_dsn(dsn, "dsn"))
    assert params == {
        "user": "back up",
        "host": "db.internal",
        "port": "5432",
        "dbname": "my db/1",
        "sslmode": "prefer",
    }


def test_a_dsn_that_is_one_reference_is_the_whole_dsn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LB_DSN", "host=db user=backup")
    assert expand_dsn("${LB_DSN}", "dsn") == "host=db user=backup"


def test_the_password_never_shows_when_the_server_cannot_be_reached(password: str) -> None:
    endpoint = PgEndpoint.from_dsn(expand_dsn(UNREACHABLE, "--target-dsn"))
    assert endpoint.params["host"] == "127.0.0.1" and endpoint.password == password
    with pytest.raises(DatabaseError) as raised:
        endpoint.connect()
    assert "restore@127.0.0.1:1/postgres" in str(raised.value)
    assert password not in redact(str(raised.value))


@FORMS
def test_the_password_never_shows_in_an_invalid_dsn_line(dsn: str, password: str) -> None:
    bogus = f"{dsn}?bogus=1" if dsn.startswith("postgresql:") else f"{dsn} bogus=1"
    with pytest.raises(ConfigError) as raised:
        PgEndpoint.from_dsn(expand_dsn(bogus, "--target-dsn"))
    line = redact(str(raised.value))  # as report_failure prints it
    assert "bogus" in line
    assert password not in line


@pytest.mark.parametrize("password", ["x y", "it's", "a\\ b"])
def test_redact_hides_a_key_value_password_with_escapes(password: str) -> None:
    # what libpq reads as one value, escaped or quoted, is hidden whole
    escaped = "".join("\\" + c if c in " '\\" else c for c in password)
    for text in (f"host=h password={escaped} dbname=d", f"host=h password='{escaped}' dbname=d"):
        assert redact(text) == "host=h password=*** dbname=d"


def test_the_config_file_dsn_takes_a_password_with_any_character(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LB_PW", "/@: '\\%")
    monkeypatch.setenv("LB_HOST", "db.example")
    text = MINIMAL.replace(
        "postgresql://backup@db.internal:5432/wms",
        "postgresql://backup:${LB_PW}@${LB_HOST}:5432/wms",
    )
    config = load_config(write(tmp_path, text))
    endpoint = PgEndpoint.from_dsn(pg_source(config, "wms").dsn)
    assert endpoint.password == "/@: '\\%"
    assert endpoint.params["host"] == "db.example"
    # taken from the environment into a password: hidden in any line, in whatever form
    assert redact(f"got {endpoint.password} back") == "got *** back"
