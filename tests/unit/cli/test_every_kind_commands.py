"""The commands that read repositories, over a repository holding backups of every kind
(PostgreSQL logical and physical, Redis, files, SQLite): list, show, verify, copy, prune,
hold and release, the drill's choice, report, runbook and check work for each kind, and
say nothing of PostgreSQL (WAL, databases) about the others. The backups are manifests of
each kind with objects holding what they say (tests/unit/kind_backups.py): the kinds'
own servers are not needed to read them."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lifeboat.context import Context
from lifeboat.ops.report import build as build_report
from lifeboat.ops.runbook import build as build_runbook
from lifeboat.ops.runbook_markdown import render
from lifeboat.policy.drill import pick_backups
from lifeboat.repo import layout
from lifeboat.repo.catalog import Repository
from lifeboat.repo.manifest import Manifest
from lifeboat.storage.local import LocalStorage
from tests.unit.backups import T0, commit_physical
from tests.unit.cli.test_notify_after_commands import commit_logical
from tests.unit.helpers import AgeKey, local_repository, one_error_line, run
from tests.unit.kind_backups import KIND_SOURCES, commit_kind, mixed_config

KINDS = list(KIND_SOURCES)


class Mixed:
    """A configuration and its repository local holding backups of every kind (offsite
    initialised and empty): three of each kind, wms two logical and one physical."""

    def __init__(self, folder: Path, age_key: AgeKey, extra: str = "") -> None:
        self.config = mixed_config(folder, age_key, extra)
        self.folder = folder
        self.local = local_repository(folder, "local")
        self.offsite = local_repository(folder, "offsite")
        self.backups: dict[str, list[Manifest]] = {
            "wms": [commit_logical(self.local, 0), commit_logical(self.local, 1)]
        }
        self.backups["wms"].append(commit_physical(self.local, 2))
        for kind, source in KIND_SOURCES.items():
            self.backups[source] = [commit_kind(self.local, kind, hours) for hours in (3, 4, 5)]

    def run(self, *args: str) -> int:
        return run(["--config", str(self.config), *args])

    def newest(self, source: str) -> Manifest:
        return self.backups[source][-1]


@pytest.fixture
def mixed(tmp_path: Path, age_key: AgeKey) -> Mixed:
    return Mixed(tmp_path, age_key)


@pytest.fixture
def no_kinds(monkeypatch: pytest.MonkeyPatch) -> None:
    """A build without the Redis, files and SQLite kinds (their programs missing): what the
    commands do with backups of kinds they cannot run, whichever kinds this tree has."""
    from lifeboat.sources import registry

    monkeypatch.setattr(registry, "_PATH_KINDS", {})


def test_list_shows_every_kind_by_its_type(
    mixed: Mixed, capsys: pytest.CaptureFixture[str]
) -> None:
    assert mixed.run("--json", "list", "--repo", "local") == 0
    listed = json.loads(capsys.readouterr().out)
    types = {(b["source"], b["type"]) for b in listed}
    assert types == {
        ("wms", "logical"),
        ("wms", "physical"),
        ("cache", "redis"),
        ("media", "files"),
        ("inventory", "sqlite"),
    }
    assert all(b["database"] == "" for b in listed if b["source"] != "wms")


@pytest.mark.parametrize(
    ("kind", "facts"),
    [
        ("redis", ["keys: db0=120, db3=4", "redis_version: 7.0.15"]),
        ("files", ["files: 42", "total_bytes: 123456", "index: index.jsonl.zst.age"]),
        ("sqlite", ["row_counts: items=1000, moves=250", "journal_mode: wal"]),
    ],
)
def test_show_gives_the_manifests_details_without_the_kind(
    mixed: Mixed, no_kinds: None, capsys: pytest.CaptureFixture[str], kind: str, facts: list[str]
) -> None:
    source = KIND_SOURCES[kind]
    backup = mixed.newest(source)
    assert mixed.run("show", backup.id, "--source", source) == 0
    out = capsys.readouterr().out
    for fact in facts:
        assert fact in out
    assert "database" not in out and "server_version" not in out
    assert mixed.run("--json", "show", backup.id, "--source", source) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["kind"] == kind and shown["facts"] == backup.details.model_dump(mode="json")


def test_verify_checks_the_stored_objects_of_every_kind(
    mixed: Mixed, capsys: pytest.CaptureFixture[str]
) -> None:
    for source in KIND_SOURCES.values():
        assert mixed.run("verify", source) == 0
    capsys.readouterr()
    damaged = mixed.newest("media")
    stored = mixed.folder / "local" / layout.object_key("media", damaged.id, "index.jsonl.zst.age")
    stored.write_bytes(b"X" + stored.read_bytes()[1:])
    assert mixed.run("verify", "media") == 1
    out, err = capsys.readouterr()
    assert f"media/{damaged.id} FAILED" in out
    error = [line for line in err.splitlines() if line.startswith("lifeboat: error:")]
    assert len(error) == 1 and "index.jsonl.zst.age: sha256 mismatch" in error[0]


def test_copy_copies_every_kind(mixed: Mixed, capsys: pytest.CaptureFixture[str]) -> None:
    assert mixed.run("copy", "--from", "local", "--to", "offsite") == 0
    capsys.readouterr()
    assert mixed.run("--json", "list", "--repo", "offsite") == 0
    copied = json.loads(capsys.readouterr().out)
    for source in KIND_SOURCES.values():
        assert sorted(b["id"] for b in copied if b["source"] == source) == [
            m.id for m in mixed.backups[source]
        ]
    assert mixed.run("verify", "cache", "--repo", "offsite") == 0


def test_prune_keeps_the_newest_of_each_kind_and_says_nothing_of_wal_for_others(
    tmp_path: Path, age_key: AgeKey, capsys: pytest.CaptureFixture[str]
) -> None:
    mixed = Mixed(tmp_path, age_key, "[retention]\nkeep_last = 1\n")
    # a backup of another kind under the name of cache (the source was a files source
    # before it became a Redis one): each kind counts on its own
    old_files = commit_kind(mixed.local, "files", 6, source="cache")
    held = mixed.backups["cache"][0]
    assert mixed.run("hold", held.id, "--source", "cache", "--reason", "audit") == 0
    capsys.readouterr()

    assert mixed.run("prune", "--repo", "local") == 0
    out = capsys.readouterr().out
    kept: dict[str, list[str]] = {}
    for manifest in mixed.local.list_backups(None):
        kept.setdefault(manifest.source, []).append(manifest.id)
    assert sorted(kept["wms"]) == [mixed.backups["wms"][1].id, mixed.backups["wms"][2].id]
    assert sorted(kept["cache"]) == sorted([held.id, mixed.newest("cache").id, old_files.id])
    assert kept["media"] == [mixed.newest("media").id]
    assert kept["inventory"] == [mixed.newest("inventory").id]
    # one summary line per source; the WAL is PostgreSQL's only
    lines = [line for line in out.splitlines() if re.match(r"\d+ backups deleted, \d+ kept", line)]
    assert len(lines) == 4
    assert [line for line in lines if "WAL" in line] == [lines[0]]

    assert mixed.run("release", held.id, "--source", "cache") == 0
    assert mixed.run("prune", "cache", "--repo", "local") == 0
    assert held.id not in mixed.local.committed_ids("cache")


def test_a_drill_picks_the_newest_of_the_kind_and_refuses_to_time(
    mixed: Mixed, capsys: pytest.CaptureFixture[str]
) -> None:
    now = datetime.now(UTC)
    for source in KIND_SOURCES.values():
        picked = pick_backups(mixed.backups[source], "latest", within=None, now=now)
        assert picked == [mixed.newest(source)]
    picked = pick_backups(mixed.backups["wms"], "latest", within=None, now=now)
    assert [m.type for m in picked] == ["logical", "physical"]
    capsys.readouterr()
    at = (T0 + timedelta(hours=9)).isoformat()
    assert mixed.run("drill", "cache", "--to-time", at) == 2
    assert one_error_line(capsys.readouterr().err) == (
        "lifeboat: error: source 'cache' is a redis source: --to-time recovers a PostgreSQL "
        "physical backup to a moment; a redis backup restores its snapshot"
    )


def test_report_says_the_wal_control_does_not_apply_to_other_kinds(mixed: Mixed) -> None:
    ctx = Context.load(mixed.config)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    report = build_report(ctx, start, datetime(2026, 4, 1, tzinfo=UTC))
    by_source = {s.source: {c.id: c for c in s.controls} for s in report.sources}
    for source in KIND_SOURCES.values():
        controls = by_source[source]
        wal = controls["wal"]
        assert wal.status == "not-applicable"
        assert "archives no WAL" in wal.evidence[0]
        # the others judge its backups as any source's
        assert controls["encryption"].status == "pass"
        assert controls["verification"].status != "not-applicable"
    assert "archives no WAL" not in by_source["wms"]["wal"].evidence[0]


@pytest.mark.parametrize("kind", KINDS)
def test_the_runbook_restores_other_kinds_to_a_path(mixed: Mixed, kind: str) -> None:
    source = KIND_SOURCES[kind]
    text = render(build_runbook(Context.load(mixed.config), source))
    backup = mixed.newest(source)
    assert f"restore {source} --backup {backup.id} --to /srv/restore/{source}" in text
    assert ("--path PATH/IN/THE/ARCHIVE" in text) == (kind == "files")
    assert "WAL archive" not in text and "pg_restore" not in text
    assert f"Run `lifeboat --config {mixed.config} drill {source}`" in text


def test_the_runbook_of_postgres_keeps_its_wal_line(mixed: Mixed) -> None:
    text = render(build_runbook(Context.load(mixed.config), "wms"))
    assert "WAL archive (point-in-time recovery): none found" in text
    assert "--to /srv/restore" not in text


def test_check_of_a_kind_this_build_cannot_back_up_is_one_line(
    mixed: Mixed, no_kinds: None, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert mixed.run("check", "cache") == 2
    line = one_error_line(capsys.readouterr().err)
    assert "redis" in line and "WAL" not in line


def test_repository_of_mixed_kinds_reads_back(mixed: Mixed) -> None:
    # a fresh reader of the same folder sees every manifest as its kind wrote it
    again = Repository("local", LocalStorage(mixed.folder / "local"))
    kinds = {m.kind for m in again.list_backups(None)}
    assert kinds == {"postgres-logical", "postgres-physical", "redis", "files", "sqlite"}


class _StandInKind:
    """Stands in for the Redis kind (built and tested on its own, in sources/redis): only
    its checks and its description are called here, to see `check` and `show` give them."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems

    def checks(self, ctx: Context, source: str) -> list[str]:
        return self.problems

    def describe(self, manifest: Manifest) -> dict[str, object]:
        return {"databases": len(manifest.details.model_dump()["keys"]), "rdb": "dump.rdb"}


def test_show_gives_what_the_kind_describes(
    mixed: Mixed, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lifeboat.sources import registry

    monkeypatch.setattr(registry, "_path_kind_class", lambda _: lambda: _StandInKind([]))
    backup = mixed.newest("cache")
    assert mixed.run("show", backup.id, "--source", "cache") == 0
    out = capsys.readouterr().out
    assert "databases: 2" in out and "rdb: dump.rdb" in out
    assert "version: 7.0.15" in out  # the kind did not say it: the manifest's
    assert mixed.run("--json", "show", backup.id, "--source", "cache") == 0
    assert json.loads(capsys.readouterr().out)["facts"] == {"databases": 2, "rdb": "dump.rdb"}


@pytest.mark.parametrize("problems", [[], ["cannot reach redis://127.0.0.1:1/0"]])
def test_check_reports_the_kinds_checks(
    mixed: Mixed,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    problems: list[str],
) -> None:
    from lifeboat.sources import registry

    monkeypatch.setattr(registry, "_path_kind_class", lambda _: lambda: _StandInKind(problems))
    capsys.readouterr()
    assert mixed.run("--json", "check", "cache") == (1 if problems else 0)
    out, err = capsys.readouterr()
    assert json.loads(out) == {
        "source": "cache",
        "type": "redis",
        "ok": not problems,
        "problems": problems,
    }
    if problems:
        assert one_error_line(err) == f"lifeboat: error: cache: {problems[0]}"
