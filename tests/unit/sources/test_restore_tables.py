"""What a table restore checks of its tools before it touches anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifeboat.errors import ToolError
from lifeboat.postgres.binaries import PgTools
from lifeboat.sources.postgres.restore_tables import check_tools

pytestmark = pytest.mark.unit


def tools_in(folder: Path, major: int, *, psql: bool = True) -> PgTools:
    if psql:
        (folder / "psql").write_text("#!/bin/sh\n")
        (folder / "psql").chmod(0o755)
    return PgTools(folder, major, f"{major}.2")


@pytest.mark.parametrize(("tools", "server"), [(17, 17), (18, 17), (16, 15), (15, 15)])
def test_tools_whose_script_the_server_runs_are_accepted(
    tmp_path: Path, tools: int, server: int
) -> None:
    check_tools(tools_in(tmp_path, tools), server)


def test_a_pg_restore_17_script_is_refused_for_an_older_server(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="PostgreSQL 15 does not run"):
        check_tools(tools_in(tmp_path, 17), 15)


def test_a_folder_without_psql_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="runs psql"):
        check_tools(tools_in(tmp_path, 17, psql=False), 17)
