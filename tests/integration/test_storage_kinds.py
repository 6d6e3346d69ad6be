"""Storage settings by kind of object come from the repository layer's classifier: storage
knows no layout, the code that opens a repository's storage hands it one."""

from __future__ import annotations

import pytest

from lifeboat.repo.layout import object_kind
from lifeboat.storage.options import KeyClassifier, ObjectKind, StorageOptions
from lifeboat.storage.registry import open_storage
from tests.servers import s3 as s3_servers

pytestmark = pytest.mark.integration

s3_endpoint = s3_servers.s3_endpoint
s3_storage_factory = s3_servers.s3_storage_factory

DATA_KEY = "wms/backups/20260101T000000Z/dump.zst.age"
META_KEY = "wms/backups/20260101T000000Z/manifest.json"
OPTIONS = StorageOptions(storage_class="STANDARD_IA")


def only_metadata(key: str) -> ObjectKind:
    return "metadata"


@pytest.mark.parametrize(
    ("classify", "expected"),
    [
        (object_kind, {DATA_KEY: "STANDARD_IA", META_KEY: "STANDARD"}),
        (only_metadata, {DATA_KEY: "STANDARD", META_KEY: "STANDARD"}),
    ],
)
def test_open_storage_sets_each_object_by_the_classifier_it_is_given(
    s3_storage_factory: s3_servers.StorageFactory,
    s3_endpoint: str,
    classify: KeyClassifier,
    expected: dict[str, str],
) -> None:
    bucket = s3_storage_factory("kinds").location.bucket
    url = s3_servers.repository_url(bucket, s3_endpoint)
    storage = open_storage(url, OPTIONS, classify=classify)
    for key in expected:
        storage.write(key, [b"payload"])
    admin = s3_servers.admin_client(s3_endpoint)
    found = {
        key: admin.head_object(Bucket=bucket, Key=f"repo/{key}").get("StorageClass", "STANDARD")
        for key in expected
    }
    assert found == expected
