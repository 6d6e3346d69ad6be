"""What the compliance report's controls judge, for one source: gathered from the
repositories by report.py, or built by hand in tests. Times are aware UTC."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from lifeboat.ops.report_model import BackupRow, ChainStatus, DrillRow
from lifeboat.policy.retention import Policy
from lifeboat.repo.audit import AuditEvent


class RepoEvent(NamedTuple):
    repository: str
    event: AuditEvent


class RepositoryPolicy(NamedTuple):
    """The retention policy prune applies in one repository, when it differs from the
    first repository's (SourceFacts.policy)."""

    policy: Policy
    zone: str
    text: str


@dataclass(frozen=True)
class WalFacts:
    """The WAL continuity of the PITR window, checked in each repository holding its base."""

    base: str  # the oldest kept physical backup the window needs
    base_started_at: datetime
    window: timedelta | None  # the policy's pitr_window; None: none configured
    problems: dict[str, list[str]]  # repository -> continuity problems; empty: continuous
    newest: dict[str, str | None]  # repository -> newest archived segment


@dataclass
class SourceFacts:
    source: str
    start: datetime
    end: datetime
    now: datetime
    repositories: list[str]  # the repositories read for the source
    configured: list[str]  # every configured repository
    # every backup known: kept now (a manifest) or recorded in a chain, oldest first
    backups: list[BackupRow] = field(default_factory=list)
    # backup id -> every repository holding it now or whose chain recorded it (backup, copy)
    reached: dict[str, set[str]] = field(default_factory=dict)
    # backup id -> the repositories whose chain (or older prune record) shows prune deleting it
    pruned_from: dict[str, set[str]] = field(default_factory=dict)
    events: list[RepoEvent] = field(default_factory=list)  # the source's, oldest first
    drills: list[DrillRow] = field(default_factory=list)  # every drill known, oldest first
    drills_error: str | None = None
    # backups whose newest drill failed to restore them (not merely missed an objective)
    unproved: set[str] = field(default_factory=set)
    policy: Policy | None = None
    policy_text: str = ""  # the policy as configured, or why there is none
    zone: str = "UTC"  # the policy's time zone: its days, weeks, months and years
    # the source's other repositories that prune with another policy ([repositories.NAME.
    # retention]): each promises its own cells, kept in it
    other_policies: dict[str, RepositoryPolicy] = field(default_factory=dict)
    rto_objective_seconds: float | None = None
    rpo_objective_seconds: float | None = None
    history_start: datetime | None = None  # the first backup ever
    wal: WalFacts | None = None  # None: no physical backup kept
    immutable: dict[str, str | None] = field(default_factory=dict)  # repository -> lock
    chains: list[ChainStatus] = field(default_factory=list)
    # the newest genesis of the readable chains of the repositories the source writes to:
    # from then on they record what happened, and a record without its event vouches for
    # nothing (a repository of other sources, begun later, does not move it)
    chain_began: datetime | None = None
    unreadable: dict[str, str] = field(default_factory=dict)  # repository -> why
    # backups whose manifest and its copy cannot be read, one line each (no row: no facts)
    damaged: list[str] = field(default_factory=list)
    # backup id -> repository -> why its chain does not vouch for the manifest there: no
    # backup or copy event since the chain began (put there by hand), or the manifest
    # differs from its backup event (changed since); no evidence
    unvouched: dict[str, dict[str, str]] = field(default_factory=dict)
    # events and older records in shapes Lifeboat does not write, left out: one line each
    odd: list[str] = field(default_factory=list)
    # a chain's anchors kept in a repository that cannot be read: unchecked, one line each
    anchors_unread: list[str] = field(default_factory=list)
    source_type: str = "postgres"  # the configured source's (redis, files, sqlite...)

    def vouched_in(self, row: BackupRow) -> set[str]:
        """The repositories holding the backup whose chain vouches for it there."""
        return set(row.repositories) - set(self.unvouched.get(row.id, {}))

    def only_by_hand(self, row: BackupRow) -> bool:
        """No repository holding the backup has it as its chain says it was committed."""
        return bool(row.repositories) and not self.vouched_in(row)

    def in_period(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    @property
    def period_backups(self) -> list[BackupRow]:
        return [row for row in self.backups if self.in_period(row.finished_at)]

    def period_events(self, kind: str) -> list[RepoEvent]:
        return [e for e in self.events if e.event.event == kind and self.in_period(e.event.at)]
