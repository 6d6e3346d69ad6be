"""Point-in-time recovery over an archive with a missing or damaged segment: found by
verify, refused before anything is written, recovered up to the gap when accepted, a
stopped server noticed at once, and recovery that ends short of the archive reported."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .archiving import (
    RESTORE_LOG,
    Archiving,
    archiving_cluster,
    events,
    hand_to_server_user,
    stop_cluster,
)
from .versions import on_oldest_major

# the gaps are found by Lifeboat in the archive, and the stops it reports are the server's
# FATAL lines, alike on every major since 13; recovery itself runs on each major in test_pitr
pytestmark = on_oldest_major

ROUNDS = 11
ROWS_PER_ROUND = 10


@dataclass
class History:
    """A base backup, then ROUNDS segments of ROWS_PER_ROUND commits each, archived."""

    archiving: Archiving
    # (segment, first row, last row) of each round, oldest first
    rounds: list[tuple[str, int, int]]
    backup: str

    def rows_before(self, segment: str) -> list[int]:
        return [
            i for name, first, last in self.rounds if name < segment for i in range(first, last + 1)
        ]


@pytest.fixture(scope="module")
def history(pg_bin_dir: Path) -> Iterator[History]:
    """One archiving cluster per module and PostgreSQL version: each test works on a copy
    of its repository (see repository_copy), so none sees another's damage."""
    with archiving_cluster(pg_bin_dir) as archiving:
        made = archiving.lifeboat("backup", "wms", "--type", "physical", "--json")
        rounds = []
        for round_ in range(ROUNDS):
            first = round_ * ROWS_PER_ROUND + 1
            archiving.commit(first, first + ROWS_PER_ROUND - 1, apart=True)
            segment = archiving.cluster.psql("SELECT pg_walfile_name(pg_current_wal_lsn())")
            archiving.switch_and_wait()
            rounds.append((segment, first, first + ROWS_PER_ROUND - 1))
        yield History(archiving, rounds, json.loads(made.stdout)["id"])


@pytest.fixture
def copy(history: History) -> Iterator[Archiving]:
    """The module's cluster with a repository of its own: a copy of the module's, owned by
    the server's OS user as the original is."""
    original = history.archiving
    place = Path(str(original.home / f"copy-{os.urandom(4).hex()}"))
    shutil.copytree(original.home / "repo", place / "repo", symlinks=True)
    config = place / "lifeboat.toml"
    config.write_text(
        original.config.read_text().replace(
            f'url = "{original.home / "repo"}"', f'url = "{place / "repo"}"'
        )
    )
    config.chmod(0o644)
    hand_to_server_user(place)
    yield dataclasses.replace(original, home=place, config=config)
    shutil.rmtree(place, ignore_errors=True)


def stored(archiving: Archiving, segment: str) -> Path:
    """The one stored object of an archived segment."""
    (found,) = (archiving.home / "repo" / "wms" / "wal").rglob(f"{segment}-*")
    return found


def failed_restore(archiving: Archiving, pgdata: Path, *options: str) -> tuple[str, str]:
    """`restore --start` that must fail, leaving no server running: its stderr, and the
    last line of it (the error). Archiving.lifeboat's own timeout, far below the 600 s
    recovery wait, guards a hang."""
    _, failed = archiving.restore_started(pgdata, *options, "--archive-mode", "off", check=False)
    server_left = (pgdata / "postmaster.pid").exists()
    stop_cluster(pgdata, archiving.cluster.bin_dir)
    assert failed.returncode == 1, failed.stderr
    assert not server_left
    return failed.stderr, failed.stderr.strip().splitlines()[-1]


def test_verify_reports_a_gap_in_the_wal_archive(history: History, copy: Archiving) -> None:
    assert copy.lifeboat("verify", "wms").returncode == 0
    gap = history.rounds[-2][0]
    stored(copy, gap).unlink()
    failed = copy.lifeboat("verify", "wms", check=False)
    assert failed.returncode == 1
    assert f"segment {gap} is missing" in failed.stderr


def test_restore_refuses_a_target_the_archive_cannot_reach(copy: Archiving) -> None:
    far = copy.cluster.psql("SELECT pg_current_wal_lsn() + 64 * 1024 * 1024")
    pgdata = copy.home / "unreachable"
    failed = copy.lifeboat("restore", "wms", "--pgdata", str(pgdata), "--to-lsn", far, check=False)
    assert failed.returncode == 1
    assert "the archive cannot reach LSN" in failed.stderr and "is missing" in failed.stderr
    assert not pgdata.exists() or not any(pgdata.iterdir())


def test_a_corrupted_wal_segment_is_detected_and_stops_recovery(
    history: History, copy: Archiving
) -> None:
    """The first segment after the backup, one bit flipped in its stored object: found by
    verify --deep, and recovery stops there rather than ending early and promoting."""
    shown = json.loads(copy.lifeboat("show", history.backup, "--json").stdout)
    stop_wal = shown["details"]["stop_wal"]
    after = sorted(
        p
        for p in (copy.home / "repo" / "wms" / "wal").rglob("0*.zst.age")
        if len(p.name.split("-")[0]) == 24 and p.name.split("-")[0] > stop_wal
    )
    victim = after[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))

    failed = copy.lifeboat("verify", "wms", "--deep", check=False)
    assert failed.returncode == 1
    assert victim.name in failed.stderr

    pgdata = copy.home / "stops"
    _, restore = copy.restore_started(pgdata, "--latest", check=False)
    try:
        assert restore.returncode == 1
        assert "exit code 255" in (pgdata / RESTORE_LOG).read_text()
        assert not (pgdata / "postmaster.pid").exists()
    finally:
        stop_cluster(pgdata, copy.cluster.bin_dir)


def test_latest_refuses_a_gap_and_accept_gap_recovers_up_to_it(
    history: History, copy: Archiving
) -> None:
    gap = history.rounds[5][0]
    before = history.rounds[4][0]
    stored(copy, gap).unlink()

    pgdata = copy.home / "refused"
    refused = copy.lifeboat("restore", "wms", "--pgdata", str(pgdata), "--latest", check=False)
    assert refused.returncode == 1
    (line,) = refused.stderr.strip().splitlines()[-1:]
    assert line.startswith("lifeboat: error: the WAL archive has a gap")
    assert f"segment {gap} is missing" in line and f"recovery stops at {before}" in line
    assert "--accept-gap" in line
    assert not pgdata.exists() or not any(pgdata.iterdir())

    configured = copy.lifeboat(
        "restore", "wms", "--pgdata", str(copy.home / "configured"), "--latest", "--accept-gap"
    )
    assert f"WAL gap accepted: recovers only up to {before}: segment {gap} is missing" in (
        configured.stdout
    )

    port, accepted = copy.restore_started(
        pgdata, "--latest", "--accept-gap", "--archive-mode", "off", "--json"
    )
    try:
        summary = json.loads(accepted.stdout)
        assert summary["gap"]["missing"] == gap
        assert summary["gap"]["recovers_up_to"] == before
        assert (
            summary["gap"]["message"] == f"recovers only up to {before}: segment {gap} is missing"
        )
        assert summary["archive_end"] == history.rounds[-1][0]
        assert summary["shortfall"] is None
        assert events(port) == history.rows_before(gap)
    finally:
        stop_cluster(pgdata, copy.cluster.bin_dir)


def test_a_time_before_the_gap_is_restored_and_one_beyond_it_refused(
    history: History, copy: Archiving
) -> None:
    gap = history.rounds[6][0]
    stored(copy, gap).unlink()
    _, first, _ = history.rounds[5]  # the last round before the gap
    beyond = history.rounds[8][1]

    pgdata = copy.home / "beyond"
    refused = copy.lifeboat(
        "restore",
        "wms",
        "--pgdata",
        str(pgdata),
        "--to-time",
        copy.commit_time(beyond),
        check=False,
    )
    assert refused.returncode == 1
    assert f"segment {gap} is missing" in refused.stderr
    assert not pgdata.exists() or not any(pgdata.iterdir())

    within = copy.home / "within"
    port, restored = copy.restore_started(
        within, "--to-time", copy.commit_time(first + 4), "--archive-mode", "off", "--json"
    )
    try:
        assert json.loads(restored.stdout)["gap"] is None
        assert events(port) == list(range(1, first + 5))
    finally:
        stop_cluster(within, copy.cluster.bin_dir)


def test_a_damaged_segment_late_in_the_archive_stops_start_at_once(
    history: History, copy: Archiving
) -> None:
    # beyond what restore stages before starting: the server reads it through wal-fetch
    victim = stored(copy, history.rounds[-2][0])
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))

    pgdata = copy.home / "damaged"
    stderr, error = failed_restore(copy, pgdata, "--latest")
    assert error.startswith("lifeboat: error: the restored cluster in")
    assert "could not restore file" in error and history.rounds[-2][0] in error
    # the server log's last lines come before it
    assert f"last 10 lines of {pgdata / 'lifeboat-restore.log'}" in stderr
    assert "shutting down" in stderr or "shut down" in stderr


def test_an_xid_beyond_an_accepted_gap_stops_the_server_which_is_reported(
    history: History, copy: Archiving
) -> None:
    """Where an xid lies is not known before replay: a gap anywhere is refused; with
    --accept-gap the target is kept, and the server, reaching the gap first, stops
    (PostgreSQL >= 13 does not promote short of its target)."""
    gap = history.rounds[4][0]
    stored(copy, gap).unlink()
    xid = copy.cluster.psql(f"SELECT xmin::text FROM events WHERE id = {history.rounds[6][1]}")
    pgdata = copy.home / "xid"
    refused = copy.lifeboat("restore", "wms", "--pgdata", str(pgdata), "--to-xid", xid, check=False)
    assert refused.returncode == 1
    assert "--to-xid may lie beyond it" in refused.stderr and gap in refused.stderr

    stderr, error = failed_restore(copy, pgdata, "--to-xid", xid, "--accept-gap")
    assert f"recovery can go no further than {history.rounds[3][0]}" in stderr
    assert "stopped during recovery" in error or "did not start" in error
    assert "recovery ended before configured recovery target was reached" in error


def test_a_time_after_the_archives_last_commit_stops_the_server_which_is_reported(
    history: History, copy: Archiving
) -> None:
    _, error = failed_restore(copy, copy.home / "future", "--to-time", "2999-01-01 00:00:00+00")
    assert "recovery ended before configured recovery target was reached" in error


def test_recovery_ending_before_the_archive_does_is_reported(
    history: History, copy: Archiving
) -> None:
    """A segment whose stored copy is intact but whose WAL is not (zeroed after its page
    header, as a file damaged before it was archived): recovery takes it for the end of
    the WAL and promotes there. restore reports the shortfall and exits 1."""
    segment = history.rounds[7][0]
    plain = copy.home / segment
    copy.lifeboat("wal-fetch", "wms", segment, str(plain))
    data = bytearray(plain.read_bytes())
    data[40:] = bytes(len(data) - 40)  # keep the long page header (40 bytes)
    plain.write_bytes(bytes(data))
    stored(copy, segment).unlink()
    copy.lifeboat("wal-push", "wms", str(plain))

    pgdata = copy.home / "short"
    _, result = copy.restore_started(
        pgdata, "--latest", "--archive-mode", "off", "--json", check=False
    )
    try:
        assert result.returncode == 1
        summary = json.loads(result.stdout)
        reached = history.rounds[6][0]
        assert summary["gap"] is None and summary["archive_end"] == history.rounds[-1][0]
        assert f"in segment {reached}, before the archive's WAL up to" in summary["shortfall"]
        assert result.stderr.strip().splitlines()[-1] == f"lifeboat: error: {summary['shortfall']}"
        port = int(summary["port"])
        assert events(port) == history.rows_before(segment)
    finally:
        stop_cluster(pgdata, copy.cluster.bin_dir)


def test_accept_gap_needs_pgdata(history: History) -> None:
    refused = history.archiving.lifeboat("restore", "wms", "--accept-gap", check=False)
    assert refused.returncode == 2
    assert "--accept-gap" in refused.stderr and "need --pgdata" in refused.stderr


def test_target_action_shutdown_waits_for_the_stop_and_tells_it_from_a_failure(
    history: History, copy: Archiving
) -> None:
    """With --target-action shutdown restore waits until the server is gone: a shutdown at
    the target is a success, a stop short of it (PostgreSQL's FATAL) is reported."""
    _, error = failed_restore(
        copy,
        copy.home / "unreachable",
        "--to-time",
        "2999-01-01 00:00:00+00",
        "--target-action",
        "shutdown",
    )
    assert "stopped during recovery" in error
    assert "recovery ended before configured recovery target was reached" in error

    pgdata = copy.home / "at-target"
    target = copy.commit_time(history.rounds[5][1])
    try:
        _, restored = copy.restore_started(
            pgdata, "--to-time", target, "--target-action", "shutdown", "--archive-mode", "off"
        )
        assert restored.returncode == 0
        assert not (pgdata / "postmaster.pid").exists()
        assert "shutdown at recovery target" in (pgdata / "lifeboat-restore.log").read_text()
    finally:
        stop_cluster(pgdata, copy.cluster.bin_dir)


def test_a_restored_server_that_asks_for_a_password_is_seen_to_finish(pg_bin_dir: Path) -> None:
    """The restored pg_hba.conf asks TCP connections for a password restore does not have:
    pg_control tells it that recovery ended, and it says it could not read where."""
    with archiving_cluster(pg_bin_dir, password="s3cret") as archiving:
        archiving.lifeboat("backup", "wms", "--type", "physical")
        archiving.commit(1, 5)
        archiving.switch_and_wait()
        pgdata = archiving.home / "restored"
        _, result = archiving.restore_started(pgdata, "--latest", "--archive-mode", "off", "--json")
        try:
            summary = json.loads(result.stdout)
            assert summary["started"] is True
            assert summary["recovered_point_read"] is False
            assert summary["recovered_to"] is None and summary["shortfall"] is None
            assert "has ended, but restore cannot connect to read where" in result.stderr
            assert "no password supplied" in result.stderr
            controldata = archiving.cluster.bin_dir / "pg_controldata"
            state = subprocess.run(
                [str(controldata), str(pgdata)], capture_output=True, text=True, check=True
            ).stdout
            assert "Database cluster state:               in production" in state
        finally:
            stop_cluster(pgdata, archiving.cluster.bin_dir)
