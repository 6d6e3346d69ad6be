"""${NAME} in a Redis source's url is one password, whatever characters it holds, and it
never shows in what Lifeboat prints."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lifeboat.config.model import RedisSourceConfig
from lifeboat.config.variables import expand_dsn
from lifeboat.sources.redis.server import RedisEndpoint
from lifeboat.util import redact as redact_module
from lifeboat.util.redact import redact

PASSWORDS = ["s3cr/et", "x y", "p@ss", "a:b", "100%", "/@: '\\%#?"]


@pytest.fixture(autouse=True)
def _no_secrets_left(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Secrets registered here are not redacted in the other tests' output."""
    monkeypatch.setattr(redact_module, "_SECRETS", set())
    yield


@pytest.mark.parametrize("password", PASSWORDS)
def test_a_password_from_the_environment_is_the_whole_password(
    password: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_PASSWORD", password)
    url = expand_dsn("redis://backup:${REDIS_PASSWORD}@cache.internal:6380/3", "sources.c.url")
    endpoint = RedisEndpoint.from_config(RedisSourceConfig(type="redis", url=url))
    assert (endpoint.username, endpoint.password) == ("backup", password)
    assert (endpoint.host, endpoint.port, endpoint.db) == ("cache.internal", 6380, 3)
    assert password not in redact(f"cannot reach {url}: said {password}")
