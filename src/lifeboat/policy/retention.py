"""Which backups a retention policy keeps, and why: a pure function over backup facts.

The tier rules follow restic and borg. Going from the newest backup to the oldest, a rule
`keep_daily = N` keeps a backup whenever its day (in the policy's time zone) differs from
the day of the previous backup it looked at, until it has kept N: the newest backup of each
of the last N days that have backups. Hours, ISO weeks, months and years work the same way.
A backup may be kept by several rules; every rule that keeps it is reported.

Each kind of backup is counted on its own: the kinds are those the backups have (logical
and physical backups of PostgreSQL today, any kind a source adds later), none is named here.
Backups whose last verification failed, or whose newest restore drill failed to restore
them (not a drill that only missed the RTO or RPO objectives), are counted by no rule:
the next good backup of their period takes their place; a later passing verification, or
a later drill that restores them, makes them count again.
Whatever rule keeps an incremental backup also keeps the chain it builds on. A held backup,
or one whose Object Lock has not expired, is always kept.

The safety backup a restore takes of the database it replaces is no backup of the source in
the policy's sense: it counts for no rule (it is never the newest one kept, nor one of the
last N), and it is kept for `safety_backups_expire_after` after it started, then deleted
unless held.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

# the tier rules, shortest period first
TIERS = ("hourly", "daily", "weekly", "monthly", "yearly")


@dataclass(frozen=True)
class Policy:
    keep_last: int = 1
    keep_hourly: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0
    keep_within: timedelta | None = None
    # any moment this far back can still be restored: the newest base for point-in-time
    # recovery (of each kind that has them) that started before it is kept, and the WAL
    # from its start
    pitr_window: timedelta | None = None
    safety_backups_expire_after: timedelta = timedelta(days=7)

    def tier_count(self, tier: str) -> int:
        return int(getattr(self, f"keep_{tier}"))


@dataclass(frozen=True)
class Backup:
    """What retention needs to know of one backup."""

    id: str
    kind: str  # as people name it (logical, physical...): each kind is counted on its own
    started_at: datetime  # aware
    parent: str | None = None  # the backup an incremental builds on
    verification_failed: bool = False
    # its newest restore drill failed to restore it (repo/drills.unproved_backups)
    drill_failed: bool = False
    held: bool = False  # an active hold (see ops/holds.py)
    locked_until: datetime | None = None  # Object Lock retain-until of its objects
    # a restore's safety backup: the restore it was taken before, e.g. "restore of <id>
    # into wms"; None for every other backup
    safety_before: str | None = None
    # a base for point-in-time recovery (with the WAL after it): what pitr_window keeps
    wal_base: bool = False

    @property
    def failed_proof(self) -> bool:
        """Its newest verification or its newest drill failed: counted by no rule."""
        return self.verification_failed or self.drill_failed


@dataclass
class Decision:
    backup: Backup
    rules: list[str] = field(default_factory=list)  # which rules keep it, in policy order
    reasons: list[str] = field(default_factory=list)  # one line per rule, for people
    note: str = ""  # why no rule keeps it, when there is more to say than that

    @property
    def keep(self) -> bool:
        return bool(self.rules)

    @property
    def explanation(self) -> list[str]:
        """Why it is kept (one line per rule), or why it is not."""
        if self.reasons:
            return self.reasons
        if self.backup.verification_failed:
            return ["its newest verification failed: counted by no rule"]
        if self.backup.drill_failed:
            return ["its newest restore drill failed: counted by no rule"]
        return [self.note or "kept by no rule"]

    @property
    def tier(self) -> str:
        """The longest tier that keeps the backup (daily when none of weekly, monthly,
        yearly does): what a storage lifecycle by tier should treat it as."""
        for tier in ("yearly", "monthly", "weekly"):
            if tier in self.rules:
                return tier
        return "daily"

    def add(self, rule: str, reason: str) -> None:
        if rule not in self.rules:
            self.rules.append(rule)
            self.reasons.append(reason)


def _hour(moment: datetime) -> tuple[int, int, int, int, float]:
    # the offset tells apart the two hours that share a wall-clock hour when DST ends
    offset = moment.utcoffset()
    return (
        moment.year,
        moment.month,
        moment.day,
        moment.hour,
        offset.total_seconds() if offset else 0.0,
    )


def _day(moment: datetime) -> tuple[int, int, int]:
    return (moment.year, moment.month, moment.day)


def _week(moment: datetime) -> tuple[int, int]:
    iso = moment.isocalendar()
    return (iso.year, iso.week)


def _month(moment: datetime) -> tuple[int, int]:
    return (moment.year, moment.month)


def _year(moment: datetime) -> tuple[int]:
    return (moment.year,)


PERIOD_OF: dict[str, Callable[[datetime], tuple[object, ...]]] = {
    "hourly": _hour,
    "daily": _day,
    "weekly": _week,
    "monthly": _month,
    "yearly": _year,
}
PERIOD_NAME = {
    "hourly": "hour",
    "daily": "day",
    "weekly": "ISO week",
    "monthly": "month",
    "yearly": "year",
}


def _period_label(tier: str, moment: datetime) -> str:
    if tier == "hourly":
        return moment.strftime("%Y-%m-%d %H:00 %Z").strip()
    if tier == "daily":
        return moment.strftime("%Y-%m-%d")
    if tier == "weekly":
        iso = moment.isocalendar()
        return f"{iso.year}-W{iso.week:02d}"
    if tier == "monthly":
        return moment.strftime("%Y-%m")
    return moment.strftime("%Y")


def decide(
    backups: Iterable[Backup], policy: Policy, now: datetime, zone: tzinfo
) -> list[Decision]:
    """A decision for every backup, newest first."""
    decisions = [Decision(b) for b in sorted(backups, key=_newest_first)]
    by_id = {d.backup.id: d for d in decisions}
    for kind in sorted({d.backup.kind for d in decisions}):
        group = [d for d in decisions if d.backup.kind == kind and d.backup.safety_before is None]
        _apply_rules(group, policy, now, zone)
    for decision in decisions:
        backup = decision.backup
        if backup.safety_before is not None:
            _apply_safety_expiry(decision, policy.safety_backups_expire_after, now)
        if backup.held:
            decision.add("hold", "under a hold")
        if backup.locked_until is not None and backup.locked_until > now:
            decision.add(
                "object-lock", f"Object Lock until {backup.locked_until:%Y-%m-%d %H:%M %Z}"
            )
    _keep_chains(decisions, by_id)
    return decisions


def _newest_first(backup: Backup) -> tuple[float, str]:
    return (-backup.started_at.timestamp(), backup.id)


def _apply_rules(group: Sequence[Decision], policy: Policy, now: datetime, zone: tzinfo) -> None:
    good = [d for d in group if not d.backup.failed_proof]
    if not good:
        return
    kind = good[0].backup.kind
    good[0].add("newest", f"the newest good {kind} backup")
    for position, decision in enumerate(good[: policy.keep_last], start=1):
        decision.add("last", f"one of the last {policy.keep_last} ({position})")
    for tier in TIERS:
        wanted = policy.tier_count(tier)
        period_of = PERIOD_OF[tier]
        last_period: tuple[object, ...] | None = None
        kept = 0
        for decision in good:
            if kept >= wanted:
                break
            local = decision.backup.started_at.astimezone(zone)
            period = period_of(local)
            if period != last_period:
                kept += 1
                decision.add(
                    tier,
                    f"newest of {PERIOD_NAME[tier]} {_period_label(tier, local)} "
                    f"({kept} of {wanted})",
                )
                last_period = period
    if policy.keep_within is not None:
        since = now - policy.keep_within
        for decision in good:
            if decision.backup.started_at >= since:
                decision.add("within", f"younger than {duration_text(policy.keep_within)}")
    if policy.pitr_window is not None:
        horizon = now - policy.pitr_window
        for decision in (d for d in good if d.backup.wal_base):
            if decision.backup.started_at <= horizon:
                decision.add(
                    "pitr",
                    f"the base for restoring any moment of the last "
                    f"{duration_text(policy.pitr_window)}",
                )
                break


def _apply_safety_expiry(decision: Decision, expire_after: timedelta, now: datetime) -> None:
    backup = decision.backup
    if backup.failed_proof:
        return  # it cannot be restored: nothing to keep it for
    expires = backup.started_at + expire_after
    what = f"safety backup taken before {backup.safety_before}"
    if expires > now:
        decision.add("safety", f"{what}: expires {expires:%Y-%m-%d %H:%M %Z}")
    else:
        decision.note = f"{what}: expired {expires:%Y-%m-%d %H:%M %Z}"


def _keep_chains(decisions: Sequence[Decision], by_id: dict[str, Decision]) -> None:
    """An incremental backup restores only with the chain it builds on."""
    for decision in decisions:
        if not decision.keep:
            continue
        child = decision.backup
        parent_id = child.parent
        while parent_id is not None and parent_id in by_id:
            parent = by_id[parent_id]
            parent.add("chain", f"incremental {child.id} builds on it")
            child = parent.backup
            parent_id = child.parent


def duration_text(duration: timedelta) -> str:
    seconds = int(duration.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# the policy keys that are durations, as the configuration spells them
DURATIONS = ("keep_within", "pitr_window", "safety_backups_expire_after")


def parse_duration(text: str) -> timedelta:
    """'90m', '36h', '2d', '12w' (also combined: '1d12h')."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    cleaned = text.strip().lower().replace(" ", "")
    parts = re.findall(r"(\d+)([smhdw])", cleaned)
    if not parts or "".join(n + u for n, u in parts) != cleaned:
        raise ValueError(f"not a duration: {text!r} (use e.g. 36h, 2d, 12w)")
    return timedelta(seconds=sum(int(n) * units[u] for n, u in parts))


def merged_policy(layers: Sequence[object | None]) -> tuple[Policy, str] | None:
    """The policy and time zone name from retention tables, most general first (global,
    source, repository): a later table's keys override an earlier one's. None when no table
    sets anything: without a policy, prune has nothing to go by."""
    values: dict[str, object] = {}
    for layer in layers:
        if layer is None:
            continue
        for name, value in vars(layer).items():
            if value is not None:
                values[name] = value
    if not values:
        return None
    zone = str(values.pop("timezone", "UTC"))
    durations: dict[str, timedelta] = {
        name: parse_duration(str(values.pop(name))) for name in DURATIONS if name in values
    }
    counts = {name: int(str(value)) for name, value in values.items()}
    settings: dict[str, Any] = {**counts, **durations}
    return Policy(**settings), zone


def policy_summary(policy: Policy, zone: str) -> dict[str, object]:
    summary: dict[str, object] = {
        f"keep_{name}": policy.tier_count(name) for name in ("last", *TIERS)
    }
    for name in DURATIONS:
        value = getattr(policy, name)
        summary[name] = duration_text(value) if value is not None else None
    summary["timezone"] = zone
    return summary
