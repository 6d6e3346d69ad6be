"""Is the server a backup, `check` or `wal-stream` talks to the cluster its source holds?

A source pointed at a new server by mistake would otherwise fill the repository with
backups of another cluster, beside WAL that cannot replay onto them. The record of the
source's cluster is repo/cluster.py; `wal-push` checks each segment against it in
wal/archive.py. A deliberate move (pg_upgrade, a rebuilt server) is accepted by a backup
with `accept_new`: a new record names the cluster it replaces, and WAL of the new cluster
is taken from then on. Backups of the old one keep restoring: they and their WAL stay.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import psycopg

from lifeboat.errors import LifeboatError, RepositoryError, UsageError
from lifeboat.postgres import logical, physical, wal
from lifeboat.postgres.conn import PgEndpoint
from lifeboat.repo import cluster
from lifeboat.repo.catalog import Repository
from lifeboat.repo.cluster import ClusterIdentity, ClusterMismatchError, ClusterRecord
from lifeboat.repo.manifest import Server
from lifeboat.repo.wal_files import archived_files

log = logging.getLogger(__name__)


def server_identity(conn: psycopg.Connection[Any], server: Server) -> ClusterIdentity | None:
    """The cluster behind a connection; None when the role may not read its system
    identifier (pg_control_system() is executable by PUBLIC unless revoked)."""
    if server.system_identifier is None:
        return None
    return ClusterIdentity(
        server.system_identifier, logical.server_major(server), physical.wal_segment_size(conn)
    )


def _refusal(
    subject: str, source: str, found: ClusterIdentity, record: ClusterRecord, repo: Repository
) -> str:
    return cluster.mismatch_message(subject, source, found, record, repo.storage)


def refuse_other_cluster(
    repos: Sequence[Repository], source: str, found: ClusterIdentity | None, subject: str
) -> None:
    """ClusterMismatchError when a repository records another cluster for source (for
    `check` and `wal-stream`, which record nothing themselves)."""
    if found is None:
        return
    for repo in repos:
        record = cluster.contradiction(repo.storage, source, found)
        if record is not None:
            raise ClusterMismatchError(
                _refusal(subject, source, found, record, repo)
                + ": its WAL would be refused; if the source moved to this cluster on purpose, "
                f"run `lifeboat backup {source} --accept-new-cluster`"
            )


def confirm_for_backup(
    repos: Sequence[Repository],
    source: str,
    conn: psycopg.Connection[Any],
    endpoint: PgEndpoint,
    kind: str,
    accept_new: bool,
) -> None:
    """Before a `kind` (logical, physical) backup streams: the server must be the source's
    cluster, which it becomes where the source has no record yet. With accept_new, a server
    that is another cluster is recorded as the source's new one instead of refused."""
    subject = f"the server at {endpoint.describe()}"
    found = server_identity(conn, logical.server_info(conn))
    if found is None:
        if accept_new:
            raise UsageError(
                f"--accept-new-cluster needs the system identifier of {subject}, which this "
                "role may not read (grant EXECUTE on pg_control_system())"
            )
        log.warning(
            "cannot read the system identifier of %s: not checked against the cluster "
            "source %s holds",
            subject,
            source,
        )
        return
    replacing: list[tuple[Repository, ClusterRecord | None]] = []
    for repo in repos:
        try:
            record = cluster.contradiction(repo.storage, source, found)
        except RepositoryError:
            if not accept_new:
                raise
            replacing.append((repo, None))  # damaged: the new record supersedes it
            continue
        if record is None:
            continue
        if not accept_new:
            raise ClusterMismatchError(
                _refusal(subject, source, found, record, repo)
                + f": refusing to back it up; if source {source} moved to this cluster on "
                f"purpose (pg_upgrade, a rebuilt server), run `lifeboat backup {source} "
                "--accept-new-cluster`"
            )
        replacing.append((repo, record))
    if replacing:
        _accept_new_cluster(conn, replacing, source, found)
    replaced = {repo.name for repo, _ in replacing}
    for repo in repos:
        if repo.name in replaced:
            continue
        other = cluster.ensure_recorded(repo.storage, source, found, f"{kind} backup")
        if other is not None:  # another cluster recorded itself a moment ago
            raise ClusterMismatchError(
                _refusal(subject, source, found, other, repo) + ": refusing to back it up"
            )


def _accept_new_cluster(
    conn: psycopg.Connection[Any],
    replacing: list[tuple[Repository, ClusterRecord | None]],
    source: str,
    found: ClusterIdentity,
) -> None:
    """Record found as the source's cluster in each repository, after the record it
    replaces (None: a damaged one)."""
    _refuse_colliding_wal(conn, [repo for repo, _ in replacing], source, found)
    for repo, record in replacing:
        cluster.record_cluster(
            repo.storage, source, found, "backup --accept-new-cluster", replacing=record
        )
        log.warning(
            "source %s now holds the cluster %s in repository %s (it held %s): its WAL is "
            "archived from now on, the other cluster's is refused",
            source,
            found.system_identifier,
            repo.name,
            record.system_identifier if record else "a damaged record",
        )


def _first_segment_to_archive(conn: psycopg.Connection[Any], segment_size: int) -> str:
    """The oldest segment the server will still archive: the one its archiver keeps failing
    on (a server whose archive_command already points at the source had its WAL refused,
    and retries from there), else where it writes (or replays) now."""
    # a standby that has replayed nothing yet has no replay position (NULL): what it
    # received is where its WAL goes on from
    row = conn.execute(
        "SELECT CASE WHEN pg_is_in_recovery() "
        "THEN coalesce(pg_last_wal_replay_lsn(), pg_last_wal_receive_lsn()) "
        "ELSE pg_current_wal_lsn() END::text, "
        "(SELECT last_failed_wal FROM pg_stat_archiver "
        " WHERE last_failed_time > coalesce(last_archived_time, '-infinity'))"
    ).fetchone()
    assert row is not None
    return first_segment_to_archive(row[0], row[1], segment_size)


def first_segment_to_archive(here_lsn: str | None, failing: str | None, segment_size: int) -> str:
    """_first_segment_to_archive from what the server said: its position (None on a standby
    that has neither replayed nor received WAL yet) and its archiver's failing file."""
    if here_lsn is None:
        raise LifeboatError(
            "cannot tell where the server's WAL goes on from: it is a standby that has "
            "neither replayed nor received WAL yet; accept the new cluster once it has"
        )
    here = wal.Segment.of_lsn(1, wal.parse_lsn(here_lsn), segment_size).name(segment_size)
    failing_segment = (failing or "")[:24]
    if wal.is_segment_name(failing_segment) and failing_segment[8:] < here[8:]:
        return failing_segment
    return here


def _refuse_colliding_wal(
    conn: psycopg.Connection[Any], repos: Sequence[Repository], source: str, found: ClusterIdentity
) -> None:
    """A new cluster names its WAL after its own position: from a fresh initdb that is the
    first segments again, which the archive may hold for the old cluster (pg_upgrade goes
    on after the old cluster's WAL instead). Those names would be refused as conflicts, so
    the move is refused here, while nothing is recorded yet. A segment name is timeline,
    then position: positions are compared whatever the timeline."""
    if found.segment_size is None:
        return
    first = _first_segment_to_archive(conn, found.segment_size)
    for repo in repos:
        taken = [
            f.name
            for f in archived_files(repo.storage, source)
            if wal.is_segment_name(f.name) and f.name[8:] >= first[8:]
        ]
        if taken:
            raise LifeboatError(
                f"cannot accept the new cluster {found.system_identifier} for source "
                f"{source}: its WAL (from {first} on) would take names repository "
                f"{repo.name} holds for the old cluster (up to "
                f"{max(taken, key=lambda name: name[8:])}), and those segments would be "
                "refused; back the new cluster up as a new source instead"
            )
