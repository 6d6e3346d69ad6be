"""`lifeboat report`: the facts of a compliance report for a period, read from the
configured repositories alone (manifests, verification and hold records, drill records,
the audit chain, the WAL archive) and the configuration; never from a database, so any
machine with read access to the repositories produces the same report.

Each repository is read once: its chain (events and verification share one walk), each
source's manifests and verification keys, and the WAL listing of a source with physical
backups. report_controls.py judges the facts; report_markdown.py (and the HTML renderer)
present the model (report_model.py)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import lifeboat
from lifeboat.context import Context
from lifeboat.errors import LifeboatError, UsageError
from lifeboat.ops import audit as audit_ops
from lifeboat.ops.drill_records import drills_history
from lifeboat.ops.prune import policy_for
from lifeboat.ops.report_controls import expected_of, judge, recipient_text
from lifeboat.ops.report_facts import RepoEvent, RepositoryPolicy, SourceFacts, WalFacts
from lifeboat.ops.report_grid import calendar, coverage
from lifeboat.ops.report_model import (
    AnchorCheck,
    BackupRow,
    ChainStatus,
    ComplianceReport,
    Deletion,
    DrillRow,
    HoldEvent,
    RepositoryRow,
    SourceReport,
)
from lifeboat.policy.retention import parse_duration, policy_summary
from lifeboat.postgres import wal
from lifeboat.repo.audit import AuditEvent, ChainWalk
from lifeboat.repo.catalog import Repository
from lifeboat.repo.drills import DrillRecord
from lifeboat.repo.manifest import Manifest, kind_name
from lifeboat.repo.records import AUDIT_PREFIX, checks_prefix, read_record, records_by_backup
from lifeboat.storage.options import shown_url, url_scheme
from lifeboat.wal.archive import archived_segments, continuity_problems

log = logging.getLogger(__name__)


@dataclass
class RepositoryRead:
    """What one repository gave, read once for every source of the report."""

    repo: Repository
    error: str | None = None
    events: list[AuditEvent] = field(default_factory=list)
    chain: ChainStatus | None = None
    chain_began: datetime | None = None  # the genesis: records before it are not in the chain
    legacy: list[dict[str, Any]] = field(default_factory=list)  # audit records before it
    # repository -> why the anchors of this chain kept there could not be listed
    unread_keepers: dict[str, str] = field(default_factory=dict)


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _chain_status(name: str, walk: ChainWalk) -> ChainStatus:
    report = walk.report
    first = min(report.problems, default=None)
    return ChainStatus(
        repository=name,
        whole=report.whole,
        events=report.events,
        head_sequence=report.head.sequence if report.head else None,
        head_hash=report.head.hash if report.head else None,
        first_bad=report.first_bad,
        problem=first.what if first else None,
        anchors=[
            AnchorCheck(
                kept_in=anchor.where.split(":", 1)[0],
                sequence=anchor.sequence,
                hash=anchor.hash,
                ok=walk.hashes.get(anchor.sequence) == anchor.hash,
            )
            for anchor in report.anchors_checked
        ],
    )


LEGACY_ACTIONS = ("prune", "hold", "release")


def stamp_time(leaf: str) -> datetime | None:
    """The time a record's key starts with (records.stamp); None for any other name."""
    try:
        return datetime.strptime(leaf.split("Z-", 1)[0], "%Y%m%dT%H%M%S.%f").replace(tzinfo=UTC)
    except ValueError:
        return None


def _legacy_records(repo: Repository, before: datetime | None) -> list[dict[str, Any]]:
    """The prune, hold and release records under audit/ written before the chain began
    (all of them in a repository without a chain). Their keys start with their UTC stamp,
    so only those older than the chain are read."""
    found = []
    for info in repo.storage.list(f"{AUDIT_PREFIX}2"):  # stamps, not chain/ or anchors/
        leaf = info.key[len(AUDIT_PREFIX) :]
        if "/" in leaf:
            continue
        at = stamp_time(leaf)
        action = leaf.partition("Z-")[2].partition("-")[2].partition("-")[0]
        if at is None or action not in LEGACY_ACTIONS or (before is not None and at >= before):
            continue
        body = read_record(repo.storage, info.key)
        if body is not None:
            found.append(body)
    return found


def read_repository(ctx: Context, repo: Repository) -> RepositoryRead:
    read = RepositoryRead(repo)
    try:
        # another repository that cannot be read must not take this one's data with it
        walk = audit_ops.verify_repository(ctx, repo, unread_keepers=read.unread_keepers)
        read.events = walk.events
        read.chain = _chain_status(repo.name, walk)
        read.chain_began = walk.events[0].at if walk.events else None
        read.legacy = _legacy_records(repo, read.chain_began)
    except LifeboatError as exc:
        log.warning("repository %s cannot be read: %s", repo.name, exc.message)
        read.error = exc.message
    return read


def _immutable(ctx: Context, name: str) -> str | None:
    config = ctx.config.repositories[name]
    if config.object_lock_days is None or url_scheme(config.url) != "s3":
        return None
    return f"S3 Object Lock, {config.object_lock_mode}, {config.object_lock_days} days"


# --- one source -----------------------------------------------------------------------------


def _by(event: AuditEvent) -> str:
    return f"{event.user}@{event.host}"


def _policy_text(details: Any) -> str:
    if not isinstance(details, dict):
        return str(details)
    return ", ".join(f"{k} = {v}" for k, v in sorted(details.items()) if v not in (None, 0))


def _deletion(
    repository: str, at: datetime, by: str, decision: dict[str, Any], policy: Any
) -> Deletion:
    reasons = decision.get("reasons")
    return Deletion(
        at=at,
        repository=repository,
        backup=str(decision.get("id")),
        kind=str(decision.get("type", "")),
        backup_started_at=_parse_time(decision.get("started_at")),
        reasons=[str(r) for r in reasons] if isinstance(reasons, list) else [],
        policy=_policy_text(policy),
        by=by,
    )


def _hold(
    repository: str, at: datetime, backup: str, action: str, body: dict[str, Any], by: str
) -> HoldEvent:
    return HoldEvent(
        at=at,
        repository=repository,
        backup=backup,
        action="hold" if action == "hold" else "release",
        reason=str(body.get("reason", "")),
        until=_parse_time(body.get("until")),
        by=by,
    )


@dataclass
class _Gathered:
    """A source's facts across repositories while they are read."""

    manifests: dict[str, Manifest] = field(default_factory=dict)  # first copy met
    holders: dict[str, list[str]] = field(default_factory=dict)
    reached: dict[str, set[str]] = field(default_factory=dict)
    pruned_from: dict[str, set[str]] = field(default_factory=dict)  # by a prune deletion
    # backup -> repository -> its newest check there: each copy is verified on its own
    outcomes: dict[str, dict[str, tuple[datetime, bool]]] = field(default_factory=dict)
    recorded: dict[str, dict[str, Any]] = field(default_factory=dict)  # backup events' details
    events: list[RepoEvent] = field(default_factory=list)
    deletions: list[Deletion] = field(default_factory=list)
    holds: list[HoldEvent] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)
    safety: set[str] = field(default_factory=set)  # restores' safety backups: left out
    damaged: list[str] = field(default_factory=list)  # backups whose manifest is unreadable
    unvouched: dict[str, dict[str, str]] = field(default_factory=dict)  # backup -> repo -> why
    odd: list[str] = field(default_factory=list)  # events and records that cannot be read

    def outcome(self, backup: str, repository: str, at: datetime, ok: bool) -> None:
        newest = self.outcomes.setdefault(backup, {})
        if repository not in newest or newest[repository][0] <= at:
            newest[repository] = (at, ok)

    def verification(self, backup: str, holders: list[str]) -> Literal["ok", "failed"] | None:
        """failed when the newest check of a copy it is kept in failed (of any copy, for a
        backup kept nowhere now): an ok check of one copy does not vouch for another."""
        checks = self.outcomes.get(backup, {})
        newest = [checks[name] for name in holders if name in checks] or list(checks.values())
        if not newest:
            return None
        return "ok" if all(ok for _, ok in newest) else "failed"


def _check_stamp(key: str) -> tuple[datetime, bool] | None:
    """A verification record's time and outcome, from its key alone."""
    leaf = key.rsplit("/", 1)[-1]
    at = stamp_time(leaf)
    return None if at is None else (at, leaf.endswith("-ok.json"))


def _read_source(source: str, read: RepositoryRead, gathered: _Gathered) -> None:
    repo = read.repo
    manifests, damaged = repo.scan_backups(source)
    # since the chain began, a backup committed or copied here came with its event
    recorded = {
        e.backup for e in read.events if e.event in ("backup", "copy") and e.source == source
    }
    committed = {
        e.backup: e.details for e in read.events if e.event == "backup" and e.source == source
    }
    for manifest in manifests:
        if manifest.safety:
            gathered.safety.add(manifest.id)
            continue  # a restore's copy of what it replaced: no scheduled backup
        why = _unvouched(manifest, read.chain_began, recorded, committed.get(manifest.id))
        if why is not None:
            gathered.unvouched.setdefault(manifest.id, {})[repo.name] = why
        gathered.manifests.setdefault(manifest.id, manifest)
        gathered.holders.setdefault(manifest.id, []).append(repo.name)
        gathered.reached.setdefault(manifest.id, set()).add(repo.name)
    for bad in damaged:
        log.warning("backup %s/%s in %s is damaged: %s", source, bad.backup, repo.name, bad.error)
        gathered.damaged.append(
            f"backup {bad.backup} in {repo.name}: neither its manifest nor its copy can be "
            f"read ({bad.error}): it cannot be restored from there"
        )
    # a verification from the chain's genesis on is its `verify` event: a record alone,
    # which anyone with write access can add or rename, vouches only for the time before
    for backup, keys in records_by_backup(repo.storage, checks_prefix(source)).items():
        stamps = [
            stamp
            for key in keys
            if (stamp := _check_stamp(key)) is not None
            and (read.chain_began is None or stamp[0] < read.chain_began)
        ]
        if stamps:
            gathered.outcome(backup, repo.name, *stamps[-1])
    for event in read.events:
        if event.source != source:
            continue
        try:
            _note_event(repo.name, event, gathered)
        except (TypeError, ValueError, AttributeError) as exc:
            # altered into a shape no Lifeboat writes (the newest event can be, unseen by
            # the links): named, and the report is still made of the others
            gathered.odd.append(
                f"event {event.sequence} in {repo.name} cannot be read as a {event.event} "
                f"event ({exc}): left out"
            )
            continue
        gathered.events.append(RepoEvent(repo.name, event))
    for body in read.legacy:
        try:
            _note_legacy(repo.name, source, body, gathered)
        except (TypeError, ValueError, AttributeError) as exc:
            gathered.odd.append(
                f"a {body.get('action')} record of {body.get('at')} in {repo.name} cannot be "
                f"read ({exc}): left out"
            )


def _unvouched(
    manifest: Manifest,
    began: datetime | None,
    recorded: set[str | None],
    committed: dict[str, Any] | None,
) -> str | None:
    """Why the chain does not vouch for a manifest in its repository; None: it does, or it
    predates the chain. The backup event keeps what the manifest said when committed."""
    if committed is not None:
        changed = [
            name
            for name, now, then in (
                ("its start", manifest.started_at, _parse_time(committed.get("started_at"))),
                ("its end", manifest.finished_at, _parse_time(committed.get("finished_at"))),
                ("its size", sum(o.size for o in manifest.objects), committed.get("bytes")),
                ("its encryption", manifest.encryption.method, committed.get("encryption")),
                ("its recipients", manifest.encryption.recipients, committed.get("recipients")),
            )
            if now != then
        ]
        if changed:
            return (
                f"its manifest and its backup event differ in {', '.join(changed)}: one was "
                "changed since the backup was committed"
            )
        return None
    if began is not None and manifest.finished_at >= began and manifest.id not in recorded:
        return (
            "no backup or copy event in its chain, which began before it: not put there by Lifeboat"
        )
    return None


def _note_event(repository: str, event: AuditEvent, gathered: _Gathered) -> None:
    """Raises TypeError or ValueError for an event whose subject or details Lifeboat does
    not write."""
    backup = event.backup
    if backup is None:
        return
    if not isinstance(backup, str):
        raise TypeError(f"its backup is {backup!r}")
    if event.event in ("backup", "copy"):
        gathered.reached.setdefault(backup, set()).add(repository)
        if event.event == "backup":
            gathered.recorded.setdefault(backup, event.details)
    elif event.event == "verify":
        gathered.outcome(backup, repository, event.at, bool(event.details.get("ok")))
    elif event.event in ("hold", "release"):
        gathered.holds.append(
            _hold(repository, event.at, backup, event.event, event.details, _by(event))
        )
    elif event.event == "prune":
        gathered.pruned_from.setdefault(backup, set()).add(repository)
        gathered.deletions.append(
            _deletion(repository, event.at, _by(event), event.details, event.details.get("policy"))
        )


def _note_legacy(repository: str, source: str, body: dict[str, Any], gathered: _Gathered) -> None:
    at = _parse_time(body.get("at"))
    if at is None or body.get("source") != source:
        return
    by = str(body.get("by", ""))
    action = body.get("action")
    if action in ("hold", "release"):
        gathered.holds.append(_hold(repository, at, str(body.get("backup")), str(action), body, by))
    elif action == "prune":
        deleted = set(body.get("deleted") or [])
        for decision in body.get("backups") or []:
            if isinstance(decision, dict) and decision.get("id") in deleted:
                gathered.pruned_from.setdefault(str(decision["id"]), set()).add(repository)
                gathered.deletions.append(
                    _deletion(repository, at, by, decision, body.get("policy"))
                )


def held_at_end(holds: list[HoldEvent], end: datetime) -> set[str]:
    """The backups a hold is in force on when a period [start, end) ends: the holds and
    releases before end replayed (one at end is the next period's), each repository's on
    their own (a release in one repository leaves another's hold)."""
    newest: dict[tuple[str, str], HoldEvent] = {}
    for event in sorted(holds, key=lambda h: h.at):
        if event.at < end:
            newest[(event.repository, event.backup)] = event
    return {
        backup
        for (_, backup), state in newest.items()
        if state.action == "hold" and (state.until is None or state.until >= end)
    }


def _rows(gathered: _Gathered, end: datetime) -> list[BackupRow]:
    rows = []
    held = held_at_end(gathered.holds, end)
    for backup, manifest in gathered.manifests.items():
        rows.append(
            BackupRow(
                id=backup,
                kind=manifest.type,
                started_at=manifest.started_at,
                finished_at=manifest.finished_at,
                stored_bytes=sum(o.size for o in manifest.objects),
                plain_bytes=manifest.plain_size,
                encryption=manifest.encryption.method,
                recipients=[recipient_text(r) for r in manifest.encryption.recipients],
                repositories=gathered.holders[backup],
                verification=gathered.verification(backup, gathered.holders[backup]),
                held=backup in held,
            )
        )
    for backup, details in gathered.recorded.items():
        if backup in gathered.manifests or backup in gathered.safety:
            continue
        started = _parse_time(details.get("started_at"))
        finished = _parse_time(details.get("finished_at"))
        if started is None or finished is None:
            continue
        recipients = details.get("recipients")
        rows.append(
            BackupRow(
                id=backup,
                kind=kind_name(str(details.get("kind", ""))),
                started_at=started,
                finished_at=finished,
                stored_bytes=_count(details.get("bytes")),
                plain_bytes=0,  # the chain records what was stored only
                encryption=str(details.get("encryption", "")),
                recipients=[recipient_text(r) for r in recipients if isinstance(r, dict)]
                if isinstance(recipients, list)
                else [],
                repositories=[],  # pruned since
                verification=gathered.verification(backup, []),
                held=backup in held,
            )
        )
    rows.sort(key=lambda r: (r.finished_at, r.id))
    return rows


def _count(value: Any) -> int:
    """A count an event gives; 0 for anything else (an altered event must not stop the
    report: the chain names it)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _drill_row(record: DrillRecord) -> DrillRow:
    return DrillRow(
        drill_id=record.drill_id,
        kind=record.kind,
        backup=record.backup,
        started_at=record.started_at,
        operator=record.operator,
        passed=record.passed,
        rto_seconds=record.rto_seconds,
        rpo_seconds=record.rpo_seconds,
        rto_objective_seconds=record.objectives.get("rto_seconds"),
        rpo_objective_seconds=record.objectives.get("rpo_seconds"),
        reasons=list(record.reasons),
    )


def _wal_facts(
    source: str,
    gathered: _Gathered,
    reads: dict[str, RepositoryRead],
    window: timedelta | None,
    now: datetime,
) -> WalFacts | None:
    physical = sorted(
        (m for m in gathered.manifests.values() if m.physical is not None),
        key=lambda m: m.started_at,
    )
    if not physical:
        return None
    older = [m for m in physical if window is not None and m.started_at <= now - window]
    base = older[-1] if older else physical[0]
    span = base.physical
    assert span is not None
    size = span.segment_size
    first = wal.Segment.parse(span.start_wal, size).number
    until = wal.Segment.parse(span.stop_wal, size).number
    problems: dict[str, list[str]] = {}
    newest: dict[str, str | None] = {}
    for name in gathered.holders[base.id]:
        read = reads[name]
        if read.error is not None:
            continue
        try:
            archived = archived_segments(read.repo.storage, source, size)
        except LifeboatError as exc:
            gathered.unreadable.setdefault(name, exc.message)
            continue
        problems[name] = continuity_problems(archived, span.timeline, first, until, size)
        numbers = archived.get(span.timeline)
        newest[name] = wal.Segment(span.timeline, max(numbers)).name(size) if numbers else None
        if not problems[name]:
            problems[name] = _archive_behind(physical, base, gathered, name, max(numbers or [-1]))
    return WalFacts(base.id, base.started_at, window, problems, newest)


def _archive_behind(
    physical: list[Manifest], base: Manifest, gathered: _Gathered, repository: str, newest: int
) -> list[str]:
    """An archive that stopped growing reads as continuous up to its newest segment: the
    newest physical backup kept in the repository on the base's timeline shows that the
    server went on past it. None of the WAL since was archived there; recovery stops."""
    timeline = base.physical.timeline if base.physical else None
    for manifest in reversed(physical):
        span = manifest.physical
        if span is None or span.timeline != timeline:
            continue
        if repository not in gathered.holders[manifest.id]:
            continue
        if wal.Segment.parse(span.stop_wal, span.segment_size).number <= newest:
            return []
        return [
            f"the WAL archive ends before {span.stop_wal}, where the newer physical backup "
            f"{manifest.id} ended: WAL archiving stopped, recovery cannot reach past it"
        ]
    return []


def source_facts(
    ctx: Context,
    source: str,
    reads: dict[str, RepositoryRead],
    start: datetime,
    end: datetime,
    now: datetime,
) -> tuple[SourceFacts, _Gathered]:
    config = ctx.source(source)
    repos = ctx.repositories_to_read(source)
    gathered = _Gathered()
    for repo in repos:
        read = reads[repo.name]
        if read.error is not None:
            # a repository of other sources or a copy target not set up is no exception
            if not ctx.may_pass_over(source, None, repo):
                gathered.unreadable[repo.name] = read.error
            continue
        try:
            _read_source(source, read, gathered)
        except LifeboatError as exc:
            gathered.unreadable[repo.name] = exc.message
    facts = SourceFacts(
        source=source,
        start=start,
        end=end,
        now=now,
        repositories=[repo.name for repo in repos],
        configured=list(ctx.config.repositories),
        reached=gathered.reached,
        pruned_from=gathered.pruned_from,
        events=sorted(gathered.events, key=lambda e: e.event.at),
        immutable={repo.name: _immutable(ctx, repo.name) for repo in repos},
        chains=[c for repo in repos if (c := reads[repo.name].chain) is not None],
        chain_began=max(
            (
                began
                for repo in ctx.repositories_for(source)
                if (began := reads[repo.name].chain_began) is not None
            ),
            default=None,
        ),
        anchors_unread=[
            f"the anchors of {repo.name} kept in {keeper} cannot be read: {why}"
            for repo in repos
            if reads[repo.name].error is None
            for keeper, why in reads[repo.name].unread_keepers.items()
        ],
        rto_objective_seconds=_seconds(config.objectives.rto),
        rpo_objective_seconds=_seconds(config.objectives.rpo),
        source_type=config.type,
    )
    facts.backups = _rows(gathered, end)
    facts.history_start = min((row.started_at for row in facts.backups), default=None)
    policies = _policies(ctx, source)
    first = policies.pop(repos[0].name, None)
    if first is None:
        facts.policy_text = "no retention policy configured"
    else:
        facts.policy, facts.zone, facts.policy_text = first
    facts.other_policies = {
        name: found for name, found in policies.items() if first is None or found[:2] != first[:2]
    }
    facts.wal = _wal_facts(
        source, gathered, reads, facts.policy.pitr_window if facts.policy else None, now
    )
    facts.unreadable = gathered.unreadable
    facts.damaged = gathered.damaged
    facts.unvouched = gathered.unvouched
    facts.odd = gathered.odd
    try:
        history = drills_history(ctx, source, now)
        facts.drills = [_drill_row(r) for r in history.records]
        newest = {record.backup: record for record in history.records}  # oldest first
        facts.unproved = {
            backup
            for backup, record in newest.items()
            if not record.passed and record.restore_proved is not True
        }
        unread = "; ".join(f"{name}: {why}" for name, why in history.unreadable.items())
        facts.drills_error = unread or None
    except LifeboatError as exc:
        facts.drills_error = exc.message
    return facts, gathered


def _policies(ctx: Context, source: str) -> dict[str, RepositoryPolicy]:
    """The retention policy prune applies in each repository the source writes to."""
    found = {}
    for repo in ctx.repositories_for(source):
        try:
            policy, zone = policy_for(ctx.config, source, repo.name)
        except UsageError:
            continue  # prune keeps everything there: nothing promised
        found[repo.name] = RepositoryPolicy(
            policy, zone, _policy_text(policy_summary(policy, zone))
        )
    return found


def _seconds(duration: str | None) -> float | None:
    return parse_duration(duration).total_seconds() if duration else None


def source_report(facts: SourceFacts, gathered: _Gathered) -> SourceReport:
    interval = expected_of(facts)
    # prune counts a backup whose newest verification failed, or whose newest drill could
    # not restore it, by no rule: it covers no cell, and the cells the policy promises are
    # counted over the good backups, as prune does
    good = [
        row
        for row in facts.backups
        if row.verification != "failed" and row.id not in facts.unproved
    ]
    cells = coverage(
        facts.end,
        facts.now,
        [row for row in good if row.repositories],
        [row.started_at for row in good],
        facts.policy,
        ZoneInfo(facts.zone),
    )
    # another repository's own policy promises cells of the backups it holds
    others = {
        name: coverage(
            facts.end,
            facts.now,
            [row for row in good if name in row.repositories],
            [row.started_at for row in good if name in facts.reached.get(row.id, ())],
            found.policy,
            ZoneInfo(found.zone),
        )
        for name, found in facts.other_policies.items()
    }
    return SourceReport(
        source=facts.source,
        rto_objective_seconds=facts.rto_objective_seconds,
        rpo_objective_seconds=facts.rpo_objective_seconds,
        controls=judge(facts, cells, others),
        backups=facts.period_backups,
        drills=[d for d in facts.drills if facts.in_period(d.started_at)],
        calendar=calendar(
            facts.start,
            facts.end,
            facts.now,
            # as for the frequency, a backup only put in place by hand makes no day's backup
            [row for row in facts.backups if not facts.only_by_hand(row)],
            interval[1] if interval else None,
            facts.history_start,
        ),
        coverage=cells,
        deletions=sorted(
            (d for d in gathered.deletions if facts.in_period(d.at)), key=lambda d: d.at
        ),
        holds=sorted((h for h in gathered.holds if facts.in_period(h.at)), key=lambda h: h.at),
    )


def build(
    ctx: Context,
    period_start: datetime,
    period_end: datetime,
    source: str | None = None,
    now: datetime | None = None,
) -> ComplianceReport:
    """The report of [period_start, period_end) for source (every configured source
    without one); an unknown source is a usage error. A repository that cannot be read is
    named, with why, and the report is built from the others."""
    if source is not None:
        ctx.source(source)
    if period_start >= period_end:
        raise UsageError(
            f"the period starts ({period_start.isoformat()}) after it ends "
            f"({period_end.isoformat()})"
        )
    now = now or datetime.now(UTC)
    reads = {name: read_repository(ctx, repo) for name, repo in ctx.repositories.items()}
    sources = []
    for name in [source] if source else list(ctx.config.sources):
        facts, gathered = source_facts(ctx, name, reads, period_start, period_end, now)
        sources.append(source_report(facts, gathered))
    return ComplianceReport(
        period_start=period_start,
        period_end=period_end,
        generated_at=now,
        lifeboat_version=lifeboat.__version__,
        repositories=[
            RepositoryRow(name, shown_url(read.repo.storage.url), _immutable(ctx, name), read.error)
            for name, read in reads.items()
        ],
        chains=[read.chain for read in reads.values() if read.chain is not None],
        sources=sources,
    )
