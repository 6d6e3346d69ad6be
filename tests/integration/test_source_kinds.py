"""The PostgreSQL kinds behind the Source protocol against a real server: their checks
before a backup, and a backup taken through one."""

from __future__ import annotations

import socket
from pathlib import Path

from lifeboat.context import Context
from lifeboat.postgres.instance import ScratchCluster
from lifeboat.sources.postgres.kinds import PostgresLogical, PostgresPhysical

from .helpers import make_workspace


def test_checks_find_what_would_keep_a_backup_from_working(
    tmp_path: Path, pg_cluster: ScratchCluster, fresh_db: str
) -> None:
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db), in_process=True)
    ctx = Context.load(ws.config)
    assert PostgresLogical().checks(ctx, "wms") == []
    # the session's scratch cluster does not archive its WAL
    (problem,) = PostgresPhysical().checks(ctx, "wms")
    assert problem.startswith("archive_mode is off on ")
    assert "lifeboat setup-archiving wms" in problem


def test_checks_report_a_server_that_does_not_answer_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on once it is closed again
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ws = make_workspace(
        tmp_path, f"postgresql://backup:secret@127.0.0.1:{port}/wms", in_process=True
    )
    ctx = Context.load(ws.config)
    for kind in (PostgresLogical(), PostgresPhysical()):
        (problem,) = kind.checks(ctx, "wms")
        assert "\n" not in problem
        assert str(port) in problem
        assert "secret" not in problem


def test_a_backup_through_the_protocol_is_a_committed_backup(
    tmp_path: Path, pg_cluster: ScratchCluster, fresh_db: str
) -> None:
    pg_cluster.psql("CREATE TABLE parcel (id int); INSERT INTO parcel VALUES (1), (2)", fresh_db)
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db), in_process=True)
    kind = PostgresLogical()
    result = kind.backup(Context.load(ws.config), "wms")
    assert result.failed == {}
    listed = ws.run_json("list", "wms")
    assert [b["id"] for b in listed] == [result.manifest.id]
    described = kind.describe(result.manifest)
    assert described["database"] == fresh_db
    assert described["tables"] == 1
    assert described["rows"] == 2
