"""Compliance reports built by hand, for the tests of how a report is shown (HTML, charts,
PDF): realistic content without a repository behind it. Deterministic: the same report on
every call."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from lifeboat.ops.report_model import (
    CONTROL_IDS,
    AnchorCheck,
    BackupRow,
    CalendarDay,
    ChainStatus,
    ComplianceReport,
    Control,
    ControlStatus,
    CoverageCell,
    DayOutcome,
    Deletion,
    DrillRow,
    HoldEvent,
    RepositoryRow,
    SourceReport,
)

GIB = 1024**3
HOUR = 3600.0
# a name a renderer must escape: markup, an ampersand, both quotes, and non-ASCII text
AWKWARD_SOURCE = "crm <b>&amp; \"quotes\" 'too' — Zürich ✓"
KEY = "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq"


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=offset) for offset in range((end - start).days)]


def backups_daily(
    source: str, start: date, end: date, skip: set[date], seed: int = 1
) -> list[BackupRow]:
    """One logical backup a night at 02:00 from start to end (excluded), none on the days
    in skip; the database grows slowly, with noise, and so does the time a backup takes."""
    rng = random.Random(seed)
    rows = []
    for index, day in enumerate(_days(start, end)):
        if day in skip:
            continue
        size = int((2.0 + index * 0.004) * GIB * rng.uniform(0.97, 1.03))
        started = _at(day, 2)
        rows.append(
            BackupRow(
                id=f"{source[:3]}-{day:%Y%m%d}T0200",
                kind="logical",
                started_at=started,
                finished_at=started + timedelta(seconds=600 + index * 0.5 + rng.uniform(0, 120)),
                stored_bytes=size,
                plain_bytes=size * 4,
                encryption="age",
                recipients=[KEY],
                repositories=["main", "offsite"],
                verification="failed" if day.day == 13 and day.month == 5 else "ok",
                held=day in (date(2025, 12, 31), date(2026, 1, 1)),
            )
        )
    return rows


def drills_quarterly(backups: list[BackupRow], quarters: list[date]) -> list[DrillRow]:
    """A drill in the first week of each quarter on the newest backup before it; the one of
    the second quarter fails its RTO (over the 1 h objective)."""
    drills = []
    for number, quarter in enumerate(quarters):
        started = _at(quarter + timedelta(days=3), 10, 30)
        backup = max((b for b in backups if b.finished_at < started), key=lambda b: b.finished_at)
        slow = number == 1
        rto = 5400.0 if slow else 1500.0 + number * 200
        drills.append(
            DrillRow(
                drill_id=f"drill-{quarter:%Y%m%d}",
                kind="logical",
                backup=backup.id,
                started_at=started,
                operator="ops@dr-host",
                passed=not slow,
                rto_seconds=rto,
                rpo_seconds=(started - backup.finished_at).total_seconds(),
                rto_objective_seconds=HOUR,
                rpo_objective_seconds=36 * HOUR,
                reasons=["RTO 1 h 30 min over the objective of 1 h"] if slow else [],
            )
        )
    return drills


def calendar_of(backups: list[BackupRow], start: date, end: date) -> list[CalendarDay]:
    by_day: dict[date, list[BackupRow]] = {}
    for backup in backups:
        by_day.setdefault(backup.finished_at.date(), []).append(backup)
    days = []
    for day in _days(start, end):
        done = by_day.get(day, [])
        outcome: DayOutcome = "missing"
        if done:
            outcome = "failed" if all(b.verification == "failed" for b in done) else "ok"
        days.append(CalendarDay(day, outcome, [b.id for b in done]))
    return days


def _id(backup: BackupRow | None) -> str | None:
    return None if backup is None else backup.id


def coverage_of(backups: list[BackupRow], end: date) -> list[CoverageCell]:
    """A GFS grid keeping 14 daily, 8 weekly, 24 monthly and 7 yearly backups."""
    by_day = {b.finished_at.date(): b for b in backups}
    held = {b.id for b in backups if b.held}
    cells = []
    for offset in range(1, 15):
        day = end - timedelta(days=offset)
        found = by_day.get(day)
        cells.append(CoverageCell("daily", day.isoformat(), day, True, _id(found), False))
    for offset in range(1, 9):
        monday = end - timedelta(days=end.weekday() + 7 * offset)
        found = by_day.get(monday)
        year, week, _ = monday.isocalendar()
        cells.append(CoverageCell("weekly", f"{year}-W{week:02d}", monday, True, _id(found), False))
    for offset in range(1, 25):
        index = end.year * 12 + end.month - 1 - offset
        first = date(index // 12, index % 12 + 1, 1)
        found = by_day.get(first)
        is_held = found is not None and found.id in held
        cells.append(CoverageCell("monthly", f"{first:%Y-%m}", first, True, _id(found), is_held))
    for offset in range(7):
        year = end.year - offset
        found = by_day.get(date(year, 1, 1)) or by_day.get(date(year - 1, 12, 31))
        cells.append(
            CoverageCell(
                "yearly",
                str(year),
                date(year, 1, 1),
                offset < 3,
                _id(found),
                found is not None and found.id in held,
            )
        )
    return cells


def control(control_id: str, status: ControlStatus, exceptions: list[str] | None = None) -> Control:
    evidence = "nothing in the period" if status == "no-data" else "365 backups, <all> & sundry"
    return Control(
        id=control_id,
        title=f"{control_id} control",
        status=status,
        evidence=[f"evidence of {control_id}: {evidence}"],
        exceptions=exceptions or [],
    )


STATUSES_OF_MAIN: dict[str, ControlStatus] = {
    "frequency": "fail",
    "encryption": "pass",
    "offsite": "pass",
    "retention": "fail",
    "drills": "fail",
    "verification": "fail",
    "wal": "not-applicable",
    "immutability": "pass",
    "audit-chain": "fail",
}

START = date(2025, 4, 1)
END = date(2026, 4, 1)
MISSED = {date(2025, 7, 4), date(2025, 7, 5), date(2025, 11, 23), date(2026, 2, 2)}
QUARTERS = [date(2025, 4, 1), date(2025, 7, 1), date(2025, 10, 1), date(2026, 1, 1)]


def main_source() -> SourceReport:
    """A year of nightly backups, four missed nights, one failed verification, quarterly
    drills one of which failed, deletions and holds."""
    backups = backups_daily("wms", START, END, MISSED)
    drills = drills_quarterly(backups, QUARTERS)
    controls = [
        control(
            control_id,
            status,
            [f'{control_id}: exception on 2025-07-04 <late> & "quoted"']
            if status == "fail"
            else [],
        )
        for control_id, status in STATUSES_OF_MAIN.items()
    ]
    deletions = [
        Deletion(
            at=_at(day, 4),
            repository="main",
            backup=f"wms-{day - timedelta(days=15):%Y%m%d}T0200",
            kind="logical",
            backup_started_at=_at(day - timedelta(days=15), 2),
            reasons=["older than the 14 daily kept", "not the newest of its week <W>"],
            policy="daily=14 weekly=8 monthly=24 yearly=7",
            by="postgres@db1",
        )
        for day in _days(date(2025, 6, 1), date(2025, 6, 8))
    ]
    holds = [
        HoldEvent(
            _at(date(2026, 1, 2), 9),
            "main",
            "wms-20251231T0200",
            "hold",
            'year-end close: auditor\'s request "FY2025" <keep>',
            None,
            "cfo@office",
        ),
        HoldEvent(
            _at(date(2025, 9, 1), 9),
            "main",
            "wms-20250815T0200",
            "hold",
            "incident 42 & investigation",
            _at(date(2025, 10, 1), 0),
            "sec@office",
        ),
        HoldEvent(
            _at(date(2025, 10, 1), 0),
            "main",
            "wms-20250815T0200",
            "release",
            "investigation closed",
            None,
            "sec@office",
        ),
    ]
    return SourceReport(
        source="wms",
        rto_objective_seconds=HOUR,
        rpo_objective_seconds=36 * HOUR,
        controls=controls,
        backups=backups,
        drills=drills,
        calendar=calendar_of(backups, START, END),
        coverage=coverage_of(backups, END),
        deletions=deletions,
        holds=holds,
    )


def awkward_source() -> SourceReport:
    """A small source with a name that needs escaping: one week of backups, one passed
    drill, every control passing or not applicable."""
    start = END - timedelta(days=7)
    backups = backups_daily(AWKWARD_SOURCE, start, END, set(), seed=2)
    drill = DrillRow(
        "drill-<crm>&1",
        "logical",
        backups[0].id,
        _at(start, 12),
        "José@host",
        True,
        300.0,
        3600.0,
        HOUR,
        36 * HOUR,
        [],
    )
    statuses: dict[str, ControlStatus] = {"wal": "not-applicable", "drills": "pass"}
    return SourceReport(
        source=AWKWARD_SOURCE,
        rto_objective_seconds=HOUR,
        rpo_objective_seconds=36 * HOUR,
        controls=[control(c, statuses.get(c, "pass")) for c in CONTROL_IDS],
        backups=backups,
        drills=[drill],
        calendar=calendar_of(backups, START, END),
        coverage=coverage_of(backups, END),
        deletions=[],
        holds=[],
    )


def empty_source(name: str = "archive-db") -> SourceReport:
    """A configured source with nothing in the period: every control without data."""
    return SourceReport(
        source=name,
        rto_objective_seconds=None,
        rpo_objective_seconds=None,
        controls=[control(c, "no-data") for c in CONTROL_IDS],
        backups=[],
        drills=[],
        calendar=[],
        coverage=[],
        deletions=[],
        holds=[],
    )


REPOSITORIES = [
    RepositoryRow("main", "file:///srv/backups/<main>", None),
    RepositoryRow(
        "offsite", "s3://acme-dr/lifeboat?region=eu-west-1", "S3 Object Lock, COMPLIANCE, 30 days"
    ),
    RepositoryRow("old-nas", "file:///mnt/nas/lifeboat", None, "permission denied: '/mnt/nas'"),
]
HEAD = "9f2c" + "ab" * 30
CHAINS = [
    ChainStatus(
        "main",
        True,
        1480,
        1479,
        HEAD,
        None,
        None,
        [AnchorCheck("offsite", 1400, "77" * 32, True)],
    ),
    ChainStatus(
        "offsite",
        False,
        212,
        211,
        "5e" * 32,
        97,
        "event 97 changed: its hash does not match event 98's <previous>",
        [AnchorCheck("given", 150, "12" * 32, False)],
    ),
]


def sample_report() -> ComplianceReport:
    """Three sources: a year of history with failures, a small one with an awkward name,
    and an empty one; a repository that could not be read, a broken audit chain."""
    return ComplianceReport(
        period_start=_at(START, 0),
        period_end=_at(END, 0),
        generated_at=datetime(2026, 4, 1, 8, 15, 2, tzinfo=UTC),
        lifeboat_version="0.1.0",
        repositories=REPOSITORIES,
        chains=CHAINS,
        sources=[main_source(), awkward_source(), empty_source()],
    )


def empty_report() -> ComplianceReport:
    """A period with no data at all for its one source, and no chain read."""
    return ComplianceReport(
        period_start=_at(date(2030, 1, 1), 0),
        period_end=_at(date(2030, 4, 1), 0),
        generated_at=datetime(2030, 4, 2, 7, 0, tzinfo=UTC),
        lifeboat_version="0.1.0",
        repositories=REPOSITORIES[:1],
        chains=[],
        sources=[empty_source()],
    )


def seven_year_report() -> ComplianceReport:
    """Seven years of nightly backups (about 2,600), quarterly drills (28): the scale the
    report must stay legible and small at."""
    start, end = date(2019, 4, 1), date(2026, 4, 1)
    backups = backups_daily("wms", start, end, MISSED)
    quarters = [date(year, month, 1) for year in range(2019, 2026) for month in (4, 7, 10)]
    quarters += [date(year, 1, 1) for year in range(2020, 2027)]
    drills = drills_quarterly(backups, sorted(quarters))
    source = SourceReport(
        source="wms",
        rto_objective_seconds=HOUR,
        rpo_objective_seconds=36 * HOUR,
        controls=[control(c, STATUSES_OF_MAIN[c]) for c in CONTROL_IDS],
        backups=backups,
        drills=drills,
        calendar=calendar_of(backups, start, end),
        coverage=coverage_of(backups, end),
        deletions=[],
        holds=[],
    )
    return ComplianceReport(
        period_start=_at(start, 0),
        period_end=_at(end, 0),
        generated_at=datetime(2026, 4, 1, 8, 0, tzinfo=UTC),
        lifeboat_version="0.1.0",
        repositories=REPOSITORIES[:2],
        chains=CHAINS[:1],
        sources=[source],
    )
