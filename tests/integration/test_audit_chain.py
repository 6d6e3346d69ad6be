"""The hash-chained audit trail on real storage (a local repository and S3 on moto): every
kind of tampering is found and named by its first bad event, writers in several processes
never fork the chain nor lose an event, and anchors catch a chain rewritten as a whole.
The tampering is done as an attacker with write access would: through the storage itself."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifeboat.pipeline.crypto import write_identity
from lifeboat.repo import audit
from lifeboat.repo.catalog import Repository
from lifeboat.repo.layout import object_kind
from lifeboat.storage.base import Storage
from lifeboat.storage.registry import open_storage
from tests.servers import s3 as s3_servers
from tests.servers.s3 import StorageFactory

from .helpers import Workspace, error_line

pytestmark = pytest.mark.integration

s3_endpoint = s3_servers.s3_endpoint
s3_storage_factory = s3_servers.s3_storage_factory

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["local", "s3"])
def chain_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an initialised, empty repository of the kind under test."""
    if request.param == "local":
        url = str(tmp_path / "repo")
    else:
        factory: StorageFactory = request.getfixturevalue("s3_storage_factory")
        url = factory("audit-chain").url
    Repository("under-test", open_storage(url, classify=object_kind)).init()
    yield url


def chain_of(url: str, events: int) -> Storage:
    """The repository at url with a genesis and `events` hold events."""
    storage = open_storage(url, classify=object_kind)
    for n in range(events):
        audit.append(storage, "hold", source="wms", backup=f"b{n}", details={"n": n})
    return storage


def body_of(storage: Storage, sequence: int) -> dict[str, object]:
    with storage.read(audit.event_key(sequence)) as stream:
        body: dict[str, object] = json.loads(stream.read())
    return body


def put(storage: Storage, sequence: int, body: dict[str, object]) -> None:
    storage.delete(audit.event_key(sequence))
    storage.write(audit.event_key(sequence), [audit.canonical(body)])


def relinked(storage: Storage, sequence: int, body: dict[str, object]) -> dict[str, object]:
    """body as event `sequence`, linked to the event stored before it: a forger's work."""
    return {**body, "sequence": sequence, "prev": audit.digest(body_of(storage, sequence - 1))}


def problems(storage: Storage) -> tuple[int | None, list[str]]:
    report, _ = audit.verify_chain(storage)
    return report.first_bad, [p.what for p in report.problems]


def test_an_untouched_chain_is_whole(chain_url: str) -> None:
    storage = chain_of(chain_url, 5)
    report, _ = audit.verify_chain(storage)
    assert report.whole, report.problems
    assert report.events == 6  # the genesis, then the five
    assert report.head is not None and report.head.sequence == 5
    events = audit.read_events(storage)
    assert [e.event for e in events] == ["genesis"] + ["hold"] * 5
    assert [e.details.get("n") for e in events[1:]] == [0, 1, 2, 3, 4]


def test_a_deleted_event_is_named(chain_url: str) -> None:
    storage = chain_of(chain_url, 6)
    storage.delete(audit.event_key(3))
    assert problems(storage) == (3, ["event 3 deleted"])


def test_an_altered_event_is_named(chain_url: str) -> None:
    storage = chain_of(chain_url, 6)
    put(storage, 2, {**body_of(storage, 2), "details": {"n": 99}})
    first_bad, found = problems(storage)
    assert first_bad == 2
    assert found == ["event 2 is not the one event 3 links to: altered"]


def test_an_inserted_event_is_named(chain_url: str) -> None:
    """An event slipped in at 3: the old 3 to 6 move up by one, the new one linked to 2."""
    storage = chain_of(chain_url, 6)
    for sequence in range(6, 2, -1):
        put(storage, sequence + 1, {**body_of(storage, sequence), "sequence": sequence + 1})
    put(storage, 3, relinked(storage, 3, {**body_of(storage, 4), "details": {"n": "forged"}}))
    first_bad, found = problems(storage)
    assert first_bad == 3
    assert "event 4 links to event 2: event 3 inserted, or the chain forked" in found


def test_reordered_events_are_named(chain_url: str) -> None:
    """Events 3 and 4 swapped: their objects exchanged, as they are."""
    storage = chain_of(chain_url, 6)
    third, fourth = body_of(storage, 3), body_of(storage, 4)
    put(storage, 3, fourth)
    put(storage, 4, third)
    first_bad, found = problems(storage)
    assert first_bad == 3
    assert found[:2] == ["event 3 holds event 4: moved", "event 4 holds event 3: moved"]


def test_a_moved_event_is_named(chain_url: str) -> None:
    storage = chain_of(chain_url, 4)
    put(storage, 2, body_of(storage, 3))  # the object of event 3 copied over 2
    first_bad, found = problems(storage)
    assert first_bad == 2
    assert "event 2 holds event 3: moved" in found


def test_a_fork_is_named(chain_url: str) -> None:
    """A second branch written from event 2 on (as a writer that ignored the exclusive create
    would): event 4 of it links to 2 while 3 of the first branch stays."""
    storage = chain_of(chain_url, 5)
    put(storage, 4, {**body_of(storage, 4), "prev": audit.digest(body_of(storage, 2))})
    first_bad, found = problems(storage)
    assert first_bad == 3
    assert found[0] == "event 4 links to event 2: event 3 inserted, or the chain forked"


def test_a_deleted_genesis_is_named(chain_url: str) -> None:
    storage = chain_of(chain_url, 3)
    storage.delete(audit.event_key(0))
    assert problems(storage) == (0, ["event 0 deleted"])


def test_an_unreadable_event_is_named(chain_url: str) -> None:
    storage = chain_of(chain_url, 3)
    storage.delete(audit.event_key(1))
    storage.write(audit.event_key(1), [b"not json"])
    first_bad, found = problems(storage)
    assert first_bad == 1
    assert "event 1 is not readable" in found


def test_a_rewritten_chain_is_caught_by_its_anchor(chain_url: str, tmp_path: Path) -> None:
    """A chain rewritten whole from event 2 on links perfectly; the anchor kept in another
    repository still holds the old event 3."""
    storage = chain_of(chain_url, 4)
    keeper = Repository("dr", open_storage(str(tmp_path / "dr"), classify=object_kind))
    keeper.init()
    report, hashes = audit.verify_chain(storage)
    assert report.head is not None
    identity = audit.repository_id(storage)
    audit.write_anchor(keeper.storage, identity, {**report.head._asdict(), "at": ""}, report.head)
    for sequence in range(2, 5):
        put(
            storage,
            sequence,
            relinked(storage, sequence, {**body_of(storage, sequence), "details": {}}),
        )
    rewritten, hashes = audit.verify_chain(storage)
    assert rewritten.whole  # the links alone cannot tell
    for anchor in audit.anchors_in(keeper.storage, identity, "dr"):
        audit.check_anchor(rewritten, hashes, anchor)
    assert rewritten.first_bad == 4
    assert [p.what for p in rewritten.problems] == [
        f"event 4 does not match anchor dr:{audit.anchor_key(identity, report.head)}: the "
        "chain was rewritten"
    ]


def test_concurrent_writers_neither_fork_nor_lose_events(chain_url: str) -> None:
    """Writers in separate processes, released together, append to one chain."""
    writers, each = 4, 12
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.integration.audit_child", chain_url, f"w{n}", str(each)],
            cwd=REPOSITORY_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(writers)
    ]
    for child in children:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    claimed: list[int] = []
    for child in children:
        out, _ = child.communicate(timeout=300)
        assert child.returncode == 0
        claimed += [int(s) for s in out.split()]
    storage = open_storage(chain_url, classify=object_kind)
    report, _ = audit.verify_chain(storage)
    assert report.whole, report.problems
    assert sorted(claimed) == list(range(1, writers * each + 1))  # one genesis, no number twice
    events = audit.read_events(storage)
    written = {(e.details["writer"], e.details["n"]) for e in events if e.event == "hold"}
    assert written == {(f"w{w}", n) for w in range(writers) for n in range(each)}


# --- the commands ------------------------------------------------------------------------


def workspace(root: Path) -> Workspace:
    """A config with two local repositories, main and dr, both initialised."""
    ws = Workspace(root, write_identity(root / "age.key"), in_process=True)
    ws.config.write_text(
        f'[repositories.main]\nurl = "file://{root / "main"}"\n\n'
        f'[repositories.dr]\nurl = "file://{root / "dr"}"\n\n'
        f'[encryption]\nage_recipients = ["{ws.public_key}"]\n'
        f'age_identity_file = "{ws.identity}"\n\n'
        '[sources.wms]\ntype = "postgres"\ndsn = "dbname=wms"\n'
    )
    for name in ("main", "dr"):
        Repository(name, open_storage(str(root / name), classify=object_kind)).init()
    return ws


def test_the_commands_verify_show_and_anchor(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    main = chain_of(str(tmp_path / "main"), 3)

    shown = ws.run("audit", "show", "--repo", "main", "--json")
    assert shown.returncode == 0, shown.stderr
    assert [e["sequence"] for e in json.loads(shown.stdout)] == [0, 1, 2, 3]
    lines = ws.run("audit", "show", "--since", "2000-01-01").stdout.splitlines()
    assert len(lines) == 4 and " hold wms/b2 n=2" in lines[-1]

    printed = ws.run("audit", "anchor", "--repo", "main", "--json")
    assert printed.returncode == 0, printed.stderr
    head = json.loads(printed.stdout)[0]
    assert head["sequence"] == 3
    kept = ws.run("audit", "anchor", "--to", "dr")
    assert kept.returncode == 0, kept.stderr
    assert f"main ({head['repository_id']}) head 3:{head['hash']}" in kept.stdout

    whole = ws.run("audit", "verify", "--json")
    assert whole.returncode == 0, whole.stderr
    verdicts = {r["repository"]: r for r in json.loads(whole.stdout)}
    assert verdicts["main"]["whole"] and len(verdicts["main"]["anchors_checked"]) == 1
    assert verdicts["dr"]["events"] == 0  # dr has had nothing to record yet

    by_hand = ws.run("audit", "verify", "--repo", "main", "--anchor", f"3:{'0' * 64}")
    assert by_hand.returncode == 1
    assert "event 3 does not match anchor given" in error_line(by_hand)

    main.delete(audit.event_key(2))
    broken = ws.run("audit", "verify", "--repo", "main")
    assert broken.returncode == 1
    assert error_line(broken) == (
        "lifeboat: error: the audit chain of main is broken at event 2: event 2 deleted"
    )
    assert "main: BROKEN at event 2" in broken.stdout

    refused = ws.run("audit", "anchor", "--repo", "main", "--to", "dr")
    assert refused.returncode == 1
    assert "broken at event 2: not anchored" in error_line(refused)


def test_bad_input_to_the_commands(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    chain_of(str(tmp_path / "main"), 1)
    cases = {
        ("audit", "verify", "--anchor", "three:abc"): (2, "is not SEQUENCE:SHA256"),
        ("audit", "verify", "--repo", "nowhere"): (2, "unknown repository 'nowhere'"),
        ("audit", "anchor", "--repo", "main", "--to", "main"): (2, "belongs in another repository"),
        ("audit", "anchor", "--repo", "dr"): (1, "has no audit events yet"),
    }
    for args, (code, message) in cases.items():
        result = ws.run(*args)
        assert result.returncode == code, (args, result.stderr)
        assert message in error_line(result), args
    since = ws.run("audit", "show", "--since", "yesterday")
    assert since.returncode == 2 and "is not a date" in since.stderr

    dr_section = f'[repositories.dr]\nurl = "file://{tmp_path / "dr"}"\n\n'
    ws.config.write_text(ws.config.read_text().replace(dr_section, ""))
    alone = ws.run("audit", "anchor", "--to", "main")
    assert alone.returncode == 2
    assert "no other repository is configured" in error_line(alone)
