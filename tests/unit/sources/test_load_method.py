"""How a whole-database restore loads its dump: streamed into one transaction, or from a
file with pg_restore --jobs."""

from __future__ import annotations

import pytest

from lifeboat.repo.manifest import Evidence, Manifest
from lifeboat.sources.postgres.logical_restore import load_method
from tests.unit.repo.test_repository import make_manifest

pytestmark = pytest.mark.unit


def backup(sizes: dict[str, int], *, indexes: int = 2) -> Manifest:
    tables = sorted(sizes) or ["public.t"]
    return make_manifest(
        evidence=Evidence(
            row_counts=dict.fromkeys(tables, 10),
            indexes=[f"public.t.i{n}" for n in range(indexes)],
            constraints=[],
            table_bytes=sizes,
        )
    )


def test_one_job_streams() -> None:
    assert load_method(backup({"public.a": 50, "public.b": 50}), 1) == "stream"


def test_a_table_holding_nine_tenths_of_the_data_streams() -> None:
    assert load_method(backup({"public.big": 90, "public.small": 10}), 4) == "stream"
    assert load_method(backup({"public.big": 89, "public.small": 11}), 4) == "parallel"


def test_data_spread_over_tables_goes_to_jobs() -> None:
    assert load_method(backup({"public.a": 60, "public.b": 30, "public.c": 10}), 2) == "parallel"


def test_a_backup_without_table_sizes_goes_to_jobs_as_before() -> None:
    assert load_method(backup({}), 2) == "parallel"
    assert load_method(backup({"public.a": 0, "public.b": 0}), 2) == "parallel"


def test_a_lock_table_too_small_for_one_transaction_goes_to_jobs() -> None:
    many_indexes = backup({"public.big": 100}, indexes=4000)
    assert load_method(many_indexes, 2) == "stream"  # the server's lock table unknown
    assert load_method(many_indexes, 2, lock_capacity=64 * 100) == "parallel"
    assert load_method(many_indexes, 2, lock_capacity=64 * 1000) == "stream"
