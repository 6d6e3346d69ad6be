"""The PostgreSQL kinds behind the Source protocol: what each says about its own backups."""

from __future__ import annotations

from lifeboat.repo.manifest import (
    Physical,
    PostgresLogicalDetails,
    PostgresPhysicalDetails,
    TablespaceEntry,
)
from lifeboat.sources.postgres.kinds import PostgresLogical, PostgresPhysical
from tests.unit.repo.test_repository import make_manifest


def test_each_kind_names_itself() -> None:
    assert PostgresLogical().kind == PostgresLogicalDetails.KIND == "postgres-logical"
    assert PostgresPhysical().kind == PostgresPhysicalDetails.KIND == "postgres-physical"


def test_a_logical_backup_is_described_by_its_database_and_evidence() -> None:
    manifest = make_manifest()
    assert manifest.evidence is not None
    described = PostgresLogical().describe(manifest)
    assert described == {
        "database": "wms",
        "tables": len(manifest.evidence.row_counts),
        "rows": sum(manifest.evidence.row_counts.values()),
    }
    assert described["tables"] != 0  # the manifest the test describes has tables


def test_a_physical_backup_is_described_by_its_place_in_the_wal() -> None:
    manifest = make_manifest(
        type="physical",
        database="",
        evidence=None,
        physical=Physical(
            timeline=2,
            start_lsn="0/FC000028",
            stop_lsn="0/FC000138",
            start_wal="0000000200000000000000FC",
            stop_wal="0000000200000000000000FC",
            segment_size=16 * 1024 * 1024,
            parent="20261205T000000Z",
            tablespaces=[
                TablespaceEntry(oid=16390, name="archive", location="/srv/ts", object="t.tar")
            ],
        ),
    )
    assert PostgresPhysical().describe(manifest) == {
        "timeline": 2,
        "start_lsn": "0/FC000028",
        "stop_lsn": "0/FC000138",
        "parent": "20261205T000000Z",
        "tablespaces": ["archive"],
    }
    # a manifest of the other kind has nothing physical to say
    assert PostgresPhysical().describe(make_manifest()) == {}
