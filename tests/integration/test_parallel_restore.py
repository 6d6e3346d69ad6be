"""The parallel logical restore: pg_restore -j from the dump decrypted into a work folder.

What a parallel restore gives up (one transaction) the scratch database makes up for: a
failure half-way leaves the target as it was. The work folder holds the dump's plaintext
only while pg_restore runs, and one too small is refused before anything changes. The load
itself is the library call a drill makes against a server as initdb left it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lifeboat.context import Context
from lifeboat.postgres.binaries import find_tools
from lifeboat.postgres.conn import PgEndpoint
from lifeboat.postgres.dbprops import FULL_OWNERSHIP
from lifeboat.postgres.instance import ScratchCluster
from lifeboat.sources.postgres.logical_restore import load_into
from lifeboat.sources.postgres.restore_roles import plan_roles
from tests.mounts import small_tmpfs

from .helpers import (
    Workspace,
    assert_restores_identically,
    error_line,
    fill_rich,
    make_workspace,
    roles_on,
    table_digests,
)
from .production import ROLES, create_production_db, database_facts, schema_dump
from .versions import on_oldest_major

LEFTOVER_DATABASES = "SELECT count(*) FROM pg_database WHERE datname LIKE 'lifeboat\\_%'"

# a CHECK constraint that holds in the source and fails while pg_restore loads the rows
# (pg_restore connects as application_name pg_restore): a real failure after other tables'
# data went in, without touching pg_restore
POISONED_TABLE = """
CREATE FUNCTION refused_by_restore(n int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('application_name') = 'pg_restore' AND n > 500 THEN
    RAISE EXCEPTION 'row % refused while restoring', n;
  END IF;
  RETURN true;
END $$;
CREATE TABLE poisoned (n int CHECK (refused_by_restore(n)));
INSERT INTO poisoned SELECT generate_series(1, 1000);
"""


def backed_up(ws: Workspace) -> str:
    backup: str = ws.run_json("backup", "wms")["id"]
    return backup


def listed(ws: Workspace) -> list[str]:
    return [b["id"] for b in ws.run_json("list")]


@pytest.fixture(scope="module")
def fresh_server(pg_bin_dir: Path) -> Iterator[ScratchCluster]:
    """A server as initdb left it, as a drill's scratch instance is; each test leaves it so."""
    with ScratchCluster(pg_bin_dir) as fresh:
        yield fresh


@on_oldest_major
def test_a_pg_restore_failure_half_way_leaves_the_target_and_no_dump_behind(
    pg_cluster: ScratchCluster, fresh_db: str, fresh_server: ScratchCluster, tmp_path: Path
) -> None:
    """Into another server, with the roles created: the poisoned table's owner is one of
    them, so it must go again after the scratch database that holds the table."""
    owner = f"poison_owner_{uuid.uuid4().hex[:8]}"
    pg_cluster.psql(f"CREATE ROLE {owner}")
    try:
        fill_rich(pg_cluster, fresh_db)
        pg_cluster.psql(POISONED_TABLE + f"ALTER TABLE poisoned OWNER TO {owner};", fresh_db)
        ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db), in_process=True)
        backed_up(ws)
    finally:
        pg_cluster.psql(f"DROP OWNED BY {owner}; DROP ROLE {owner}", fresh_db)
    fresh_server.psql("CREATE DATABASE target")
    try:
        fresh_server.psql("CREATE TABLE kept AS SELECT 'as it was' AS note", "target")
        before = table_digests(fresh_server, "target")
        roles_before = roles_on(fresh_server)
        work = tmp_path / "work"
        work.mkdir()

        failed = ws.run(
            "restore", "wms", "--target-dsn", fresh_server.dsn("target"), "--yes",
            "--create-roles", "--jobs", "2", "--work-dir", str(work),
        )  # fmt: skip
        assert failed.returncode == 1
        line = error_line(failed)
        assert "pg_restore failed, nothing was changed" in line
        assert "row 501 refused while restoring" in line
        assert table_digests(fresh_server, "target") == before
        assert roles_on(fresh_server) == roles_before
        assert fresh_server.psql(LEFTOVER_DATABASES) == "0"
        assert list(work.iterdir()) == []
    finally:
        fresh_server.psql("DROP DATABASE target WITH (FORCE)")


@pytest.fixture
def small_folder(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB file system of its own."""
    with small_tmpfs(tmp_path / "small", "1m") as folder:
        yield folder


@on_oldest_major
def test_a_work_folder_too_small_is_refused_before_anything_changes(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path, small_folder: Path
) -> None:
    fill_rich(pg_cluster, fresh_db)
    pg_cluster.psql(
        "CREATE TABLE filler AS SELECT g, md5(g::text) AS h FROM generate_series(1, 40000) g",
        fresh_db,
    )
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db), in_process=True)
    backup = backed_up(ws)
    objects = ws.run_json("show", backup)["objects"]
    (dump_size,) = [o["plain_size"] for o in objects if o["name"].startswith("dump.")]
    assert dump_size > 1 << 20  # more than the small folder holds
    before = table_digests(pg_cluster, fresh_db)

    refused = ws.run("restore", "wms", "--yes", "--work-dir", str(small_folder))
    assert refused.returncode == 1
    line = error_line(refused)
    assert f"not enough free space in {small_folder} for the decrypted dump of wms/{backup}: " in (
        line
    )
    assert "MiB needed, " in line and "(--work-dir chooses another folder)" in line
    assert table_digests(pg_cluster, fresh_db) == before
    assert listed(ws) == [backup]  # no safety backup either
    assert pg_cluster.psql(LEFTOVER_DATABASES) == "0"
    assert list(small_folder.iterdir()) == []

    # one job, in a folder with room, restores it all
    work = tmp_path / "work"
    work.mkdir()
    copy = f"{fresh_db}_copy"
    assert_restores_identically(
        ws, pg_cluster, fresh_db, copy, "--jobs", "1", "--work-dir", str(work)
    )
    assert list(work.iterdir()) == []


@on_oldest_major
def test_load_into_a_fresh_server_brings_the_roles_and_swaps_nothing(
    pg_cluster: ScratchCluster, fresh_server: ScratchCluster, tmp_path: Path
) -> None:
    name = f"plant_{uuid.uuid4().hex[:8]}"
    create_production_db(pg_cluster, name)
    try:
        ws = make_workspace(tmp_path, pg_cluster.dsn(name), in_process=True)
        backed_up(ws)
        ctx = Context.load(ws.config)
        repo = ctx.repositories_to_read("wms")[0]
        manifest = repo.resolve("wms", "latest", kind="logical")
        decryptor = ctx.decryptor(manifest.encryption.method)
        endpoint = PgEndpoint.from_dsn(fresh_server.dsn("postgres"))
        with endpoint.connect(autocommit=True) as admin:
            plan = plan_roles(
                repo, manifest, decryptor, admin, FULL_OWNERSHIP, True, endpoint.describe()
            )
        assert sorted(plan.create) == sorted(ROLES)
        work = tmp_path / "work"
        work.mkdir()

        loaded = load_into(
            ctx,
            repo,
            manifest,
            decryptor,
            find_tools(fresh_server.major),
            endpoint,
            "drill",
            ownership=FULL_OWNERSHIP,
            roles=plan,
            jobs=2,
            work_dir=work,
        )
        assert loaded.check.ok, loaded.check.problems()
        assert sorted(loaded.created_roles) == sorted(ROLES)
        assert min(loaded.fetch_seconds, loaded.restore_seconds, loaded.verify_seconds) > 0
        assert schema_dump(fresh_server, "drill") == schema_dump(pg_cluster, name)
        assert database_facts(fresh_server, "drill") == database_facts(pg_cluster, name)
        databases = "SELECT string_agg(datname, ' ' ORDER BY datname) FROM pg_database"
        assert fresh_server.psql(databases) == "drill postgres template0 template1"
        assert list(work.iterdir()) == []
    finally:
        pg_cluster.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        fresh_server.psql("DROP DATABASE IF EXISTS drill WITH (FORCE)")
        for role in ROLES:
            fresh_server.psql(f'DROP ROLE IF EXISTS "{role}"')
