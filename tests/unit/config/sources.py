"""A configured source known to be a PostgreSQL one, for tests that read its DSN."""

from lifeboat.config.model import LifeboatConfig, PostgresSourceConfig


def pg_source(config: LifeboatConfig, name: str) -> PostgresSourceConfig:
    source = config.sources[name]
    assert isinstance(source, PostgresSourceConfig)
    return source
