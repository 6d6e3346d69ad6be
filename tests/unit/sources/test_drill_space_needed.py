"""The free space a physical drill asks for before it fetches anything: the whole chain,
not the newest incremental alone."""

from __future__ import annotations

from lifeboat.repo.manifest import StoredObject
from lifeboat.sources.postgres.drill_physical import space_needed
from tests.unit.backups import physical_manifest, stored_entry

GB = 1024**3


def _object(plain_size: int) -> StoredObject:
    return stored_entry("base.tar", b"").model_copy(update={"plain_size": plain_size})


def test_a_full_backup_needs_its_plaintext() -> None:
    full = physical_manifest(1, objects=[_object(40 * GB)])
    assert space_needed([full]) == 40 * GB


def test_an_incremental_needs_its_chain_extracted_and_the_combined_cluster() -> None:
    full = physical_manifest(1, objects=[_object(40 * GB)])
    first = physical_manifest(25, full, objects=[_object(2 * GB)])
    second = physical_manifest(49, first, objects=[_object(1 * GB)])
    # the newest incremental alone is 1 GB: the drill writes 43 GB extracted, 40 combined
    assert space_needed([full, first, second]) == 83 * GB
