"""Manifest format 2 (kind and per-kind details) is written; format 1, as the code before it
wrote it (tests/data/format1), is still read, keeps its checksum and is written back as it
was; a newer format or an unknown kind is refused in one line."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from lifeboat.errors import IntegrityError
from lifeboat.repo.manifest import (
    MANIFEST_FORMAT,
    Manifest,
    PostgresLogicalDetails,
    PostgresPhysicalDetails,
    decode,
    digest,
    document,
    encode,
)
from tests.unit.repo.test_commit_builder import logical_manifest, physical_manifest

BACKUPS = Path(__file__).parents[2] / "data" / "format1" / "repo" / "wms" / "backups"
LOGICAL = BACKUPS / "20261206T190035.570628Z-947c" / "manifest.json"
PHYSICAL = BACKUPS / "20261206T190037.071563Z-b840" / "manifest.json"


def signed(body: dict[str, Any]) -> bytes:
    """A manifest document with the checksum its body deserves (as encode makes it)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return json.dumps({**body, "checksum": hashlib.sha256(canonical.encode()).hexdigest()}).encode()


def test_a_format1_logical_manifest_reads_as_a_postgres_logical_backup() -> None:
    data = LOGICAL.read_bytes()
    manifest = decode(data, "format1")
    assert (manifest.format, manifest.kind, manifest.type) == (1, "postgres-logical", "logical")
    assert isinstance(manifest.details, PostgresLogicalDetails)
    assert manifest.database == "shop"
    assert manifest.checks.row_counts == {"public.item": 50, "public.orders": 120}
    assert manifest.server.version_num // 10000 == 15
    assert manifest.database_properties is not None
    assert manifest.database_properties.owner == "postgres"
    assert manifest.globals_object is not None
    assert manifest.globals_object.name == "globals.sql.zst.age"
    assert manifest.physical is None
    # the digest and the bytes written back are those of the document as stored
    assert digest(manifest) == json.loads(data)["checksum"]
    assert encode(manifest) == data


def test_a_format1_physical_manifest_reads_as_a_postgres_physical_backup() -> None:
    data = PHYSICAL.read_bytes()
    manifest = decode(data, "format1")
    assert (manifest.format, manifest.kind, manifest.type) == (1, "postgres-physical", "physical")
    assert isinstance(manifest.details, PostgresPhysicalDetails)
    assert manifest.physical is not None
    assert (manifest.physical.start_wal, manifest.physical.timeline) == (
        "000000010000000000000003",
        1,
    )
    assert manifest.database == "" and manifest.evidence is None
    assert manifest.globals_object is None
    with pytest.raises(IntegrityError, match="has no row counts"):
        manifest.checks  # noqa: B018 (the property raises)
    assert digest(manifest) == json.loads(data)["checksum"]
    assert encode(manifest) == data


def test_a_format1_manifest_that_was_changed_fails_its_checksum() -> None:
    body = json.loads(LOGICAL.read_bytes())
    body["database"] = "other"
    with pytest.raises(IntegrityError, match="does not match its embedded checksum"):
        decode(json.dumps(body).encode(), "format1")


def test_format2_keeps_the_postgres_facts_under_the_kinds_details() -> None:
    manifest = logical_manifest()
    body = document(manifest)
    assert (body["format"], body["kind"]) == (MANIFEST_FORMAT, "postgres-logical")
    assert not {"type", "server", "database", "evidence", "physical"} & set(body)
    assert body["details"]["database"] == "wms"
    assert body["details"]["server"]["version"] == "17.2"
    assert body["details"]["evidence"]["row_counts"] == {"public.lots": 3}
    assert body["details"]["globals"] == "globals.sql.zst.age"
    again = decode(encode(manifest), "x")
    assert again == manifest
    assert digest(again) == digest(manifest)


def test_format2_physical_details_carry_the_wal_position() -> None:
    manifest = physical_manifest()
    body = document(manifest)
    assert body["kind"] == "postgres-physical"
    assert body["details"]["start_wal"] == "000000010000000000000002"
    assert body["details"]["server"]["version_num"] == 170002
    assert decode(encode(manifest), "x") == manifest


def test_a_newer_format_is_refused_in_one_line() -> None:
    body = document(logical_manifest())
    body["format"] = MANIFEST_FORMAT + 1
    with pytest.raises(IntegrityError) as refused:
        decode(signed(body), "wms/backups/x/manifest.json")
    assert refused.value.message == (
        f"manifest wms/backups/x/manifest.json has format {MANIFEST_FORMAT + 1}: "
        "upgrade Lifeboat to read it"
    )


def test_an_unknown_kind_is_refused_in_one_line() -> None:
    body = document(logical_manifest())
    body["kind"] = "mongodb"
    with pytest.raises(IntegrityError) as refused:
        decode(signed(body), "x")
    assert refused.value.message == (
        "manifest x is of kind 'mongodb', which this Lifeboat does not know: "
        "upgrade Lifeboat to read it"
    )


def test_details_of_another_kind_are_refused() -> None:
    body = document(physical_manifest())
    body["kind"] = "postgres-logical"
    with pytest.raises(IntegrityError, match="manifest x is incomplete"):
        decode(signed(body), "x")


def test_details_must_match_the_kind_when_built_in_code() -> None:
    physical = physical_manifest()
    fields = {**physical.model_dump(), "kind": "postgres-logical", "details": physical.details}
    with pytest.raises(ValueError, match="details of postgres-physical in a postgres-logical"):
        Manifest.model_validate(fields)


def test_table_sizes_are_written_when_known_and_an_older_manifest_stays_as_it_was() -> None:
    """A format-2 manifest written before table sizes were recorded decodes, re-encodes
    to the same bytes, and keeps its checksum; one with sizes carries them."""
    older = logical_manifest()
    assert older.logical is not None and older.logical.evidence is not None
    assert older.logical.evidence.table_bytes == {}
    body = document(older)
    assert "table_bytes" not in json.dumps(body)
    assert "large_objects" not in json.dumps(body)
    assert encode(decode(encode(older), "older")) == encode(older)

    evidence = older.logical.evidence.model_copy(
        update={"table_bytes": {"public.item": 8192}, "large_objects": 0}
    )
    details = older.logical.model_copy(update={"evidence": evidence})
    sized = older.model_copy(update={"details": details})
    again = decode(encode(sized), "sized")
    assert again.checks.table_bytes == {"public.item": 8192}
    assert again.checks.large_objects == 0
