"""Restoring from the disaster-recovery copy when the primary region is gone: a repository
the source does not write to (a `lifeboat copy` target) serves restore, list, verify, show
and, for a point-in-time recovery, the WAL that restore_command fetches."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lifeboat.postgres.instance import ScratchCluster
from lifeboat.repo.layout import MARKER

from .archiving import Archiving, archiving_cluster, events, hand_to_server_user, stop_cluster
from .helpers import error_line, fill_rich, make_workspace, table_digests
from .test_multi_repo import two_repositories
from .versions import on_oldest_major

# reading backups and WAL from another repository is the repository's subject, not the server's:
# run once, on the oldest installed major
pytestmark = on_oldest_major


def test_a_logical_backup_is_restored_from_the_copy_when_the_primary_is_gone(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path
) -> None:
    fill_rich(pg_cluster, fresh_db)
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db), in_process=True)
    primary, _ = two_repositories(ws, pg_cluster.dsn(fresh_db), 'repositories = ["primary"]')
    made = ws.run_json("backup", "wms")
    assert made["repositories"] == ["primary"]
    ws.run("copy", "--from", "primary", "--to", "dr", check=True)
    shutil.rmtree(primary)  # the primary region is gone

    named = f"{fresh_db}_named"
    unnamed = f"{fresh_db}_found"
    try:
        restored = ws.run_json("restore", "wms", "--repo", "dr", "--target-db", named)
        assert (restored["repository"], restored["backup"]) == ("dr", made["id"])
        assert restored["verified"] is True
        assert table_digests(pg_cluster, named) == table_digests(pg_cluster, fresh_db)

        # without --repo: the source's own repository cannot serve, the copy does
        found = ws.run("restore", "wms", "--target-db", unnamed)
        assert found.returncode == 0, found.stderr
        assert f"restored wms/{made['id']} from dr into {unnamed}" in found.stdout
        assert "repository primary cannot serve this" in found.stderr
        assert table_digests(pg_cluster, unnamed) == table_digests(pg_cluster, fresh_db)
    finally:
        for database in (named, unnamed):
            pg_cluster.psql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    assert [(b["repository"], b["id"]) for b in ws.run_json("list", "--repo", "dr")] == [
        ("dr", made["id"])
    ]
    verified = ws.run_json("verify", "wms", "--repo", "dr")
    assert [(c["repository"], c["id"], c["ok"]) for c in verified] == [("dr", made["id"], True)]
    shown = ws.run_json("show", made["id"])
    assert (shown["repository"], shown["id"]) == ("dr", made["id"])

    # list without --repo shows what dr holds, names the repository it cannot read, and
    # exits 1 for it
    listed = ws.run("list", "wms", "--json")
    assert listed.returncode == 1
    assert [(b["repository"], b["id"]) for b in json.loads(listed.stdout)] == [("dr", made["id"])]
    assert "repository primary cannot be read" in error_line(listed)


def test_a_hold_reaches_the_copies_and_prune_touches_a_copy_only_when_named(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path
) -> None:
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db), in_process=True)
    primary, dr = two_repositories(ws, pg_cluster.dsn(fresh_db), 'repositories = ["primary"]')
    held, dropped, newest = (ws.run_json("backup", "wms")["id"] for _ in range(3))
    ws.run("copy", "--from", "primary", "--to", "dr", check=True)
    with open(ws.config, "a", encoding="utf-8") as config:
        config.write("[retention]\nkeep_last = 1\n")

    holds = ws.run_json("hold", held, "--source", "wms", "--reason", "audit 7")
    assert sorted(h["repository"] for h in holds) == ["dr", "primary"]

    # prune writes: by default only where the source writes
    pruned = ws.run_json("prune", "wms")
    assert [(r["repository"], r["deleted"]) for r in pruned] == [("primary", [dropped])]
    assert sorted(p.name for p in (dr / "wms" / "backups").iterdir()) == [held, dropped, newest]
    # naming the copy target applies the retention there, and the hold is honoured there
    pruned = ws.run_json("prune", "wms", "--repo", "dr")
    assert [(r["repository"], r["deleted"]) for r in pruned] == [("dr", [dropped])]
    for repo in (primary, dr):
        assert sorted(p.name for p in (repo / "wms" / "backups").iterdir()) == [held, newest]

    released = ws.run_json("release", held, "--source", "wms")
    assert sorted(r["repository"] for r in released) == ["dr", "primary"]


def test_unknown_repository_is_a_usage_error_naming_the_configured_ones(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path
) -> None:
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db), in_process=True)
    two_repositories(ws, pg_cluster.dsn(fresh_db), 'repositories = ["primary"]')
    for command in (
        ["restore", "wms", "--target-db", "nowhere"],
        ["restore", "wms", "--pgdata", str(tmp_path / "pgdata")],
        ["list"],
        ["verify"],
        ["show", "20260101T000000Z"],
        ["hold", "20260101T000000Z", "--reason", "audit"],
        ["prune", "wms"],
    ):
        result = ws.run(*command, "--repo", "offsite")
        assert result.returncode == 2, (command, result.stderr)
        assert "unknown repository 'offsite'" in error_line(result)
        assert "(repositories: primary, dr)" in error_line(result)
    assert not (tmp_path / "pgdata").exists()
    # restore_command: any failure but a missing file stops recovery (exit 255), never
    # ends it early as exit 2 would
    fetched = ws.run("wal-fetch", "--repo", "offsite", "wms", "000000010000000000000001", "x")
    assert fetched.returncode == 255
    assert "unknown repository 'offsite'" in error_line(fetched)


@dataclass
class Archived:
    """A physical backup, then rows 1..120 over 12 segments, which wal-push wrote into both
    of the source's own repositories, local (home/repo) and second (home/second); the
    cluster then lost (stopped). The backup's summary."""

    archiving: Archiving
    made: dict[str, Any]

    def copied(self, *repositories: str, copy_target: str | None = None) -> Archiving:
        """This archive in a folder of the test's own: copies of the repositories named
        (local, second) and a config naming only those; with copy_target, the source
        writes to those alone and the copy target (in the folder, not initialised) is
        configured too. A test deletes what it likes in them."""
        original = self.archiving
        place = original.home / f"copy-{os.urandom(4).hex()}"
        # the config archiving_cluster wrote, without the repository added after it
        text, _, _ = original.config.read_text().partition("[repositories.second]")
        text = text.replace(f'url = "{original.home / "repo"}"', f'url = "{place / "repo"}"')
        if copy_target is not None:
            text += f"repositories = {json.dumps(list(repositories))}\n"
            text += f'[repositories.{copy_target}]\nurl = "{place / copy_target}"\n'
        if "second" in repositories:
            text += f'[repositories.second]\nurl = "{place / "second"}"\n'
        for name in repositories:
            folder = "repo" if name == "local" else name
            shutil.copytree(original.home / folder, place / folder, symlinks=True)
        (place / "lifeboat.toml").write_text(text)
        (place / "lifeboat.toml").chmod(0o644)
        hand_to_server_user(place)
        return dataclasses.replace(original, home=place, config=place / "lifeboat.toml")


@pytest.fixture(scope="module")
def archived(pg_bin_dir: Path) -> Iterator[Archived]:
    """One archive for the module's point-in-time recoveries (see Archived): more segments
    than restore stages beside the data before the server starts, so recovery asks
    restore_command for the rest. Each test works on copies of its repositories."""
    with archiving_cluster(pg_bin_dir) as archiving:
        # no `repositories` for the source: every configured one is its own
        with open(archiving.config, "a", encoding="utf-8") as config:
            config.write(f'[repositories.second]\nurl = "{archiving.home / "second"}"\n')
        archiving.lifeboat("init", "--repo", "second")
        made: dict[str, Any] = json.loads(
            archiving.lifeboat("backup", "wms", "--type", "physical", "--json").stdout
        )
        for round_ in range(12):
            archiving.commit(round_ * 10 + 1, round_ * 10 + 10)
            archiving.switch_and_wait()
        archiving.cluster.stop("immediate")
        yield Archived(archiving, made)


def test_point_in_time_recovery_from_the_copy_fetches_its_wal_there(archived: Archived) -> None:
    # the source writes to local only; dr is a copy target
    archiving = archived.copied("local", copy_target="dr")
    made = archived.made
    archiving.lifeboat("init", "--repo", "dr")
    archiving.lifeboat("copy", "--from", "local", "--to", "dr")
    shutil.rmtree(archiving.home / "repo")  # the primary region is gone

    assert json.loads(archiving.lifeboat("verify", "wms", "--repo", "dr", "--json").stdout)[0] == {
        **_ok_check(made["id"]),
        "repository": "dr",
    }

    pgdata = archiving.home / "from-dr"
    port, result = archiving.restore_started(
        pgdata, "--repo", "dr", "--latest", "--archive-mode", "off"
    )
    try:
        assert f"from dr into {pgdata}" in result.stdout
        # the source's own repository is gone: a restore_command that asked it would
        # have stopped recovery (exit 255) instead of reaching the last row
        assert events(port) == list(range(1, 121))
    finally:
        stop_cluster(pgdata, archiving.cluster.bin_dir)
    assert "wal-fetch --repo dr wms %f %p" in (pgdata / "postgresql.auto.conf").read_text()

    # without --repo the copy is found, and recovery is pointed at it just the same
    found = archiving.home / "found"
    laid_out = json.loads(
        archiving.lifeboat("restore", "wms", "--pgdata", str(found), "--json").stdout
    )
    assert (laid_out["repository"], laid_out["backup"]) == ("dr", made["id"])
    assert "wal-fetch --repo dr wms %f %p" in (found / "postgresql.auto.conf").read_text()


def test_recovery_fetches_its_wal_from_the_second_repository_when_the_first_is_gone(
    archived: Archived,
) -> None:
    """Both repositories are the source's own (wal-push wrote every file to each), the
    first is gone: the restore takes the backup from the second and recovery must fetch its
    WAL there alone, as asking the first would stop it (exit 255) before its end."""
    archiving = archived.copied("local", "second")
    shutil.rmtree(archiving.home / "repo")  # the first repository is gone

    pgdata = archiving.home / "from-second"
    port, result = archiving.restore_started(pgdata, "--latest", "--archive-mode", "off")
    try:
        assert f"restored wms/{archived.made['id']} from second into {pgdata}" in result.stdout
        assert events(port) == list(range(1, 121))
    finally:
        stop_cluster(pgdata, archiving.cluster.bin_dir)
    auto_conf = (pgdata / "postgresql.auto.conf").read_text()
    assert "wal-fetch --repo second wms %f %p" in auto_conf


def _ok_check(backup: str) -> dict[str, object]:
    return {"source": "wms", "id": backup, "deep": False, "ok": True, "problems": []}


def test_another_sources_repository_not_set_up_yet_does_not_fail_the_reading_commands(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path
) -> None:
    """Reading commands look in every configured repository, but one the source does not
    write to and that holds nothing yet (another source's, not initialised) is passed over
    quietly; the source's own repositories still have to be readable."""
    fill_rich(pg_cluster, fresh_db)
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db), in_process=True)
    primary, dr = two_repositories(ws, pg_cluster.dsn(fresh_db), 'repositories = ["primary"]')
    made = ws.run_json("backup", "wms")
    shutil.rmtree(dr)  # as if it were configured for another source and never initialised

    listed = ws.run("list", "wms", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(b["repository"], b["id"]) for b in json.loads(listed.stdout)] == [
        ("primary", made["id"])
    ]
    assert "dr" not in listed.stderr
    verified = ws.run("verify", "wms", "--json")
    assert verified.returncode == 0, verified.stderr
    assert [c["id"] for c in json.loads(verified.stdout)] == [made["id"]]
    holds = ws.run_json("hold", made["id"], "--source", "wms", "--reason", "audit")
    assert [h["repository"] for h in holds] == ["primary"]

    # a copy that exists but cannot be read is a failed verify, the others still checked
    dr.mkdir()
    (dr / MARKER).write_text("{not json")
    broken = ws.run("verify", "wms", "--json")
    assert broken.returncode == 1
    checks = {(c["repository"], c["id"]): c["ok"] for c in json.loads(broken.stdout)}
    assert checks == {("primary", made["id"]): True, ("dr", "repository"): False}
    assert "repository dr cannot be read" in broken.stderr
    assert ws.run("list", "wms").returncode == 0  # list only warns about it
    shutil.rmtree(dr)

    shutil.rmtree(primary)  # the source's own repository is another matter
    refused = ws.run("list", "wms")
    assert refused.returncode != 0
    assert "primary" in error_line(refused)
