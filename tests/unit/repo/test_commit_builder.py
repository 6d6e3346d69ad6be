"""build_manifest: one manifest builder for every kind of backup."""

from __future__ import annotations

from datetime import UTC, datetime

from lifeboat import __version__
from lifeboat.pipeline.crypto import AgeEncryptor, generate_age_identity
from lifeboat.repo.commit import build_manifest
from lifeboat.repo.manifest import (
    MANIFEST_FORMAT,
    Evidence,
    PostgresLogical,
    PostgresPhysical,
    Server,
    StoredObject,
    decode,
    encode,
)
from tests.unit.test_repository import WAL_POSITION

STARTED = datetime(2020, 1, 6, 3, 0, tzinfo=UTC)  # before any run of the test
SERVER = Server(version="17.2", version_num=170002, system_identifier="7351234567890123456")


def stored(name: str, data_format: str) -> StoredObject:
    return StoredObject(
        name=name,
        size=100,
        sha256="a" * 64,
        plain_size=400,
        plain_sha256="b" * 64,
        format=data_format,
    )


def test_a_logical_backup_gets_its_kind_its_details_and_the_common_fields() -> None:
    _, public = generate_age_identity()
    encryptor = AgeEncryptor([public])
    dump, roles = stored("dump.zst.age", "pg_dump-custom"), stored("globals.sql.zst.age", "g")
    details = PostgresLogical(
        server=SERVER,
        database="wms",
        evidence=Evidence(row_counts={"public.lots": 3}, indexes=[], constraints=[]),
        globals=roles.name,
    )
    manifest = build_manifest(
        source="wms",
        backup_id="20261206T030000.000000Z-0a1b",
        started=STARTED,
        details=details,
        objects=[dump, roles],
        compression_level=3,
        encryptor=encryptor,
        tools={"pg_dump": "pg_dump (PostgreSQL) 17.2"},
        labels={"ticket": "OPS-1"},
    )
    assert (manifest.format, manifest.kind, manifest.type) == (
        MANIFEST_FORMAT,
        "postgres-logical",
        "logical",
    )
    assert manifest.details is details
    assert manifest.tool == {"lifeboat": __version__, "pg_dump": "pg_dump (PostgreSQL) 17.2"}
    assert manifest.encryption.method == "age"
    assert manifest.encryption.recipients == [{"type": "age", "id": public}]
    assert manifest.compression.level == 3
    assert manifest.started_at == STARTED < manifest.finished_at
    assert manifest.labels == {"ticket": "OPS-1"}
    assert manifest.globals_object == roles
    assert decode(encode(manifest), "x") == manifest


def test_a_physical_backup_gets_its_kind_and_no_labels_unless_given() -> None:
    _, public = generate_age_identity()
    details = PostgresPhysical(server=SERVER, **dict(WAL_POSITION))
    manifest = build_manifest(
        source="wms",
        backup_id="20261206T030000.000000Z-0a1c",
        started=STARTED,
        details=details,
        objects=[stored("base.tar.zst.age", "pg_basebackup-tar")],
        compression_level=1,
        encryptor=AgeEncryptor([public]),
        tools={},
    )
    assert (manifest.kind, manifest.type, manifest.database) == (
        "postgres-physical",
        "physical",
        "",
    )
    assert manifest.physical is details and manifest.server == SERVER
    assert manifest.labels == {} and manifest.tool == {"lifeboat": __version__}
    assert decode(encode(manifest), "x") == manifest
