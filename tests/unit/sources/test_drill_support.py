"""What a drill needs before it restores anything: server binaries of the backup's major,
and a clock that splits its wall time into phases."""

from __future__ import annotations

import time

import pytest

from lifeboat.errors import ToolError
from lifeboat.sources.base import PhaseClock
from lifeboat.sources.postgres.drill_checks import scratch_bin_dir

pytestmark = pytest.mark.unit


def test_no_server_of_the_backups_major_is_one_line_naming_what_to_install() -> None:
    with pytest.raises(ToolError) as caught:
        scratch_bin_dir(9, None)
    message = caught.value.message
    assert message.startswith("a drill needs the PostgreSQL 9 server (initdb, pg_ctl, postgres)")
    assert "install postgresql-9 or set pg_bin_dir" in message


def test_phases_are_timed_in_order_and_rto_ends_when_the_database_is_ready() -> None:
    clock = PhaseClock(time.monotonic())
    assert clock.rto_seconds is None
    with clock.phase("restore"):
        pass
    clock.ready()
    with pytest.raises(RuntimeError), clock.phase("checks"):
        raise RuntimeError("a failing phase is timed too")
    assert [p.name for p in clock.phases] == ["prepare", "restore", "checks"]
    assert clock.rto_seconds is not None
    assert clock.rto_seconds >= clock.phases[0].seconds + clock.phases[1].seconds
