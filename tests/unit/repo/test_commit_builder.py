"""build_manifest: one manifest builder for every kind of backup. The manifests built here
serve the other manifest tests too."""

from __future__ import annotations

from datetime import UTC, datetime

from lifeboat import __version__
from lifeboat.pipeline.crypto import AgeEncryptor, generate_age_identity
from lifeboat.repo.commit import build_manifest
from lifeboat.repo.manifest import (
    MANIFEST_FORMAT,
    Evidence,
    Manifest,
    Physical,
    PostgresLogicalDetails,
    PostgresPhysicalDetails,
    Server,
    StoredObject,
    decode,
    encode,
)

STARTED = datetime(2020, 1, 6, 3, 0, tzinfo=UTC)  # before any run of the test
SERVER = Server(version="17.2", version_num=170002, system_identifier="7351234567890123456")
# where the physical backups made here sit in the WAL
WAL_POSITION = Physical(
    timeline=1,
    start_lsn="0/2000028",
    stop_lsn="0/2000100",
    start_wal="000000010000000000000002",
    stop_wal="000000010000000000000002",
    segment_size=16 * 1024 * 1024,
)
RECIPIENT = generate_age_identity()[1]


def stored(name: str, data_format: str) -> StoredObject:
    return StoredObject(
        name=name,
        size=100,
        sha256="a" * 64,
        plain_size=400,
        plain_sha256="b" * 64,
        format=data_format,
    )


def logical_manifest(labels: dict[str, str] | None = None) -> Manifest:
    roles = stored("globals.sql.zst.age", "pg_dumpall-globals")
    return build_manifest(
        source="wms",
        backup_id="20200106T030000.000000Z-0a1b",
        started=STARTED,
        details=PostgresLogicalDetails(
            server=SERVER,
            database="wms",
            evidence=Evidence(row_counts={"public.lots": 3}, indexes=[], constraints=[]),
            globals=roles.name,
        ),
        objects=[stored("dump.zst.age", "pg_dump-custom"), roles],
        compression_level=3,
        encryptor=AgeEncryptor([RECIPIENT]),
        tools={"pg_dump": "pg_dump (PostgreSQL) 17.2"},
        labels=labels,
    )


def physical_manifest() -> Manifest:
    return build_manifest(
        source="wms",
        backup_id="20200106T030000.000000Z-0a1c",
        started=STARTED,
        details=PostgresPhysicalDetails(server=SERVER, **dict(WAL_POSITION)),
        objects=[stored("base.tar.zst.age", "pg_basebackup-tar")],
        compression_level=1,
        encryptor=AgeEncryptor([RECIPIENT]),
        tools={},
    )


def test_a_logical_backup_gets_its_kind_its_details_and_the_common_fields() -> None:
    manifest = logical_manifest(labels={"ticket": "OPS-1"})
    assert (manifest.format, manifest.kind, manifest.type) == (
        MANIFEST_FORMAT,
        "postgres-logical",
        "logical",
    )
    assert isinstance(manifest.details, PostgresLogicalDetails)
    assert manifest.database == "wms" and manifest.server == SERVER
    assert manifest.checks.row_counts == {"public.lots": 3}
    assert manifest.tool == {"lifeboat": __version__, "pg_dump": "pg_dump (PostgreSQL) 17.2"}
    assert manifest.encryption.method == "age"
    assert manifest.encryption.recipients == [{"type": "age", "id": RECIPIENT}]
    assert manifest.compression.level == 3
    assert manifest.started_at == STARTED < manifest.finished_at
    assert manifest.labels == {"ticket": "OPS-1"}
    assert manifest.globals_object == manifest.objects[1]
    assert manifest.physical is None
    assert decode(encode(manifest), "x") == manifest


def test_a_physical_backup_gets_its_kind_and_no_labels_unless_given() -> None:
    manifest = physical_manifest()
    assert (manifest.kind, manifest.type, manifest.database) == (
        "postgres-physical",
        "physical",
        "",
    )
    assert isinstance(manifest.details, PostgresPhysicalDetails)
    assert manifest.physical is manifest.details and manifest.server == SERVER
    assert manifest.physical.start_wal == WAL_POSITION.start_wal
    assert manifest.evidence is None and manifest.globals_object is None
    assert manifest.labels == {} and manifest.tool == {"lifeboat": __version__}
    assert decode(encode(manifest), "x") == manifest
