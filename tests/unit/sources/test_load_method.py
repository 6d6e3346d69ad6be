"""How a whole-database restore onto a drill's scratch instance loads its dump: streamed
into one transaction, or from a file with pg_restore --jobs; and the lock table the
scratch instance gets for it."""

from __future__ import annotations

import pytest

from lifeboat.repo.manifest import Evidence, Manifest
from lifeboat.sources.postgres.drill_logical import (
    MAX_LOCKS_PER_TRANSACTION,
    lock_capacity,
    scratch_settings,
)
from lifeboat.sources.postgres.logical_restore import load_method, stream_locks
from tests.unit.repo.test_repository import make_manifest

pytestmark = pytest.mark.unit

ROOMY = 64 * 100  # PostgreSQL's default lock table


def backup(sizes: dict[str, int], *, indexes: int = 2, large_objects: int | None = 0) -> Manifest:
    tables = sorted(sizes) or ["public.t"]
    return make_manifest(
        evidence=Evidence(
            row_counts=dict.fromkeys(tables, 10),
            indexes=[f"public.t.i{n}" for n in range(indexes)],
            constraints=[],
            table_bytes=sizes,
            large_objects=large_objects,
        )
    )


def test_one_job_streams() -> None:
    assert load_method(backup({"public.a": 50, "public.b": 50}), 1, ROOMY) == "stream"


def test_a_table_holding_nine_tenths_of_the_data_streams() -> None:
    assert load_method(backup({"public.big": 90, "public.small": 10}), 4, ROOMY) == "stream"
    assert load_method(backup({"public.big": 89, "public.small": 11}), 4, ROOMY) == "parallel"


def test_data_spread_over_tables_goes_to_jobs() -> None:
    spread = backup({"public.a": 60, "public.b": 30, "public.c": 10})
    assert load_method(spread, 2, ROOMY) == "parallel"


def test_a_backup_without_the_counts_goes_to_jobs_as_before() -> None:
    assert load_method(backup({}), 1, ROOMY) == "parallel"
    assert load_method(backup({"public.a": 100}, large_objects=None), 1, ROOMY) == "parallel"
    assert load_method(backup({"public.a": 0, "public.b": 0}), 2, ROOMY) == "parallel"


def test_a_lock_table_too_small_for_one_transaction_goes_to_jobs() -> None:
    many_objects = backup({"public.big": 100}, indexes=4000)
    assert load_method(many_objects, 2, ROOMY) == "parallel"
    assert load_method(many_objects, 2, 64 * 1000) == "stream"
    # pg_dump sets each large object's owner: a lock each, held to the end
    many_large_objects = backup({"public.big": 100}, large_objects=20_000)
    assert load_method(many_large_objects, 2, ROOMY) == "parallel"


def test_the_scratch_instance_gets_the_lock_table_a_streamed_load_needs() -> None:
    small = backup({"public.big": 100})
    assert scratch_settings(small)["max_locks_per_transaction"] == "64"
    assert load_method(small, 2, lock_capacity(scratch_settings(small))) == "stream"

    lobs = backup({"public.big": 100}, large_objects=20_000)
    settings = scratch_settings(lobs)
    needed = stream_locks(lobs)
    assert needed is not None and lock_capacity(settings) >= 2 * needed
    assert load_method(lobs, 2, lock_capacity(settings)) == "stream"

    # beyond what a scratch instance's shared memory should take: loaded from a file
    huge = backup({"public.big": 100}, large_objects=10_000_000)
    assert scratch_settings(huge)["max_locks_per_transaction"] == str(MAX_LOCKS_PER_TRANSACTION)
    assert load_method(huge, 2, lock_capacity(scratch_settings(huge))) == "parallel"
