"""Async WAL archiving and fetch prefetch against real clusters archiving as `postgres`."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lifeboat.context import LeanContext
from lifeboat.wal.spool import queued
from lifeboat.wal.spool_paths import SpoolPaths
from tests.processes import kill_wal_workers, lock_holders, process_states, processes_running
from tests.waiting import wait_for

from .archiving import (
    RESTORE_LOG,
    Archiving,
    archiving_cluster,
    events,
    set_and_reload,
    stop_cluster,
)
from .versions import on_oldest_major


@dataclass
class AsyncArchiving:
    archiving: Archiving
    spool: SpoolPaths

    def status(self) -> dict[str, Any]:
        reports = json.loads(self.archiving.lifeboat("status", "wms", "--json").stdout)
        assert [r["source"] for r in reports] == ["wms"]
        report: dict[str, Any] = reports[0]
        return report

    def archived(self, name: str) -> bool:
        return any((self.archiving.home / "repo" / "wms" / "wal").rglob(f"{name}-*"))

    def switch_rounds(self, rounds: int, first_event: int) -> list[str]:
        """Commit ten rows and switch WAL, `rounds` times; the segments switched from."""
        switched = []
        for round_ in range(rounds):
            start = first_event + round_ * 10
            self.archiving.commit(start, start + 9)
            switched.append(
                self.archiving.cluster.psql("SELECT pg_walfile_name(pg_current_wal_lsn())")
            )
            self.archiving.switch_and_wait()  # with async: once it is in the spool
        return switched

    def restore_latest_and_count(self) -> tuple[list[int], str]:
        """Lose the cluster, restore it with --latest; its rows and the recovery log."""
        self.archiving.cluster.stop("immediate")
        shutil.rmtree(self.archiving.cluster.data_dir)
        pgdata = self.archiving.home / "restored"
        port, _ = self.archiving.restore_started(pgdata, "--latest")
        try:
            return events(port), (pgdata / RESTORE_LOG).read_text(errors="replace")
        finally:
            stop_cluster(pgdata, self.archiving.cluster.bin_dir)


@pytest.fixture
def async_archiving(pg_bin_dir: Path) -> Iterator[AsyncArchiving]:
    # the spool belongs to the server's OS user, who runs archive_command and restore_command
    spool_base = Path(tempfile.mkdtemp(prefix="lifeboat-spool-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(spool_base, owner.pw_uid, owner.pw_gid)
    archive = f'[sources.wms.archive]\nasync = true\nspool_dir = "{spool_base}"\nprefetch = 4\n'
    try:
        with archiving_cluster(pg_bin_dir, source_extra=archive) as archiving:
            spool = SpoolPaths(LeanContext.load(archiving.config).lean.archive("wms").spool)
            assert spool.root.parent == spool_base
            # the archive_command setup-archiving prints, with the read-ahead marker shortcut
            wanted = json.loads(archiving.lifeboat("setup-archiving", "wms", "--json").stdout)
            command = next(s["wanted"] for s in wanted if s["name"] == "archive_command")
            assert "/ok/%f ] && rm " in command
            set_and_reload(archiving.cluster, "archive_command", command)
            try:
                yield AsyncArchiving(archiving, spool)
            finally:
                kill_wal_workers(archiving.config)
    finally:
        shutil.rmtree(spool_base, ignore_errors=True)


@on_oldest_major  # the spool, its worker and the prefetch are Lifeboat's, whatever the server
def test_async_archiving_backs_up_and_restores_with_prefetch(
    async_archiving: AsyncArchiving,
) -> None:
    made = json.loads(
        async_archiving.archiving.lifeboat("backup", "wms", "--type", "physical", "--json").stdout
    )
    # more segments than restore stages before the server starts, so the rest comes
    # through wal-fetch and its prefetch
    switched = async_archiving.switch_rounds(14, first_event=1)
    # PostgreSQL counts them archived once spooled; the worker uploads them soon after
    wait_for(lambda: async_archiving.status()["spool"]["queued"] == 0, "an empty spool")
    for name in switched:
        assert async_archiving.archived(name), name
    spool = async_archiving.spool
    assert stat.S_IMODE(spool.outgoing.stat().st_mode) == 0o700

    report = async_archiving.status()
    assert report["repository"]["name"] == "local"
    assert report["newest_backup"]["id"] == made["id"]
    assert report["newest_backup"]["type"] == "physical"
    assert report["newest_backup"]["age_s"] >= 0
    assert report["newest_wal"]["segment"] >= switched[-1]
    assert report["spool"]["async"] is True
    assert report["spool"]["pushed_count"] >= len(switched)
    assert report["spool"]["last_pushed"]["segment"] >= switched[-1]
    assert report["spool"]["last_error"] is None
    assert report["repository_error"] is None

    rows, recovery_log = async_archiving.restore_latest_and_count()
    assert rows == list(range(1, 141))
    # recovery took segments the prefetcher had downloaded ahead
    assert "from the prefetch spool" in recovery_log, recovery_log[-3000:]
    assert stat.S_IMODE(spool.incoming.stat().st_mode) == 0o700
    for leftover in spool.incoming.iterdir():
        assert stat.S_IMODE(leftover.stat().st_mode) == 0o600


@pytest.mark.slow
@on_oldest_major  # the worker's crash safety is Lifeboat's, whatever the server's version
def test_a_worker_killed_while_failing_loses_no_wal(async_archiving: AsyncArchiving) -> None:
    archiving = async_archiving.archiving
    spool = async_archiving.spool
    archiving.lifeboat("backup", "wms", "--type", "physical")
    wal_root = archiving.home / "repo" / "wms" / "wal"
    folders = [wal_root, *(p for p in wal_root.rglob("*") if p.is_dir())]
    # the server's user may no longer write the archive: every upload fails
    for folder in folders:
        folder.chmod(0o500)
    try:
        stuck = async_archiving.switch_rounds(3, first_event=1)
        failing = wait_for(
            lambda: async_archiving.status()["spool"]["last_error"], "the worker's error"
        )
        assert failing["segment"] in stuck
        assert "Permission denied" in failing["message"] or "cannot" in failing["message"]
        report = async_archiving.status()
        assert report["spool"]["queued"] >= len(stuck)
        assert report["spool"]["worker_running"] is True
        assert report["spool"]["oldest_queued_age_s"] >= 0

        waiting = queued(spool.outgoing)
        worker = json.loads(spool.status_file.read_text())["pid"]
        assert worker in processes_running("--config", str(archiving.config), "wal-worker")
        kill_wal_workers(archiving.config)
        holders = lock_holders(spool.worker_lock)
        assert not holders, process_states(holders)
        assert queued(spool.outgoing) == waiting
        assert not any(async_archiving.archived(name) for name in stuck)
    finally:
        for folder in folders:
            folder.chmod(0o700)

    # the next archive_command starts a new worker, which uploads everything left
    more = async_archiving.switch_rounds(1, first_event=31)
    wait_for(lambda: async_archiving.status()["spool"]["queued"] == 0, "an empty spool")
    for name in [*stuck, *more]:
        assert async_archiving.archived(name), name
    assert async_archiving.status()["spool"]["last_error"] is None

    rows, _ = async_archiving.restore_latest_and_count()
    assert rows == list(range(1, 41))
