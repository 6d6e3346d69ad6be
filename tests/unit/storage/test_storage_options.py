"""What a repository table tells its storage backend."""

from __future__ import annotations

import pytest

from lifeboat.config.model import RepositoryConfig
from lifeboat.errors import ConfigError
from lifeboat.repo.layout import object_kind
from lifeboat.storage.options import StorageOptions
from lifeboat.storage.registry import open_storage


def test_repository_table_becomes_storage_options() -> None:
    repo = RepositoryConfig.model_validate(
        {
            "url": "s3://acme/wms?region=eu-west-1",
            "storage_class": "STANDARD_IA",
            "server_side_encryption": "aws:kms",
            "object_lock_days": 2557,
            "part_size_mb": 32,
            "upload_concurrency": 2,
        }
    )
    assert repo.storage_options() == StorageOptions(
        storage_class="STANDARD_IA",
        server_side_encryption="aws:kms",
        object_lock_days=2557,
        part_size=32 * 1024 * 1024,
        upload_concurrency=2,
    )
    assert RepositoryConfig(url="/srv/backups").storage_options() == StorageOptions()


@pytest.mark.parametrize(
    "bad",
    [
        {"server_side_encryption": "rot13"},
        {"object_lock_days": 0},
        {"object_lock_mode": "FOREVER"},
        {"part_size_mb": 4},
        {"access_tier": "Lukewarm"},
    ],
)
def test_invalid_options_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RepositoryConfig.model_validate({"url": "s3://acme/wms", **bad})


def test_unknown_schemes_and_missing_buckets_are_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="unsupported scheme 'ftp'"):
        open_storage("ftp://host/backups", classify=object_kind)
    with pytest.raises(ConfigError, match="names no bucket"):
        open_storage("s3:///wms", classify=object_kind)
