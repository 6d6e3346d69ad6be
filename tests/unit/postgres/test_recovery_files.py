"""postgres/recovery.py: what a restore writes into a data directory for recovery."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifeboat.errors import UsageError
from lifeboat.postgres.recovery import (
    configure_recovery,
    quote_setting,
    restore_command,
    write_tablespace_map,
)


def test_values_are_quoted_as_alter_system_writes_them() -> None:
    assert quote_setting("plain") == "'plain'"
    assert quote_setting("it's") == "'it''s'"
    assert quote_setting(r"C:\wal") == r"'C:\\wal'"


def test_configure_recovery_appends_settings_asks_for_recovery_and_drops_pid_files(
    tmp_path: Path,
) -> None:
    (tmp_path / "postgresql.auto.conf").write_text("work_mem = '8MB'\n")
    (tmp_path / "postmaster.pid").write_text("4242\n")
    (tmp_path / "postmaster.opts").write_text("postgres\n")
    configure_recovery(
        tmp_path, {"restore_command": "cp '%f' %p", "port": "5433"}, "added by a test"
    )
    assert (tmp_path / "postgresql.auto.conf").read_text() == (
        "work_mem = '8MB'\n\n# added by a test\nrestore_command = 'cp ''%f'' %p'\nport = '5433'\n"
    )
    assert (tmp_path / "recovery.signal").is_file()
    assert not (tmp_path / "postmaster.pid").exists()
    assert not (tmp_path / "postmaster.opts").exists()


def test_restore_command_fetches_through_lifeboat() -> None:
    assert (
        restore_command(
            "/opt/life boat/lifeboat",
            "wms",
            config_path=None,
            repository=None,
            staged_folder=None,
        )
        == "'/opt/life boat/lifeboat' wal-fetch wms %f %p"
    )


def test_restore_command_names_config_repository_and_staged_folder() -> None:
    command = restore_command(
        "lifeboat",
        "my source",
        config_path=Path("/etc/lifeboat.toml"),
        repository="offsite",
        staged_folder="lifeboat_wal",
    )
    assert command == (
        "cp lifeboat_wal/%f %p 2>/dev/null || "
        "lifeboat --config /etc/lifeboat.toml wal-fetch --repo offsite 'my source' %f %p"
    )


def test_tablespace_map_names_each_new_place(tmp_path: Path) -> None:
    write_tablespace_map(tmp_path, [(16400, Path("/srv/fast")), (16401, Path("/srv/a b"))])
    assert (tmp_path / "tablespace_map").read_text() == "16400 /srv/fast\n16401 /srv/a b\n"


def test_a_tablespace_folder_with_a_line_break_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="contains a line break"):
        write_tablespace_map(tmp_path, [(16400, Path("/srv/a\nb"))])
    assert not (tmp_path / "tablespace_map").exists()
