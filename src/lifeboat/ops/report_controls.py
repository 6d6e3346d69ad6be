"""The compliance report's controls (report_model.CONTROL_IDS), each judged from one
source's facts: pass, fail, no-data or not-applicable, with evidence and exceptions an
auditor can check against the repository (ids, dates, hashes, counts). Pure; no I/O."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from lifeboat.ops.report_facts import RepoEvent, SourceFacts
from lifeboat.ops.report_grid import (
    TIERS,
    expected_interval,
    longest_allowed_gap,
    quarters,
)
from lifeboat.ops.report_model import (
    CONTROL_IDS,
    BackupRow,
    ChainStatus,
    Control,
    ControlStatus,
    CoverageCell,
    DrillRow,
)
from lifeboat.policy.drill import seconds_text
from lifeboat.policy.retention import duration_text

TITLES = {
    "frequency": "Backups at the expected frequency",
    "encryption": "Every backup encrypted",
    "offsite": "An off-site copy in another repository",
    "retention": "Retention coverage (GFS grid of the last 7 years)",
    "drills": "A passed restore drill in each quarter",
    "verification": "Verification outcomes",
    "wal": "WAL continuity of the PITR window",
    "immutability": "Object Lock / immutability",
    "audit-chain": "Audit chain whole and matching its anchors",
}


def when(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _control(
    control_id: str,
    evidence: list[str],
    exceptions: list[str],
    status: ControlStatus | None = None,
) -> Control:
    judged: ControlStatus = status or ("fail" if exceptions else "pass")
    return Control(control_id, TITLES[control_id], judged, evidence, exceptions)


def _no_backups(control_id: str) -> Control:
    return _control(control_id, ["no backup finished in the period"], [], "no-data")


def _backup(row: BackupRow) -> str:
    return f"{row.id} ({when(row.finished_at)})"


# --- frequency ------------------------------------------------------------------------------


def expected_of(facts: SourceFacts) -> tuple[str, timedelta, str] | None:
    """The shortest interval any repository's policy promises (a backup goes to every
    repository of the source at once), its tier, and the policy it comes from."""
    policies = [(facts.policy, facts.policy_text)] + [
        (found.policy, f"{name}: {found.text}") for name, found in facts.other_policies.items()
    ]
    found = [
        (*expected, text)
        for policy, text in policies
        if (expected := expected_interval(policy)) is not None
    ]
    return min(found, key=lambda f: f[1], default=None)


def frequency(facts: SourceFacts) -> Control:
    expected = expected_of(facts)
    if expected is None:
        return _control(
            "frequency",
            [
                f"the retention policy ({facts.policy_text}) promises no hourly, daily, weekly, "
                "monthly or yearly backups: no interval to hold backups to"
            ],
            [],
            "not-applicable",
        )
    tier, interval, policy_text = expected
    allowed = longest_allowed_gap(interval)
    # a backup only put in place by hand (no backup event where it is) fills no gap
    rows = [row for row in facts.period_backups if not facts.only_by_hand(row)]
    evidence = [
        f"expected interval: {tier} (from the retention policy: {policy_text}); "
        f"a gap up to {duration_text(allowed)} is allowed"
    ]
    if facts.history_start is None or facts.history_start >= facts.end:
        return _control(
            "frequency", [*evidence, "no backup before the period's end"], [], "no-data"
        )
    begin = max(facts.start, facts.history_start)
    finish = min(facts.end, facts.now)
    times = sorted(row.finished_at for row in rows)
    if times:
        evidence.append(
            f"{len(times)} backups finished in the period, the first at {when(times[0])}, "
            f"the last at {when(times[-1])}"
        )
    exceptions = []
    points = [begin, *(t for t in times if t > begin), finish]
    for before, after in pairwise(points):
        if after - before > allowed:
            exceptions.append(
                f"no backup from {when(before)} to {when(after)} "
                f"({seconds_text((after - before).total_seconds())}, expected {tier})"
            )
    if not times and not exceptions:
        return _control("frequency", [*evidence, "no backup finished in the period"], [], "no-data")
    return _control("frequency", evidence, exceptions)


# --- encryption -----------------------------------------------------------------------------


def encryption(facts: SourceFacts) -> Control:
    rows = facts.period_backups
    if not rows:
        return _no_backups("encryption")
    exceptions = [
        f"backup {_backup(row)} is not encrypted to any recipient"
        for row in rows
        if row.encryption not in ("age", "gpg") or not row.recipients
    ]
    methods = sorted({row.encryption for row in rows})
    recipients = sorted({r for row in rows for r in row.recipients})
    evidence = [
        f"{len(rows) - len(exceptions)} of {len(rows)} backups encrypted ({', '.join(methods)})",
        f"recipients: {', '.join(recipients) or 'none'}",
    ]
    for found in facts.period_events("key"):
        details = found.event.details
        evidence.append(
            f"key change at {when(found.event.at)} with backup {found.event.backup} "
            f"({found.repository}, event {found.event.sequence}): "
            f"{_recipients(details.get('previous_recipients'))} -> "
            f"{_recipients(details.get('recipients'))}"
        )
    return _control("encryption", evidence, exceptions)


def _recipients(value: object) -> str:
    if not isinstance(value, list):
        return "?"
    return ", ".join(recipient_text(r) for r in value if isinstance(r, dict)) or "none"


def recipient_text(recipient: dict[str, str]) -> str:
    """A manifest's recipient as a report names it: type:id."""
    return f"{recipient.get('type', '?')}:{recipient.get('id', '?')}"


# --- offsite --------------------------------------------------------------------------------


def offsite(facts: SourceFacts) -> Control:
    if len(facts.configured) < 2:
        only = facts.configured[0] if facts.configured else "none"
        return _control(
            "offsite",
            [f"one repository is configured ({only})"],
            ["no backup can have an off-site copy: configure a second repository and copy"],
        )
    rows = facts.period_backups
    if not rows:
        return _no_backups("offsite")
    exceptions = []
    for row in rows:
        # a copy counts where it is kept and its chain vouches for it, or where prune
        # deleted it by its rules; one gone any other way, or put or changed by hand,
        # counts nowhere
        kept = facts.vouched_in(row)
        unvouched = sorted(set(row.repositories) - kept)
        pruned = facts.pruned_from.get(row.id, set())
        reached = facts.reached.get(row.id, set())
        gone = sorted(r for r in reached - set(row.repositories) if r not in pruned)
        held = sorted(kept | (reached & pruned))
        if len(held) < 2:
            notes = [f"gone from {', '.join(gone)} without a prune deletion"] if gone else []
            if unvouched:
                notes.append(f"not vouched for by the chain of {', '.join(unvouched)}")
            exceptions.append(
                f"backup {_backup(row)} is only in {', '.join(held) or 'no repository'}"
                + (f" ({'; '.join(notes)})" if notes else "")
            )
    copies = facts.period_events("copy")
    evidence = [
        f"{len(rows) - len(exceptions)} of {len(rows)} backups are in two or more repositories",
        f"{len(copies)} copies recorded in the period (copy events)",
    ]
    evidence += [
        f"copy of {c.event.backup} from {c.event.details.get('from', '?')} into {c.repository} "
        f"at {when(c.event.at)} (event {c.event.sequence})"
        for c in copies[:20]
    ]
    return _control("offsite", evidence, exceptions)


# --- retention ------------------------------------------------------------------------------


def retention(
    facts: SourceFacts,
    cells: list[CoverageCell],
    others: dict[str, list[CoverageCell]] | None = None,
) -> Control:
    """The first repository's policy over the grid (backups kept anywhere), then each other
    repository pruned with its own policy over the backups kept in it."""
    judged = _retention_of_grid(facts, cells)
    if not others:
        return judged
    evidence, exceptions = list(judged.evidence), list(judged.exceptions)
    promised = judged.status in ("pass", "fail")
    for name, grid in others.items():
        found = facts.other_policies[name]
        of_policy = [c for c in grid if c.promised]
        promised = promised or bool(of_policy)
        missed = [c for c in of_policy if not c.covered]
        evidence.append(
            f"{name} prunes with its own policy ({found.text}): {len(of_policy)} cells "
            f"promised, {len(of_policy) - len(missed)} of them covered by backups kept in {name}"
        )
        exceptions += [
            f"{name}: {c.tier} {c.label}: promised by keep_{c.tier}, no backup kept in {name}"
            for c in missed
        ]
    if not promised and not exceptions:
        return judged
    return _control("retention", evidence, exceptions)


def _retention_of_grid(facts: SourceFacts, cells: list[CoverageCell]) -> Control:
    if facts.policy is None:
        return _control("retention", [facts.policy_text], [], "not-applicable")
    if not any(facts.policy.tier_count(tier) for tier in TIERS):
        return _control(
            "retention",
            [f"the policy ({facts.policy_text}) keeps no daily, weekly, monthly or yearly tier"],
            [],
            "not-applicable",
        )
    promised = [c for c in cells if c.promised]
    if not promised:
        return _control(
            "retention",
            [f"policy: {facts.policy_text}", "no backup yet for the policy to keep"],
            [],
            "no-data",
        )
    evidence = [f"policy: {facts.policy_text}"]
    for tier in TIERS:
        of_tier = [c for c in cells if c.tier == tier]
        covered = [c for c in of_tier if c.covered]
        evidence.append(
            f"{tier}: {sum(c.promised for c in of_tier)} cells promised, "
            f"{sum(c.promised and c.covered for c in of_tier)} of them covered; "
            f"{len(covered)} of {len(of_tier)} cells covered, "
            f"{sum(c.held for c in covered)} by held backups"
        )
    exceptions = [
        f"{c.tier} {c.label}: promised by keep_{c.tier}, no kept backup"
        for c in promised
        if not c.covered
    ]
    return _control("retention", evidence, exceptions)


# --- drills ---------------------------------------------------------------------------------


def drill_text(row: DrillRow) -> str:
    figures = [
        f"RTO {_figure(row.rto_seconds, row.rto_objective_seconds)}",
        f"RPO {_figure(row.rpo_seconds, row.rpo_objective_seconds)}",
    ]
    return (
        f"drill {row.drill_id} at {when(row.started_at)} by {row.operator} of {row.kind} "
        f"backup {row.backup}: {'passed' if row.passed else 'failed'}, {', '.join(figures)}"
    )


def _figure(measured: float | None, objective: float | None) -> str:
    text = seconds_text(measured) if measured is not None else "not measured"
    return f"{text} (objective {seconds_text(objective)})" if objective is not None else text


def _drill_problem(facts: SourceFacts) -> Callable[[DrillRow], str | None]:
    """Why a drill record is no evidence: since the chain began, each drill has a `drill`
    event, and a record without one, or whose verdict, figures or operator differ from its
    event's, was written or changed by hand. None: it stands."""
    verdicts: dict[str, list[RepoEvent]] = {}
    for found in facts.events:
        if found.event.event == "drill":
            verdicts.setdefault(str(found.event.details.get("drill_id")), []).append(found)

    def why(row: DrillRow) -> str | None:
        said = "passed" if row.passed else "failed"
        events = verdicts.get(row.drill_id, [])
        if not events:
            if facts.chain_began is None or row.started_at < facts.chain_began:
                return None  # before the chain: the record is all there is
            return (
                f"drill {row.drill_id} at {when(row.started_at)}: its record says {said}, "
                "and the audit chain has no drill event of it: not counted"
            )
        for found in events:
            details = found.event.details
            differ = [
                name
                for name, recorded, evented in (
                    ("verdict", row.passed, details.get("verdict") == "pass"),
                    ("RTO", row.rto_seconds, details.get("rto_seconds")),
                    ("RPO", row.rpo_seconds, details.get("rpo_seconds")),
                    ("operator", row.operator, details.get("operator")),
                )
                if recorded != evented
            ]
            if differ:
                return (
                    f"drill {row.drill_id} at {when(row.started_at)}: its record says {said}, "
                    f"and its {', '.join(differ)} {'differs' if len(differ) == 1 else 'differ'} "
                    "from its drill event's "
                    f"({found.repository}, event {found.event.sequence}, "
                    f"{details.get('verdict')}): the record was changed; not counted"
                )
        return None

    return why


def drills(facts: SourceFacts) -> Control:
    """A quarter that ended before the first backup ever had nothing to drill."""
    first = facts.history_start
    due = [q for q in quarters(facts.start, facts.end) if first is not None and q[2] > first]
    if not due:
        evidence = ["no backup before the period's end: nothing to drill"]
        if facts.drills_error:
            evidence.append(f"drill records could not be read: {facts.drills_error}")
        return _control("drills", evidence, [], "no-data")
    evidence = []
    exceptions = []
    if facts.drills_error:
        evidence.append(
            f"drill records could not be read from every repository: {facts.drills_error}"
        )
    problem_of = _drill_problem(facts)
    for label, start, end in due:
        until = min(end, facts.now)
        of_quarter = []
        for drill in (d for d in facts.drills if start <= d.started_at < until):
            problem = problem_of(drill)
            if problem is None:
                of_quarter.append(drill)
            else:
                exceptions.append(problem)
        passed = [d for d in of_quarter if d.passed]
        if passed:
            evidence.append(f"{label}: {drill_text(passed[-1])}")
        elif end > facts.now:
            evidence.append(
                f"{label}: no passed drill yet ({len(of_quarter)} drills); "
                f"the quarter ends on {end:%Y-%m-%d}"
            )
        else:
            exceptions.append(
                f"{label}: no passed restore drill ({len(of_quarter)} drills, all failed)"
                if of_quarter
                else f"{label}: no restore drill"
            )
    return _control("drills", evidence, exceptions)


# --- verification ---------------------------------------------------------------------------


def verification(facts: SourceFacts) -> Control:
    rows = facts.period_backups
    if not rows and not facts.damaged:
        return _no_backups("verification")
    failed = [row for row in rows if row.verification == "failed"]
    ok = sum(row.verification == "ok" for row in rows)
    never = sum(row.verification is None for row in rows)
    evidence = [
        f"of {len(rows)} backups: {ok} verified ok, {len(failed)} failed, {never} never verified"
    ]
    exceptions = [f"backup {_backup(row)}: its newest verification failed" for row in failed]
    # a damaged manifest tells no date: named whatever the period, not to be lost silently
    exceptions += facts.damaged
    return _control("verification", evidence, exceptions)


# --- wal ------------------------------------------------------------------------------------


def wal(facts: SourceFacts) -> Control:
    if facts.source_type != "postgres":
        return _control(
            "wal",
            [
                f"a {facts.source_type} source archives no WAL: point-in-time recovery is "
                "PostgreSQL's, its backups restore the snapshot each one took"
            ],
            [],
            "not-applicable",
        )
    found = facts.wal
    if found is None:
        return _control(
            "wal",
            ["no physical backup is kept: there is no point-in-time recovery to check"],
            [],
            "not-applicable",
        )
    window = (
        f"the PITR window of {duration_text(found.window)}"
        if found.window
        else "no pitr_window configured: from the oldest kept physical backup"
    )
    evidence = [f"base backup {found.base} (started {when(found.base_started_at)}), {window}"]
    continuous = []
    for repository, problems in sorted(found.problems.items()):
        newest = found.newest.get(repository) or "none"
        if problems:
            evidence.append(f"{repository}: {'; '.join(problems)} (newest segment {newest})")
        else:
            continuous.append(repository)
            evidence.append(f"{repository}: WAL continuous up to the newest segment {newest}")
    exceptions = [] if continuous else [f"{r}: {'; '.join(p)}" for r, p in found.problems.items()]
    if not found.problems:
        exceptions = [f"no readable repository holds base backup {found.base}"]
    return _control("wal", evidence, exceptions)


# --- immutability ---------------------------------------------------------------------------


def immutability(facts: SourceFacts) -> Control:
    locked = {name: lock for name in facts.repositories if (lock := facts.immutable.get(name))}
    if not locked:
        return _control(
            "immutability",
            [
                "no repository of the source is configured with Object Lock "
                "(object_lock_days): its backups can be deleted by whoever holds its credentials"
            ],
            [],
            "not-applicable",
        )
    evidence = [f"{name}: {lock}" for name, lock in locked.items()]
    evidence += [f"{name}: no Object Lock" for name in facts.repositories if name not in locked]
    return _control("immutability", evidence, [])


# --- audit chain ----------------------------------------------------------------------------


def chain_lines(chain: ChainStatus) -> tuple[list[str], str | None]:
    """What a chain shows (its events and head, each anchor checked) and, when broken,
    `audit verify`'s words for its first bad event."""
    head = (
        f"head event {chain.head_sequence} sha256 {chain.head_hash}"
        if chain.head_sequence is not None
        else "no readable head"
    )
    lines = [
        f"{chain.repository}: {chain.events} events, {'whole' if chain.whole else 'BROKEN'}, {head}"
    ]
    if not chain.anchors:
        # the links alone cannot show a chain rewritten whole, nor its newest events removed
        lines.append(
            f"{chain.repository}: no anchor of this chain found: a rewrite of the whole chain, "
            "or of its newest events, would not show (`lifeboat audit anchor`)"
        )
    for anchor in chain.anchors:
        verdict = "matches" if anchor.ok else "does NOT match"
        lines.append(
            f"{chain.repository}: anchor kept in {anchor.kept_in} of event {anchor.sequence} "
            f"(sha256 {anchor.hash}) {verdict}"
        )
    broken = (
        None
        if chain.whole
        else f"{chain.repository}: broken at event {chain.first_bad}: {chain.problem}"
    )
    return lines, broken


def audit_chain(facts: SourceFacts) -> Control:
    evidence: list[str] = []
    exceptions = [
        f"repository {name} cannot be read: {why}" for name, why in facts.unreadable.items()
    ]
    exceptions += facts.anchors_unread + facts.odd
    finished = {row.id: row.finished_at for row in facts.backups}
    exceptions += [
        f"backup {backup} in {name} (finished {when(finished[backup])}): {why}"
        for backup, whys in sorted(facts.unvouched.items())
        if backup in finished
        for name, why in sorted(whys.items())
    ]
    for chain in facts.chains:
        if chain.events == 0:
            evidence.append(f"{chain.repository}: no audit events yet")
            continue
        lines, broken = chain_lines(chain)
        evidence += lines
        if broken is not None:
            exceptions.append(broken)
    if not exceptions and all(chain.events == 0 for chain in facts.chains):
        return _control("audit-chain", evidence or ["no repository read"], [], "no-data")
    return _control("audit-chain", evidence, exceptions)


CONTROLS: dict[str, Callable[[SourceFacts], Control]] = {
    "frequency": frequency,
    "encryption": encryption,
    "offsite": offsite,
    "drills": drills,
    "verification": verification,
    "wal": wal,
    "immutability": immutability,
    "audit-chain": audit_chain,
}


def judge(
    facts: SourceFacts,
    cells: list[CoverageCell],
    others: dict[str, list[CoverageCell]] | None = None,
) -> list[Control]:
    """Every control, in CONTROL_IDS order; others: the grids of the repositories pruned
    with their own policy (SourceFacts.other_policies)."""
    return [
        retention(facts, cells, others)
        if control_id == "retention"
        else CONTROLS[control_id](facts)
        for control_id in CONTROL_IDS
    ]
