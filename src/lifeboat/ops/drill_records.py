"""Drill records across repositories: each drill's record is written into every repository
that holds the drilled backup, and read back from all of them as one history, each drill
once. What `drills`, `status`, `list` and `show` print of them is computed here.

The figures are plain functions of the records (summarise, overdue), so the command line,
status and any later report agree on them."""

from __future__ import annotations

import logging
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from lifeboat.context import Context
from lifeboat.errors import LifeboatError, NotInitialisedError, RepositoryError
from lifeboat.policy.retention import duration_text, parse_duration
from lifeboat.repo import audit
from lifeboat.repo.catalog import Repository
from lifeboat.repo.drills import DrillRecord, read_drills, write_drill

log = logging.getLogger(__name__)


def repositories_holding(ctx: Context, source: str, backup: str) -> list[Repository]:
    """Every configured repository that holds the backup, copy targets included: where its
    drill's record belongs."""
    return [repo for repo, _ in ctx.backups_named(backup, source)]


def record_drill(repositories: Sequence[Repository], record: DrillRecord) -> list[str]:
    """Write the record once into each repository (those holding the backup); the names of
    those it was written to, also left in record.repositories. One that cannot take it is a
    warning: the others keep the evidence. None taking it is an error, as the drill's
    evidence would be lost; so is no repository holding the backup any more (a prune
    deleted it while it was drilled)."""
    if not repositories:
        raise RepositoryError(
            f"backup {record.source}/{record.backup} is in no repository any more (pruned "
            f"while it was drilled?): the record of drill {record.drill_id} was not written"
        )
    # the body names where it is written, so a copy read from one repository tells where
    # the others are
    record.repositories = [repo.name for repo in repositories]
    written: list[str] = []
    failures: list[str] = []
    for repo in repositories:
        try:
            key = write_drill(repo.storage, record)
            audit.append(
                repo.storage,
                "drill",
                source=record.source,
                backup=record.backup,
                details=drill_event_details(record),
                record=key,
            )
        except LifeboatError as exc:
            log.warning(
                "cannot write the record of drill %s into repository %s: %s",
                record.drill_id,
                repo.name,
                exc.message,
            )
            failures.append(f"{repo.name}: {exc.message}")
            continue
        log.info("drill record %s written into %s", key, repo.name)
        written.append(repo.name)
    record.repositories = written
    if failures and not written:
        raise RepositoryError(
            f"the record of drill {record.drill_id} could not be written into any repository "
            f"({'; '.join(failures)})"
        )
    return written


def drill_event_details(record: DrillRecord) -> dict[str, Any]:
    """What the audit trail says of a drill: its verdict and what it measured."""
    return {
        "drill_id": record.drill_id,
        "verdict": record.verdict,
        "reasons": record.reasons,
        "rto_seconds": record.rto_seconds,
        "rpo_seconds": record.rpo_seconds,
        "operator": record.operator,
    }


# --- figures -----------------------------------------------------------------------------------


def drill_every(ctx: Context, source: str) -> timedelta | None:
    """The source's objectives.drill_every, None when it has none (or is not configured)."""
    config = ctx.config.sources.get(source)
    every = config.objectives.drill_every if config is not None else None
    return parse_duration(every) if every else None


def overdue(newest_pass: datetime | None, every: timedelta | None, now: datetime) -> bool:
    """Whether a drill is due: the newest passed drill started longer than `every` ago, or
    none passed yet. Never without an `every`."""
    if every is None:
        return False
    return newest_pass is None or now - newest_pass > every


@dataclass(frozen=True)
class DrillSummary:
    """One source's drills in figures. The RTO figures are of every drill that measured an
    RTO, whatever its verdict: a drill failed for exceeding the RTO objective is exactly the
    slow restore they must show."""

    source: str
    count: int
    passed: int
    rto_measured: int  # drills with an RTO
    rto_median: float | None
    rto_max: float | None
    newest: DrillRecord | None
    newest_pass: DrillRecord | None
    every: timedelta | None
    overdue: bool

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.count if self.count else None

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "drills": self.count,
            "passed": self.passed,
            "pass_rate": self.pass_rate,
            "rto_median_s": self.rto_median,
            "rto_max_s": self.rto_max,
            "rto_of": self.rto_measured,
            "newest": _brief(self.newest),
            "newest_pass": _brief(self.newest_pass),
            "drill_every": duration_text(self.every) if self.every else None,
            "overdue": self.overdue,
        }


def _brief(record: DrillRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {
        "drill_id": record.drill_id,
        "backup": record.backup,
        "verdict": record.verdict,
        "started_at": record.started_at.isoformat(),
    }


def summarise(
    source: str, records: Sequence[DrillRecord], every: timedelta | None, now: datetime
) -> DrillSummary:
    """The figures of one source's records (oldest first)."""
    rtos = [r.rto_seconds for r in records if r.rto_seconds is not None]
    passes = [r for r in records if r.passed]
    newest_pass = passes[-1] if passes else None
    return DrillSummary(
        source=source,
        count=len(records),
        passed=len(passes),
        rto_measured=len(rtos),
        rto_median=statistics.median(rtos) if rtos else None,
        rto_max=max(rtos) if rtos else None,
        newest=records[-1] if records else None,
        newest_pass=newest_pass,
        every=every,
        overdue=overdue(newest_pass.started_at if newest_pass else None, every, now),
    )


# --- history -----------------------------------------------------------------------------------


@dataclass
class DrillHistory:
    records: list[DrillRecord] = field(default_factory=list)  # every source's, newest last
    summaries: dict[str, DrillSummary] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)  # repository -> why

    def to_json(self) -> dict[str, Any]:
        return {
            "records": [r.to_json() for r in self.records],
            "summary": {name: s.to_json() for name, s in self.summaries.items()},
            "unreadable_repositories": self.unreadable,
        }


def unique_drills(records: Iterable[DrillRecord]) -> list[DrillRecord]:
    """Each drill once (the first copy met, read from the first repository), oldest first."""
    seen: dict[str, DrillRecord] = {}
    for record in records:
        seen.setdefault(record.drill_id, record)
    return sorted(seen.values(), key=lambda r: (r.started_at, r.drill_id))


def _readable(
    ctx: Context, source: str, repos: list[Repository], history: DrillHistory
) -> list[Repository]:
    """The repositories whose drill records can be read. One the source does not write to is
    passed over quietly when not initialised (another source's, or a copy target not set up
    yet); any other that cannot be read is noted in history.unreadable while another can be
    read (the history of the others is still worth seeing), an error when none can."""
    readable = []
    failed: list[LifeboatError] = []
    for repo in repos:
        try:
            repo.ensure_initialised()
        except LifeboatError as exc:
            passable = ctx.may_pass_over(source, None, repo)
            if not (passable and isinstance(exc, NotInitialisedError)):
                log.warning("repository %s cannot be read: %s", repo.name, exc.message)
                failed.append(exc)
                if repo.name not in history.unreadable:
                    history.unreadable[repo.name] = exc.message
            continue
        readable.append(repo)
    if failed and not readable:
        raise failed[0]
    return readable


def drills_history(ctx: Context, source: str | None, now: datetime) -> DrillHistory:
    """The drills of source (of every configured source), read from every repository that
    may hold them, copy targets included, each drill once."""
    names = [source] if source else list(ctx.config.sources)
    history = DrillHistory()
    for name in names:
        ctx.source(name)  # an unknown source is a usage error
        found: list[DrillRecord] = []
        for repo in _readable(ctx, name, ctx.repositories_to_read(name), history):
            found += read_drills(repo.storage, name)
        records = unique_drills(found)
        history.records += records
        history.summaries[name] = summarise(name, records, drill_every(ctx, name), now)
    history.records.sort(key=lambda r: (r.started_at, r.drill_id))
    return history
