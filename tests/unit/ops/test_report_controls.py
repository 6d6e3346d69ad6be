"""The compliance report's controls, each judged on facts built by hand: its pass, its fail
(with the exception naming what an auditor looks up), and no-data for an empty period."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from lifeboat.ops import report_controls as controls
from lifeboat.ops.report_facts import RepoEvent, RepositoryPolicy, SourceFacts, WalFacts
from lifeboat.ops.report_grid import coverage
from lifeboat.ops.report_model import (
    CONTROL_IDS,
    AnchorCheck,
    BackupRow,
    ChainStatus,
    DrillRow,
)
from lifeboat.policy.retention import Policy
from lifeboat.repo.audit import AuditEvent

pytestmark = pytest.mark.unit

DAY = timedelta(days=1)
START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2026, 4, 1, tzinfo=UTC)  # Q1 2026
NOW = datetime(2026, 4, 2, 9, 0, tzinfo=UTC)
AGE = "age:age1qyqszqgpqyqszqgpqyqszqgpqyqszqgp"


def row(
    finished: datetime,
    *,
    repositories: tuple[str, ...] = ("main", "offsite"),
    verification: str | None = "ok",
    recipients: tuple[str, ...] = (AGE,),
    held: bool = False,
) -> BackupRow:
    return BackupRow(
        id=f"{finished:%Y%m%dT%H%M%S}.000000Z-ab12",
        kind="logical",
        started_at=finished - timedelta(minutes=5),
        finished_at=finished,
        stored_bytes=1000,
        plain_bytes=5000,
        encryption="age",
        recipients=list(recipients),
        repositories=list(repositories),
        verification=verification,  # type: ignore[arg-type]
        held=held,
    )


def daily(first: datetime, last: datetime, **changes: object) -> list[BackupRow]:
    """A backup at 02:00 each day from first to last."""
    rows = []
    day = first.replace(hour=2)
    while day <= last:
        rows.append(row(day, **changes))  # type: ignore[arg-type]
        day += DAY
    return rows


def facts(backups: list[BackupRow] | None = None, **changes: object) -> SourceFacts:
    backups = daily(START - 10 * DAY, NOW - DAY) if backups is None else backups
    made = SourceFacts(
        source="wms",
        start=START,
        end=END,
        now=NOW,
        repositories=["main", "offsite"],
        configured=["main", "offsite"],
        backups=backups,
        reached={r.id: set(r.repositories) for r in backups},
        policy=Policy(keep_daily=7, keep_weekly=4),
        policy_text="keep_daily = 7, keep_weekly = 4",
        history_start=min((r.started_at for r in backups), default=None),
    )
    for name, value in changes.items():
        setattr(made, name, value)
    return made


def event(kind: str, at: datetime, backup: str | None = None, **details: object) -> AuditEvent:
    return AuditEvent(
        sequence=7,
        at=at,
        user="backup",
        host="db1",
        event=kind,
        source="wms",
        backup=backup,
        details=dict(details),
        record=None,
        prev="0" * 64,
    )


# --- frequency ------------------------------------------------------------------------------


def test_daily_backups_every_day_pass_the_frequency_control() -> None:
    control = controls.frequency(facts())
    assert control.status == "pass", control.exceptions
    assert any("expected interval: daily" in line for line in control.evidence)


def test_a_gap_of_three_days_is_an_exception_naming_its_dates() -> None:
    backups = [
        r
        for r in daily(START - 10 * DAY, NOW - DAY)
        if not datetime(2026, 2, 10, tzinfo=UTC)
        <= r.finished_at
        < datetime(2026, 2, 13, tzinfo=UTC)
    ]
    control = controls.frequency(facts(backups))
    assert control.status == "fail"
    assert control.exceptions == [
        "no backup from 2026-02-09 02:00 UTC to 2026-02-13 02:00 UTC (4 d, expected daily)"
    ]


def test_a_late_run_within_the_slack_is_no_exception() -> None:
    backups = daily(START - 10 * DAY, NOW - DAY)
    late = [
        replace(r, finished_at=r.finished_at + timedelta(hours=11))
        if r.finished_at.date() == datetime(2026, 2, 10).date()
        else r
        for r in backups
    ]
    assert controls.frequency(facts(late)).status == "pass"


def test_the_weeks_before_the_first_backup_ever_are_no_gap() -> None:
    backups = daily(datetime(2026, 3, 1, tzinfo=UTC), NOW - DAY)
    assert controls.frequency(facts(backups)).status == "pass"


def test_a_policy_without_tiers_asks_for_no_frequency() -> None:
    control = controls.frequency(facts(policy=Policy(keep_last=3)))
    assert control.status == "not-applicable"


def test_no_backup_ever_is_no_data_for_every_backup_control() -> None:
    empty = facts([])
    for judge in (
        controls.frequency,
        controls.encryption,
        controls.offsite,
        controls.verification,
        controls.drills,
    ):
        assert judge(empty).status == "no-data", judge


def test_a_period_without_backups_after_earlier_ones_fails_frequency() -> None:
    control = controls.frequency(facts(daily(START - 30 * DAY, START - 5 * DAY)))
    assert control.status == "fail"
    assert control.exceptions[0].startswith("no backup from 2026-01-01 00:00 UTC to 2026-04-01")


# --- encryption -----------------------------------------------------------------------------


def test_every_backup_encrypted_names_its_recipients_and_the_key_changes() -> None:
    key_change = event(
        "key",
        datetime(2026, 2, 1, 2, 10, tzinfo=UTC),
        "20260201T020000.000000Z-ab12",
        recipients=[{"type": "age", "id": "age1new"}],
        previous_recipients=[{"type": "age", "id": "age1old"}],
    )
    control = controls.encryption(facts(events=[RepoEvent("main", key_change)]))
    assert control.status == "pass"
    assert f"recipients: {AGE}" in control.evidence
    assert any("age:age1old -> age:age1new" in line for line in control.evidence)


def test_a_backup_without_recipients_fails_encryption() -> None:
    backups = daily(START, NOW - DAY)
    backups[3] = replace(backups[3], recipients=[])
    control = controls.encryption(facts(backups))
    assert control.status == "fail"
    assert control.exceptions == [
        f"backup {backups[3].id} (2026-01-04 02:00 UTC) is not encrypted to any recipient"
    ]


# --- offsite --------------------------------------------------------------------------------


def test_one_configured_repository_fails_offsite() -> None:
    control = controls.offsite(facts(configured=["main"]))
    assert control.status == "fail"
    assert control.evidence == ["one repository is configured (main)"]


def test_a_backup_in_one_repository_only_is_an_offsite_exception() -> None:
    backups = daily(START, NOW - DAY)
    backups[5] = replace(backups[5], repositories=["main"])
    made = facts(backups)
    control = controls.offsite(made)
    assert control.status == "fail"
    assert control.exceptions == [f"backup {backups[5].id} (2026-01-06 02:00 UTC) is only in main"]


def test_copies_are_the_offsite_evidence() -> None:
    copied = event("copy", datetime(2026, 1, 2, 3, 0, tzinfo=UTC), "b1", **{"from": "main"})
    control = controls.offsite(facts(events=[RepoEvent("offsite", copied)]))
    assert control.status == "pass"
    assert "1 copies recorded in the period (copy events)" in control.evidence


# --- retention ------------------------------------------------------------------------------


def test_retention_passes_when_every_promised_cell_is_kept_and_fails_naming_the_one_lost() -> None:
    backups = daily(START - 60 * DAY, END - DAY)
    made = facts(backups, now=END)
    kept = backups[-7:] + [b for b in backups if b.finished_at.weekday() == 6]
    cells = coverage(END, END, kept, [b.started_at for b in backups], made.policy, UTC)
    assert controls.retention(made, cells).status == "pass"

    lost = [b for b in kept if b.finished_at.date() != datetime(2026, 3, 29).date()]
    cells = coverage(END, END, lost, [b.started_at for b in backups], made.policy, UTC)
    control = controls.retention(made, cells)
    assert control.status == "fail"
    # the week of 29 March still has the 28th's backup
    assert control.exceptions == ["daily 2026-03-29: promised by keep_daily, no kept backup"]


def test_without_a_policy_retention_does_not_apply() -> None:
    control = controls.retention(facts(policy=None, policy_text="no retention policy"), [])
    assert control.status == "not-applicable"


# --- drills ---------------------------------------------------------------------------------


def drill(started: datetime, passed: bool = True) -> DrillRow:
    return DrillRow(
        drill_id=f"drill-{started:%Y%m%d%H%M%S}",
        kind="logical",
        backup="20260101T020000.000000Z-ab12",
        started_at=started,
        operator="auditor@drills",
        passed=passed,
        rto_seconds=90.0,
        rpo_seconds=3600.0,
        rto_objective_seconds=14400.0,
        rpo_objective_seconds=None,
        reasons=[] if passed else ["a check failed"],
    )


def test_a_passed_drill_each_quarter_passes_with_its_id_rto_and_objective() -> None:
    made = facts(drills=[drill(datetime(2026, 2, 3, 10, tzinfo=UTC))])
    control = controls.drills(made)
    assert control.status == "pass", control.exceptions
    assert control.evidence == [
        "2026-Q1: drill drill-20260203100000 at 2026-02-03 10:00 UTC by auditor@drills of "
        "logical backup 20260101T020000.000000Z-ab12: passed, RTO 1 min 30 s "
        "(objective 4 h), RPO 1 h"
    ]


def test_quarter_boundaries_a_drill_at_midnight_of_april_first_is_the_second_quarters() -> None:
    made = facts(
        drills=[drill(datetime(2026, 4, 1, tzinfo=UTC))],
        end=datetime(2026, 7, 1, tzinfo=UTC),
        now=datetime(2026, 7, 2, tzinfo=UTC),
    )
    control = controls.drills(made)
    assert control.status == "fail"
    assert control.exceptions == ["2026-Q1: no restore drill"]
    assert control.evidence[0].startswith("2026-Q2: drill drill-20260401000000")

    last_moment = datetime(2026, 3, 31, 23, 59, 59, tzinfo=UTC)
    made.drills = [drill(last_moment), drill(datetime(2026, 4, 1, tzinfo=UTC))]
    assert controls.drills(made).status == "pass"


def test_a_quarter_with_failed_drills_only_is_an_exception() -> None:
    control = controls.drills(facts(drills=[drill(datetime(2026, 2, 3, tzinfo=UTC), False)]))
    assert control.exceptions == ["2026-Q1: no passed restore drill (1 drills, all failed)"]


def test_the_current_quarter_without_a_drill_yet_is_pending_not_failed() -> None:
    made = facts(now=datetime(2026, 3, 15, tzinfo=UTC))
    control = controls.drills(made)
    assert control.status == "pass"
    assert control.evidence == [
        "2026-Q1: no passed drill yet (0 drills); the quarter ends on 2026-04-01"
    ]


# --- verification ---------------------------------------------------------------------------


def test_a_failed_verification_is_an_exception_and_never_verified_are_counted() -> None:
    backups = daily(START, NOW - DAY)
    backups[0] = replace(backups[0], verification="failed")
    backups[1] = replace(backups[1], verification=None)
    control = controls.verification(facts(backups))
    assert control.status == "fail"
    assert control.exceptions == [
        f"backup {backups[0].id} (2026-01-01 02:00 UTC): its newest verification failed"
    ]
    assert control.evidence == ["of 90 backups: 88 verified ok, 1 failed, 1 never verified"]


def test_only_successful_verifications_pass() -> None:
    assert controls.verification(facts()).status == "pass"


# --- wal ------------------------------------------------------------------------------------


def wal_facts(problems: dict[str, list[str]]) -> WalFacts:
    return WalFacts(
        base="20260325T020000.000000Z-cd34",
        base_started_at=datetime(2026, 3, 25, 2, tzinfo=UTC),
        window=7 * DAY,
        problems=problems,
        newest={name: "000000010000000000000042" for name in problems},
    )


def test_wal_does_not_apply_without_physical_backups() -> None:
    assert controls.wal(facts()).status == "not-applicable"


def test_continuous_wal_in_one_repository_passes_and_a_gap_everywhere_fails() -> None:
    gap = ["WAL gap: segment 000000010000000000000010 is missing"]
    passed = controls.wal(facts(wal=wal_facts({"main": gap, "offsite": []})))
    assert passed.status == "pass"
    assert "offsite: WAL continuous up to the newest segment 000000010000000000000042" in (
        passed.evidence
    )
    failed = controls.wal(facts(wal=wal_facts({"main": gap})))
    assert failed.status == "fail"
    assert failed.exceptions == [f"main: {gap[0]}"]


# --- immutability ---------------------------------------------------------------------------


def test_immutability_is_evidenced_by_the_locked_repositories_or_does_not_apply() -> None:
    assert controls.immutability(facts()).status == "not-applicable"
    control = controls.immutability(
        facts(immutable={"main": None, "offsite": "S3 Object Lock, COMPLIANCE, 30 days"})
    )
    assert control.status == "pass"
    assert control.evidence == [
        "offsite: S3 Object Lock, COMPLIANCE, 30 days",
        "main: no Object Lock",
    ]


# --- audit chain ----------------------------------------------------------------------------


def chain(whole: bool = True, events: int = 12) -> ChainStatus:
    return ChainStatus(
        repository="main",
        whole=whole,
        events=events,
        head_sequence=events - 1 if events else None,
        head_hash="ab" * 32 if events else None,
        first_bad=None if whole else 4,
        problem=None if whole else "event 4 is not the one event 5 links to: altered",
        anchors=[AnchorCheck("offsite", 9, "cd" * 32, whole)] if events else [],
    )


def test_a_whole_chain_passes_with_its_head_and_anchors() -> None:
    control = controls.audit_chain(facts(chains=[chain()]))
    assert control.status == "pass"
    assert control.evidence[0] == f"main: 12 events, whole, head event 11 sha256 {'ab' * 32}"
    assert "matches" in control.evidence[1]


def test_a_broken_chain_fails_with_the_words_of_audit_verify() -> None:
    control = controls.audit_chain(facts(chains=[chain(whole=False)]))
    assert control.status == "fail"
    assert control.exceptions == [
        "main: broken at event 4: event 4 is not the one event 5 links to: altered"
    ]


def test_an_unreadable_repository_fails_the_audit_chain_and_empty_chains_are_no_data() -> None:
    assert controls.audit_chain(facts(chains=[chain(events=0)])).status == "no-data"
    control = controls.audit_chain(facts(chains=[chain()], unreadable={"offsite": "gone"}))
    assert control.exceptions == ["repository offsite cannot be read: gone"]


def test_judge_gives_every_control_in_order() -> None:
    made = facts()
    assert [c.id for c in controls.judge(made, [])] == list(CONTROL_IDS)


def test_quarters_before_the_first_backup_need_no_drill() -> None:
    made = facts(
        daily(datetime(2026, 4, 10, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)),
        end=datetime(2026, 7, 1, tzinfo=UTC),
        now=datetime(2026, 7, 2, tzinfo=UTC),
        drills=[drill(datetime(2026, 5, 3, tzinfo=UTC))],
    )
    control = controls.drills(made)
    assert control.status == "pass", control.exceptions
    assert [line[:8] for line in control.evidence] == ["2026-Q2:"]
    earlier = facts(made.backups, drills=made.drills)  # Q1 2026: before the first backup
    assert controls.drills(earlier).status == "no-data"


def test_a_policy_keeping_no_tier_asks_for_no_coverage() -> None:
    control = controls.retention(facts(policy=Policy(keep_last=5)), [])
    assert control.status == "not-applicable"


def test_a_copy_pruned_by_its_rules_counts_off_site_and_one_gone_otherwise_does_not() -> None:
    backups = daily(START, NOW - DAY)
    backups[5] = replace(backups[5], repositories=["main"])  # its offsite copy is gone
    made = facts(backups)
    made.reached[backups[5].id] = {"main", "offsite"}  # offsite's chain recorded the copy
    assert controls.offsite(made).exceptions == [
        f"backup {backups[5].id} (2026-01-06 02:00 UTC) is only in main "
        "(gone from offsite without a prune deletion)"
    ]
    made.pruned_from[backups[5].id] = {"offsite"}
    assert controls.offsite(made).status == "pass"


def test_a_backup_put_in_place_by_hand_fills_no_frequency_gap() -> None:
    """The backup of 10 February, noon, is in main without a backup event (its files
    written by hand): it does not close the gap the two missing days leave."""
    backups = [
        r
        for r in daily(START - 10 * DAY, NOW - DAY)
        if not datetime(2026, 2, 10, tzinfo=UTC)
        <= r.finished_at
        < datetime(2026, 2, 12, tzinfo=UTC)
    ]
    forged = row(datetime(2026, 2, 10, 14, 0, tzinfo=UTC), repositories=("main",))
    made = facts(sorted([*backups, forged], key=lambda r: r.finished_at))
    assert controls.frequency(made).status == "pass"  # as if it were a backup
    made.unvouched[forged.id] = {"main": "no backup or copy event in its chain"}
    control = controls.frequency(made)
    assert control.status == "fail"
    assert control.exceptions == [
        "no backup from 2026-02-09 02:00 UTC to 2026-02-12 02:00 UTC (3 d, expected daily)"
    ]


def test_the_shortest_interval_of_any_repositorys_policy_is_expected() -> None:
    """main keeps weeks only, dr (pruned with its own policy) keeps days: a backup goes to
    both at once, so weekly backups leave dr's daily promise unkept."""
    weekly = [r for r in daily(START - 10 * DAY, NOW - DAY) if r.finished_at.weekday() == 0]
    made = facts(weekly, policy=Policy(keep_weekly=4), policy_text="keep_weekly = 4")
    assert controls.frequency(made).status == "pass"
    made.other_policies["dr"] = RepositoryPolicy(Policy(keep_daily=7), "UTC", "keep_daily = 7")
    control = controls.frequency(made)
    assert control.status == "fail"
    assert control.evidence[0].startswith(
        "expected interval: daily (from the retention policy: dr: keep_daily = 7)"
    )


def test_a_chain_without_an_anchor_says_what_its_links_cannot_show() -> None:
    chain = ChainStatus("main", True, 12, 11, "f" * 64, None, None, [])
    lines, broken = controls.chain_lines(chain)
    assert broken is None
    assert lines[1].startswith("main: no anchor of this chain found: a rewrite of the whole")
    anchored = replace(chain, anchors=[AnchorCheck("worm", 11, "f" * 64, True)])
    assert not any("no anchor" in line for line in controls.chain_lines(anchored)[0])
