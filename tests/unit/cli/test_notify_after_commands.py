"""prune and verify, run as cron runs them, tell the configured webhook: a prune that
deleted backups, a verification that failed (once, however often it fails again), and
the verification that passes again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lifeboat.repo import layout
from lifeboat.repo.catalog import Repository
from lifeboat.repo.manifest import Manifest
from lifeboat.storage.local import LocalStorage
from tests.servers.receivers import HttpReceiver, http_receiver
from tests.unit.backups import physical_manifest, stored_entry
from tests.unit.helpers import run, write_config

DUMP = "dump.zst.age"


def commit_logical(repo: Repository, hours: int) -> Manifest:
    """A committed logical backup (it needs no WAL to verify) whose one object holds what
    its manifest says."""
    data = f"wms dump {hours}".encode()
    body = physical_manifest(hours, objects=[stored_entry(DUMP, data)]).model_dump(mode="json")
    body.update(
        kind="postgres-logical", details={"server": body["details"]["server"], "database": "wms"}
    )
    manifest = Manifest.model_validate(body)
    repo.storage.write(layout.object_key("wms", manifest.id, DUMP), [data])
    repo.save_manifest(manifest)
    return manifest


def sent(receiver: HttpReceiver) -> list[dict[str, object]]:
    return [json.loads(r.body) for r in receiver.received]


def test_prune_and_verify_notify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIFEBOAT_STATE_DIR", str(tmp_path / "state"))
    with http_receiver() as receiver:
        path = write_config(tmp_path)
        path.write_text(
            path.read_text()
            + "[retention]\nkeep_last = 1\n"
            + f'[notifications.hook]\ntype = "webhook"\nurl = "{receiver.url()}"\n'
        )
        assert run(["--config", str(path), "init"]) == 0
        repo = Repository("local", LocalStorage(tmp_path / "repo"))
        old, older, kept = (commit_logical(repo, hours) for hours in (0, 1, 2))

        assert run(["--config", str(path), "prune", "wms"]) == 0
        [pruned] = sent(receiver)
        assert pruned["event"] == "prune_applied"
        assert pruned["details"] == {
            "repository": "local",
            "deleted": f"{old.id}, {older.id}",
            "kept": 1,
            "wal_files_expired": 0,
        }

        stored = tmp_path / "repo" / layout.object_key("wms", kept.id, DUMP)
        good = stored.read_bytes()
        stored.write_bytes(b"damaged" + good[7:])
        assert run(["--config", str(path), "verify", "wms"]) == 1
        assert run(["--config", str(path), "verify", "wms"]) == 1
        stored.write_bytes(good)
        assert run(["--config", str(path), "verify", "wms"]) == 0
        assert run(["--config", str(path), "verify", "wms"]) == 0
    events = [(m["event"], m["recovered"]) for m in sent(receiver)]
    assert events == [
        ("prune_applied", False),
        ("verification_failed", False),
        ("verification_passed", True),
    ]
    assert kept.id in str(sent(receiver)[1]["summary"])
