"""Finding the sender of a .history file from its data directory's pg_control (real
pg_control files are read in tests/integration/test_cluster_identity.py)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from lifeboat.postgres.pgcontrol import (
    PG_CONTROL_FILE_SIZE,
    sender_system_identifier,
    unsigned_system_identifier,
)
from tests.walfiles import SYSTEM_ID


def data_directory(root: Path, control: bytes | None) -> Path:
    """root/data with pg_wal/00000002.history, and global/pg_control holding control."""
    (root / "data" / "pg_wal").mkdir(parents=True)
    history = root / "data" / "pg_wal" / "00000002.history"
    history.write_text("1\t0/3000000\tno recovery target specified\n")
    if control is not None:
        (root / "data" / "global").mkdir()
        (root / "data" / "global" / "pg_control").write_bytes(control)
    return history


def control_file(order: str, version: int = 1700) -> bytes:
    head = struct.pack(order + "QI", SYSTEM_ID, version)
    return head + bytes(PG_CONTROL_FILE_SIZE - len(head))


@pytest.mark.parametrize("order", ["<", ">"])
def test_the_sender_is_read_in_the_server_s_byte_order(tmp_path: Path, order: str) -> None:
    history = data_directory(tmp_path, control_file(order))
    assert sender_system_identifier(history) == SYSTEM_ID


def test_a_relative_path_is_taken_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_directory(tmp_path, control_file("<", 1300))
    monkeypatch.chdir(tmp_path / "data")  # archive_command's working directory
    assert sender_system_identifier(Path("pg_wal/00000002.history")) == SYSTEM_ID


def test_a_symlinked_pg_wal_still_finds_the_data_directory(tmp_path: Path) -> None:
    history = data_directory(tmp_path, control_file("<"))
    outside = tmp_path / "waldir"
    (tmp_path / "data" / "pg_wal").rename(outside)
    (tmp_path / "data" / "pg_wal").symlink_to(outside)
    assert sender_system_identifier(history) == SYSTEM_ID


@pytest.mark.parametrize(
    "control",
    [None, b"", control_file("<")[:4096], control_file("<", version=0), bytes(8192)],
    ids=["absent", "empty", "short", "no-version", "zeros"],
)
def test_without_a_readable_pg_control_the_sender_is_unknown(
    tmp_path: Path, control: bytes | None
) -> None:
    assert sender_system_identifier(data_directory(tmp_path, control)) is None


def test_a_signed_identifier_from_sql_is_the_unsigned_one_of_the_wal_header() -> None:
    # pg_control_system() shows identifiers of 2**63 and more as negative bigints
    unsigned = (1 << 63) + 12345
    signed = unsigned - (1 << 64)
    assert unsigned_system_identifier(str(signed)) == str(unsigned)
    assert unsigned_system_identifier(unsigned) == str(unsigned)
    assert unsigned_system_identifier(str(SYSTEM_ID)) == str(SYSTEM_ID)
    with pytest.raises(ValueError):
        unsigned_system_identifier("not a number")
