"""Where a server's WAL goes on from, as `backup --accept-new-cluster` asks it (the query
runs against real servers in tests/integration/test_cluster_identity.py)."""

from __future__ import annotations

import pytest

from lifeboat.errors import LifeboatError
from lifeboat.wal.cluster_guard import first_segment_to_archive

SIZE = 16 << 20


def test_the_segment_of_the_server_s_position() -> None:
    assert first_segment_to_archive("0/5000060", None, SIZE) == "000000010000000000000005"


def test_the_segment_the_archiver_keeps_failing_on_comes_first() -> None:
    failing = "000000010000000000000003"
    assert first_segment_to_archive("0/5000060", failing, SIZE) == failing
    assert first_segment_to_archive("0/5000060", "00000002.history", SIZE) == (
        "000000010000000000000005"
    )


def test_a_standby_without_a_position_says_so() -> None:
    with pytest.raises(LifeboatError) as caught:
        first_segment_to_archive(None, None, SIZE)
    assert "standby that has neither replayed nor received WAL yet" in str(caught.value)
