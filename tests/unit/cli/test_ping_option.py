"""`--ping URL` of the one-shot job commands, as an exported cron line or systemd unit runs
them: the dead-man's switch hears the start and the success, or the start and the failure
with the error line; a run without --ping pings nothing."""

from __future__ import annotations

from pathlib import Path

from lifeboat.repo import layout
from lifeboat.repo.catalog import Repository
from lifeboat.storage.local import LocalStorage
from tests.servers.receivers import http_receiver
from tests.unit.cli.test_notify_after_commands import DUMP, commit_logical
from tests.unit.helpers import run, write_config


def test_a_run_pings_its_start_and_its_end(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    path.write_text(path.read_text() + "[retention]\nkeep_last = 1\n")
    assert run(["--config", str(path), "init"]) == 0
    repo = Repository("local", LocalStorage(tmp_path / "repo"))
    for hours in (0, 1):
        commit_logical(repo, hours)
    with http_receiver() as receiver:
        check = receiver.url("/check/abc")
        assert run(["--config", str(path), "prune", "wms", "--ping", check]) == 0
        assert run(["--config", str(path), "verify", "wms", "--ping", check]) == 0
        assert [(r.method, r.path) for r in receiver.received] == [
            ("GET", "/check/abc/start"),
            ("GET", "/check/abc"),
        ] * 2

        # a run that finds damage exits 1: a failure ping with its error line
        kept = commit_logical(repo, 2)
        stored = tmp_path / "repo" / layout.object_key("wms", kept.id, DUMP)
        stored.write_bytes(b"damaged" + stored.read_bytes()[7:])
        received = len(receiver.received)
        assert run(["--config", str(path), "verify", "wms", "--ping", check]) == 1
        start, failure = receiver.received[received:]
        assert (start.method, start.path) == ("GET", "/check/abc/start")
        assert (failure.method, failure.path) == ("POST", "/check/abc/fail")
        assert b"1 backup(s) failed verification" in failure.body

        # a usage error is a failed run too
        received = len(receiver.received)
        assert run(["--config", str(path), "prune", "nosuch", "--ping", check]) == 2
        start, failure = receiver.received[received:]
        assert (start.method, start.path) == ("GET", "/check/abc/start")
        assert (failure.method, failure.path) == ("POST", "/check/abc/fail")
        assert b"unknown source 'nosuch'" in failure.body

        received = len(receiver.received)
        assert run(["--config", str(path), "verify", "wms"]) == 1
        assert receiver.received[received:] == []  # no --ping: nothing
