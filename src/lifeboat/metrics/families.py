"""A Snapshot as Prometheus metric families: pure, so the names, labels and values are
tested without a repository. Times are `_timestamp_seconds` (Unix time); the ages
(`lifeboat_rpo_seconds`, `lifeboat_wal_archive_lag_seconds`) are computed at `now`, the
moment of the scrape, from the snapshot's times. docs/metrics.md describes every one."""

from __future__ import annotations

import platform
from collections.abc import Iterator
from datetime import datetime, timedelta

from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric

from lifeboat import __version__
from lifeboat.metrics.facts import Snapshot, SourceFacts

SOURCE_REPO_TYPE = ["source", "repository", "type"]
SOURCE_REPO = ["source", "repository"]
SOURCE = ["source"]


def _gauge(name: str, documentation: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels)


def _seconds(moment: datetime) -> float:
    return moment.timestamp()


def build_info() -> Metric:
    info = InfoMetricFamily("lifeboat_build", "The running Lifeboat's version.")
    info.add_metric([], {"version": __version__, "python_version": platform.python_version()})
    return info


def backup_families(sources: list[SourceFacts]) -> Iterator[Metric]:
    last = _gauge(
        "lifeboat_backup_last_success_timestamp_seconds",
        "When the newest committed backup of each type finished.",
        SOURCE_REPO_TYPE,
    )
    duration = _gauge(
        "lifeboat_backup_last_duration_seconds",
        "How long the newest committed backup of each type took.",
        SOURCE_REPO_TYPE,
    )
    plain = _gauge(
        "lifeboat_backup_last_plain_size_bytes",
        "The newest backup's size before compression and encryption.",
        SOURCE_REPO_TYPE,
    )
    stored = _gauge(
        "lifeboat_backup_last_stored_size_bytes",
        "The newest backup's size as stored (compressed, encrypted).",
        SOURCE_REPO_TYPE,
    )
    count = _gauge(
        "lifeboat_backups",
        "Backups the repository holds, by result: committed (by type), damaged (both "
        "copies of the manifest unreadable, type unknown).",
        [*SOURCE_REPO_TYPE, "result"],
    )
    expected = _gauge(
        "lifeboat_backup_expected_interval_seconds",
        "The longest expected wait between two backups of the type: from the schedule, "
        "else from the retention policy's shortest tier.",
        ["source", "type"],
    )
    for facts in sources:
        for kind, interval in sorted(facts.backup_intervals.items()):
            expected.add_metric([facts.source, kind], interval.total_seconds())
        for repo in facts.repositories:
            if not repo.reachable:
                continue
            for kind, newest in sorted(repo.backups.items()):
                labels = [facts.source, repo.repository, kind]
                last.add_metric(labels, _seconds(newest.finished_at))
                duration.add_metric(labels, newest.seconds)
                plain.add_metric(labels, newest.plain_bytes)
                stored.add_metric(labels, newest.stored_bytes)
                count.add_metric([*labels, "committed"], newest.count)
            count.add_metric([facts.source, repo.repository, "unknown", "damaged"], repo.damaged)
    yield from (last, duration, plain, stored, count, expected)


def wal_families(sources: list[SourceFacts], taken_at: datetime, now: datetime) -> Iterator[Metric]:
    """The spool's ages were measured at taken_at: at now they are that much older."""
    archived = _gauge(
        "lifeboat_wal_last_archived_timestamp_seconds",
        "When the newest WAL segment in the repository's archive was uploaded.",
        SOURCE_REPO,
    )
    segments = _gauge(
        "lifeboat_wal_archived_segments", "WAL segments in the repository's archive.", SOURCE_REPO
    )
    lag = _gauge(
        "lifeboat_wal_archive_lag_seconds",
        "How long the oldest segment waiting in the async spool has waited (0: none waits).",
        SOURCE,
    )
    queued = _gauge("lifeboat_spool_segments", "WAL segments waiting in the async spool.", SOURCE)
    capacity = _gauge(
        "lifeboat_spool_capacity_segments",
        "At most this many wait in the spool (archive.spool_max_segments); beyond it "
        "wal-push uploads synchronously.",
        SOURCE,
    )
    refused = _gauge(
        "lifeboat_spool_refused_segments",
        "Files the spool's worker refused and kept aside (see lifeboat status).",
        SOURCE,
    )
    for facts in sources:
        spool = facts.spool
        if spool is None:
            continue  # a source other than PostgreSQL archives no WAL: no series at all
        for repo in facts.repositories:
            if repo.reachable:
                segments.add_metric([facts.source, repo.repository], repo.wal_segments)
            if repo.wal_archived_at is not None:
                archived.add_metric([facts.source, repo.repository], _seconds(repo.wal_archived_at))
        oldest = spool["oldest_queued_age_s"]
        waited = 0.0 if oldest is None else oldest + (now - taken_at).total_seconds()
        lag.add_metric([facts.source], max(waited, 0.0))
        queued.add_metric([facts.source], spool["queued"])
        capacity.add_metric([facts.source], facts.spool_capacity)
        refused.add_metric([facts.source], spool["refused"])
    yield from (archived, segments, lag, queued, capacity, refused)


def recovery_families(sources: list[SourceFacts], now: datetime) -> Iterator[Metric]:
    point = _gauge(
        "lifeboat_recovery_point_timestamp_seconds",
        "The newest moment a restore reaches, in the best of the source's repositories: "
        "the newest backup's snapshot (a PostgreSQL backup's end, another kind's start), or "
        "the newest archived WAL on a physical backup.",
        SOURCE,
    )
    rpo = _gauge(
        "lifeboat_rpo_seconds",
        "The current recovery point: the age of the newest restorable moment, at the scrape.",
        SOURCE,
    )
    rpo_objective = _gauge("lifeboat_rpo_objective_seconds", "The source's objectives.rpo.", SOURCE)
    rto_objective = _gauge("lifeboat_rto_objective_seconds", "The source's objectives.rto.", SOURCE)
    for facts in sources:
        newest = facts.recovery_point
        if newest is not None:
            point.add_metric([facts.source], _seconds(newest))
            rpo.add_metric([facts.source], max((now - newest).total_seconds(), 0.0))
        _add_duration(rpo_objective, facts.source, facts.rpo_objective)
        _add_duration(rto_objective, facts.source, facts.rto_objective)
    yield from (point, rpo, rpo_objective, rto_objective)


def _add_duration(family: GaugeMetricFamily, source: str, value: timedelta | None) -> None:
    if value is not None:
        family.add_metric([source], value.total_seconds())


def drill_families(sources: list[SourceFacts]) -> Iterator[Metric]:
    last = _gauge(
        "lifeboat_drill_last_timestamp_seconds", "When the newest restore drill started.", SOURCE
    )
    passed = _gauge(
        "lifeboat_drill_last_passed", "The newest drill's verdict: 1 pass, 0 fail.", SOURCE
    )
    last_pass = _gauge(
        "lifeboat_drill_last_pass_timestamp_seconds",
        "When the newest passed drill started.",
        SOURCE,
    )
    failing = _gauge(
        "lifeboat_drill_failing_backups",
        "Backups still kept whose newest drill failed.",
        SOURCE,
    )
    rto = _gauge(
        "lifeboat_drill_last_rto_seconds",
        "The recovery time the newest drill measured (absent when its restore failed).",
        SOURCE,
    )
    rpo = _gauge(
        "lifeboat_drill_last_rpo_seconds",
        "The data-loss window the newest drill measured.",
        SOURCE,
    )
    every = _gauge(
        "lifeboat_drill_expected_interval_seconds",
        "The source's objectives.drill_every: a drill must pass this often.",
        SOURCE,
    )
    for facts in sources:
        drills = facts.drills
        newest = drills["newest"]
        if newest is not None:
            last.add_metric([facts.source], datetime.fromisoformat(newest["at"]).timestamp())
            passed.add_metric([facts.source], 1.0 if newest["verdict"] == "pass" else 0.0)
        newest_pass = drills["newest_pass"]
        if newest_pass is not None:
            at = datetime.fromisoformat(newest_pass["at"]).timestamp()
            last_pass.add_metric([facts.source], at)
        failing.add_metric([facts.source], len(drills["failing"]))
        record = facts.newest_drill
        if record is not None and record.rto_seconds is not None:
            rto.add_metric([facts.source], record.rto_seconds)
        if record is not None and record.rpo_seconds is not None:
            rpo.add_metric([facts.source], record.rpo_seconds)
        _add_duration(every, facts.source, facts.drill_every)
    yield from (last, passed, last_pass, failing, rto, rpo, every)


def verification_families(sources: list[SourceFacts]) -> Iterator[Metric]:
    last = _gauge(
        "lifeboat_verification_last_timestamp_seconds",
        "When the newest verification of a backup still held was recorded.",
        SOURCE_REPO,
    )
    failing = _gauge(
        "lifeboat_verification_failing_backups",
        "Backups held whose newest verification failed.",
        SOURCE_REPO,
    )
    for facts in sources:
        for repo in facts.repositories:
            if not repo.reachable:
                continue
            labels = [facts.source, repo.repository]
            if repo.verification.newest_at is not None:
                last.add_metric(labels, _seconds(repo.verification.newest_at))
            failing.add_metric(labels, repo.verification.failing)
    yield from (last, failing)


def repository_families(snapshot: Snapshot) -> Iterator[Metric]:
    reachable = _gauge(
        "lifeboat_repository_reachable",
        "1 when the repository's marker could be read at the last refresh, else 0.",
        ["repository"],
    )
    for name, ok in sorted(snapshot.reachable.items()):
        reachable.add_metric([name], 1.0 if ok else 0.0)
    refreshed = _gauge(
        "lifeboat_metrics_refresh_timestamp_seconds",
        "When the repositories were last read for these metrics.",
        [],
    )
    refreshed.add_metric([], _seconds(snapshot.taken_at))
    took = _gauge(
        "lifeboat_metrics_refresh_duration_seconds",
        "How long reading the repositories took at the last refresh.",
        [],
    )
    took.add_metric([], snapshot.seconds)
    yield from (reachable, refreshed, took)


def families(snapshot: Snapshot, now: datetime) -> Iterator[Metric]:
    """Every family of the snapshot, its ages computed at now."""
    yield build_info()
    yield from repository_families(snapshot)
    yield from backup_families(snapshot.sources)
    yield from wal_families(snapshot.sources, snapshot.taken_at, now)
    yield from recovery_families(snapshot.sources, now)
    yield from drill_families(snapshot.sources)
    yield from verification_families(snapshot.sources)
