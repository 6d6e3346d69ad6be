"""Which cluster sent a WAL file that has no page header (a `.history` or `.backup` file):
the system identifier in the sender's pg_control, as pgBackRest finds it.

PostgreSQL runs archive_command in the data directory and passes %p relative to it
(`pg_wal/00000002.history`), so `<data directory>/global/pg_control` sits two levels above
the file. ControlFileData (src/include/catalog/pg_control.h) starts, in the server's byte
order, with:

    offset  0  uint64 system_identifier
            8  uint32 pg_control_version   (1300 for PostgreSQL 13 to 16, 1700 for 17, ...)

A file elsewhere (wal-stream's staging folder, the async spool, a copy made by hand) has no
pg_control above it: its sender is unknown and it is taken as before, unchecked.
"""

from __future__ import annotations

import logging
import struct
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

CONTROL_FILE = Path("global") / "pg_control"
PG_CONTROL_FILE_SIZE = 8192
# every pg_control_version so far is a small number (PostgreSQL's major times 100): read in
# the wrong byte order it is not, which tells the server's byte order as the WAL magic does
_LARGEST_CONTROL_VERSION = 0xFFFF


def _byte_order(head: bytes) -> Literal["<", ">"] | None:
    if 0 < int.from_bytes(head[8:12], "little") <= _LARGEST_CONTROL_VERSION:
        return "<"
    if 0 < int.from_bytes(head[8:12], "big") <= _LARGEST_CONTROL_VERSION:
        return ">"
    return None


def control_file_of(wal_file: Path) -> Path | None:
    """The pg_control of the data directory wal_file lies in (as `pg_wal/<name>`), or None.
    The path as given comes first: a pg_wal that is a symbolic link (initdb --waldir)
    resolves to a folder outside the data directory."""
    for candidate in (wal_file.absolute(), wal_file.resolve()):
        control = candidate.parent.parent / CONTROL_FILE
        if control.is_file():
            return control
    return None


def sender_system_identifier(wal_file: Path) -> int | None:
    """The system identifier of the cluster whose pg_wal holds wal_file; None when it lies
    elsewhere or its pg_control cannot be read (then nobody can tell who sent it)."""
    control = control_file_of(wal_file)
    if control is None:
        return None
    try:
        with open(control, "rb") as handle:
            head = handle.read(12)
    except OSError as exc:
        log.debug("cannot read %s: %s", control, exc.strerror)
        return None
    order = _byte_order(head) if len(head) == 12 else None
    if order is None or control.stat().st_size != PG_CONTROL_FILE_SIZE:
        log.debug("%s does not look like a pg_control file", control)
        return None
    (system_identifier,) = struct.unpack(order + "Q", head[:8])
    return int(system_identifier)


# ControlFileData.state (a DBState, int32 at offset 16) of a server that stopped cleanly
# while still in recovery, as one does at its recovery target with
# recovery_target_action = shutdown; one that stopped at an error stays "in archive recovery"
_STATE_OFFSET = 16
DB_SHUTDOWNED_IN_RECOVERY = 2
# set when recovery has ended and the server accepts writes (a promoted or started cluster)
DB_IN_PRODUCTION = 6


def cluster_state(pgdata: Path) -> int | None:
    """The DBState pg_control of the cluster in pgdata records, None when unreadable."""
    try:
        with open(pgdata / CONTROL_FILE, "rb") as handle:
            head = handle.read(_STATE_OFFSET + 4)
    except OSError:
        return None
    order = _byte_order(head) if len(head) == _STATE_OFFSET + 4 else None
    if order is None:
        return None
    (state,) = struct.unpack(order + "i", head[_STATE_OFFSET:])
    return int(state)


def shut_down_in_recovery(pgdata: Path) -> bool:
    """Whether the cluster in pgdata was last shut down cleanly during recovery."""
    return cluster_state(pgdata) == DB_SHUTDOWNED_IN_RECOVERY


def unsigned_system_identifier(system_identifier: str | int) -> str:
    """The system identifier in decimal, unsigned. PostgreSQL shows it as a signed bigint in
    SQL (pg_control_system()) but unsigned in pg_controldata and the WAL page header: read
    both ways, an identifier of 2**63 or more would be two clusters. ValueError when it is
    not a number."""
    return str(int(system_identifier) % 2**64)
