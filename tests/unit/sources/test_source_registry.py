"""Which kind backs up and restores a source: by its type, and refusals in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifeboat.config.model import PostgresSourceConfig, RedisSourceConfig
from lifeboat.errors import UsageError
from lifeboat.sources.postgres.kinds import PostgresLogical, PostgresPhysical
from lifeboat.sources.registry import BackupOptions, backup_kind, path_kind

PG = PostgresSourceConfig(dsn="host=db dbname=wms")
REDIS = RedisSourceConfig(type="redis", url="redis://127.0.0.1:6379/0")


def test_a_postgres_source_backs_up_logically_unless_physical_is_asked() -> None:
    assert isinstance(backup_kind("wms", PG, BackupOptions()), PostgresLogical)
    assert isinstance(backup_kind("wms", PG, BackupOptions("logical")), PostgresLogical)
    physical = backup_kind("wms", PG, BackupOptions("physical", incremental=True))
    assert isinstance(physical, PostgresPhysical)
    assert physical.incremental


@pytest.mark.parametrize(
    ("config", "options", "refusal"),
    [
        (PG, BackupOptions(incremental=True), "--incremental needs --type physical"),
        (PG, BackupOptions("redis"), "--type is logical or physical"),
        (REDIS, BackupOptions("physical"), "is a redis source: --type physical is for PostgreSQL"),
        (REDIS, BackupOptions(incremental=True), "--incremental and --accept-new-cluster are"),
    ],
)
def test_options_of_another_kind_are_refused(
    config: PostgresSourceConfig | RedisSourceConfig, options: BackupOptions, refusal: str
) -> None:
    with pytest.raises(UsageError, match=refusal):
        backup_kind("s", config, options)


def test_a_postgres_source_is_not_restored_to_a_path() -> None:
    with pytest.raises(UsageError, match=r"restore it into a database .* or a data directory"):
        path_kind("wms", "postgres")


def test_restore_request_defaults_to_the_latest_backup_and_never_overwrites() -> None:
    from lifeboat.sources.base import PathRestoreRequest

    request = PathRestoreRequest(to=Path("/srv/restore"))
    assert (request.backup, request.assume_yes, request.paths) == ("latest", False, ())
