"""Shared pieces of the integration tests: a Lifeboat workspace and a rich sample schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lifeboat.pipeline.crypto import write_identity
from lifeboat.postgres.instance import ScratchCluster
from tests.inprocess import run_lifeboat
from tests.walfiles import SYSTEM_ID, segment_file

LIFEBOAT = str(Path(sys.executable).with_name("lifeboat"))

RICH_SCHEMA = """
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE TYPE status AS ENUM ('received', 'released', 'rejected');
CREATE DOMAIN positive_kg AS numeric(12,3) CHECK (VALUE > 0);
CREATE SEQUENCE lot_code_seq START 1000;
CREATE TABLE lots (
    id bigserial PRIMARY KEY,
    code text NOT NULL UNIQUE DEFAULT 'L' || nextval('lot_code_seq'),
    product text NOT NULL,
    weight positive_kg,
    state status NOT NULL DEFAULT 'received',
    attrs jsonb,
    tags text[],
    readings double precision[],
    photo bytea,
    received timestamptz NOT NULL DEFAULT now(),
    updated timestamptz
);
CREATE INDEX lots_attrs_gin ON lots USING gin (attrs);
CREATE TABLE "QC decisions" (
    id serial PRIMARY KEY,
    lot_id bigint NOT NULL REFERENCES lots(id),
    "décision" text CHECK ("décision" IN ('release', 'hold', 'reject')),
    note text
);
CREATE INDEX qc_lot ON "QC decisions"(lot_id);
CREATE TABLE audit (id serial PRIMARY KEY, lot_id bigint, at timestamptz DEFAULT now(), what text);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated := now();
  INSERT INTO audit (lot_id, what) VALUES (NEW.id, TG_OP);
  RETURN NEW;
END $$;
CREATE TRIGGER lots_touch BEFORE UPDATE ON lots FOR EACH ROW EXECUTE FUNCTION touch();
CREATE VIEW released AS SELECT id, code, product FROM lots WHERE state = 'released';
CREATE SCHEMA other;
CREATE TABLE other.lots (id int PRIMARY KEY, label text);
INSERT INTO lots (product, weight, state, attrs, tags, readings, photo)
SELECT
    (ARRAY['Kürbis 🎃', 'fromage affiné', '鮭 salmon', 'plain'])[1 + g % 4],
    (g % 500) + 0.125,
    (ARRAY['received', 'released', 'rejected']::status[])[1 + g % 3],
    jsonb_build_object('g', g, 'nested', jsonb_build_object('t', -g * 1.5, 'q', 'quote''s "x"')),
    ARRAY['t' || g, NULL, 'комплект'],
    ARRAY[g * 0.1, 'NaN'::float8, 'Infinity'::float8],
    CASE WHEN g % 7 = 0 THEN NULL ELSE gen_random_bytes(16 + g % 64) || '\\x00ff'::bytea END
FROM generate_series(1, 3000) g;
UPDATE lots SET product = product || ' (checked)' WHERE id % 100 = 0;
INSERT INTO "QC decisions" (lot_id, "décision", note)
SELECT id, (ARRAY['release', 'hold', 'reject'])[1 + id % 3], E'line1\\nline2\\ttab \\\\ back'
FROM lots;
INSERT INTO other.lots SELECT g, 'other ' || g FROM generate_series(1, 50) g;
SELECT setval('lot_code_seq', 5000);
"""


def fill_rich(cluster: ScratchCluster, db: str) -> None:
    cluster.psql(RICH_SCHEMA, db)


def table_digests(cluster: ScratchCluster, db: str) -> dict[str, str]:
    """md5 of every user table's full content, in a stable order."""
    tables = cluster.psql(
        "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
        "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
        db,
    ).splitlines()
    digests = {}
    for table in tables:
        digests[table] = cluster.psql(
            "SELECT count(*) || ':' || "
            f"coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') "
            f"FROM {table} t",
            db,
        )
    return digests


def roles_on(cluster: ScratchCluster) -> set[str]:
    return set(cluster.psql("SELECT rolname FROM pg_roles").splitlines())


def schema_facts(cluster: ScratchCluster, db: str) -> dict[str, str]:
    return {
        "sequence": cluster.psql("SELECT last_value FROM lot_code_seq", db),
        "view": cluster.psql("SELECT pg_get_viewdef('released'::regclass)", db),
        "triggers": cluster.psql(
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1", db
        ),
        "indexes": cluster.psql(
            "SELECT indexname FROM pg_indexes WHERE schemaname IN ('public','other') ORDER BY 1", db
        ),
        "constraints": cluster.psql(
            "SELECT conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
            "WHERE n.nspname IN ('public','other') ORDER BY 1",
            db,
        ),
    }


@dataclass
class Workspace:
    """A folder with an age key, a repository and a config file for one test; in_process:
    its commands run in the test's process (tests/inprocess.py), not as the executable."""

    root: Path
    public_key: str
    in_process: bool = False

    @property
    def config(self) -> Path:
        return self.root / "lifeboat.toml"

    @property
    def identity(self) -> Path:
        return self.root / "age.key"

    @property
    def repo(self) -> Path:
        return self.root / "repo"

    def write_config(self, dsn: str, extra_source: str = "", encryption: str | None = None) -> None:
        encryption = encryption or (
            f'age_recipients = ["{self.public_key}"]\nage_identity_file = "{self.identity}"\n'
        )
        self.config.write_text(
            f'[repositories.local]\nurl = "file://{self.repo}"\n\n'
            f"[encryption]\n{encryption}\n"
            f"[compression]\nlevel = 3\n\n"
            f'[sources.wms]\ntype = "postgres"\ndsn = "{dsn}"\n{extra_source}\n'
        )

    def run(
        self,
        *args: str,
        check: bool = False,
        timeout: float = 300,
        env: dict[str, str] | None = None,
        own_process: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """`lifeboat --config CONFIG args...`; own_process: as the executable even in an
        in_process workspace (a drill's recovery time counts from its process's start)."""
        command = ["--config", str(self.config), *args]
        if self.in_process and not own_process:
            # no timeout of its own: pytest-timeout ends a command that hangs
            result = run_lifeboat(LIFEBOAT, command, env)
        else:
            result = subprocess.run(
                [LIFEBOAT, *command],
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
            )
        if check and result.returncode != 0:
            raise AssertionError(
                f"lifeboat {' '.join(args)} exited {result.returncode}: {result.stderr}"
            )
        return result

    def run_json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json", check=True).stdout)


def make_workspace(root: Path, dsn: str, in_process: bool = False) -> Workspace:
    public = write_identity(root / "age.key")
    ws = Workspace(root, public, in_process)
    ws.write_config(dsn)
    ws.run("init", check=True)
    return ws


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single error line, asserting there is no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("lifeboat: error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def assert_restores_identically(
    ws: Workspace, cluster: ScratchCluster, db: str, target: str, *restore_args: str
) -> None:
    """`lifeboat restore` of the newest backup into a new database `target` verifies and
    gives the same tables as `db`; `target` is dropped afterwards."""
    try:
        restored = ws.run_json("restore", "wms", "--target-db", target, *restore_args)
        assert restored["verified"] is True
        assert table_digests(cluster, target) == table_digests(cluster, db)
    finally:
        cluster.psql(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')


def wal_segment(
    root: Path, name: str = "000000010000000000000007", of: ScratchCluster | None = None
) -> Path:
    """A 16 MiB WAL segment (a page header, then WAL-like bytes), under root/pg_wal; of the
    cluster `of` (its system identifier in the header), which a source whose backups are of
    that cluster requires."""
    system_identifier = (
        SYSTEM_ID
        if of is None
        else int(of.psql("SELECT system_identifier FROM pg_control_system()"))
    )
    return segment_file(
        root / "pg_wal", name, size=16 * 1024 * 1024, system_identifier=system_identifier
    )


def assert_wal_round_trip(ws: Workspace, segment: Path, fetched: Path) -> None:
    """wal-push of segment for source wms, then wal-fetch of it, gives the same bytes."""
    pushed = ws.run("wal-push", "wms", str(segment))
    assert pushed.returncode == 0, pushed.stderr
    got = ws.run("wal-fetch", "wms", segment.name, str(fetched))
    assert got.returncode == 0, got.stderr
    assert fetched.read_bytes() == segment.read_bytes()
