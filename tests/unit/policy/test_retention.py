"""Retention as a pure function: properties over random histories (hypothesis), and fixed
histories for each tier across DST changes and year ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lifeboat.policy.retention import (
    PERIOD_OF,
    TIERS,
    Backup,
    Decision,
    Policy,
    decide,
    merged_policy,
    parse_duration,
)

pytestmark = pytest.mark.unit

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
ZONES = [UTC, BERLIN, ZoneInfo("America/New_York"), ZoneInfo("Australia/Lord_Howe")]
KINDS: tuple[str, ...] = ("logical", "physical")


def backup_id(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


@st.composite
def histories(draw: st.DrawFn) -> list[Backup]:
    """Up to 60 backups in the 3 years before NOW, logical and physical, some failed
    verification, some held, physical ones sometimes incremental on an earlier one, some
    logical ones a restore's safety backup (more of them in the last weeks, where they
    have not expired yet)."""
    offsets = draw(
        st.lists(
            st.integers(min_value=0, max_value=3 * 365 * 24 * 60),
            min_size=0,
            max_size=60,
            unique=True,
        )
    )
    backups: list[Backup] = []
    for minutes in sorted(offsets, reverse=True):
        started = NOW - timedelta(minutes=minutes)
        kind = draw(st.sampled_from(KINDS))
        earlier = [b.id for b in backups if b.kind == "physical"]
        parent = (
            draw(st.sampled_from(earlier))
            if kind == "physical" and earlier and draw(st.booleans())
            else None
        )
        recent = minutes < 30 * 24 * 60
        safety = kind == "logical" and draw(st.integers(0, 3 if recent else 9)) == 0
        backups.append(
            Backup(
                id=backup_id(started),
                kind=kind,
                started_at=started,
                parent=parent,
                verification_failed=draw(st.integers(0, 9)) == 0,
                drill_failed=draw(st.integers(0, 9)) == 0,
                held=draw(st.integers(0, 19)) == 0,
                safety_before=f"restore of {backups[-1].id} into wms"
                if safety and backups
                else None,
                wal_base=kind == "physical",
            )
        )
    return backups


policies = st.builds(
    Policy,
    keep_last=st.integers(1, 5),
    keep_hourly=st.integers(0, 30),
    keep_daily=st.integers(0, 30),
    keep_weekly=st.integers(0, 12),
    keep_monthly=st.integers(0, 12),
    keep_yearly=st.integers(0, 7),
    keep_within=st.one_of(st.none(), st.integers(1, 24 * 30).map(lambda h: timedelta(hours=h))),
    pitr_window=st.one_of(st.none(), st.integers(1, 24 * 60).map(lambda h: timedelta(hours=h))),
    safety_backups_expire_after=st.integers(0, 24 * 30).map(lambda h: timedelta(hours=h)),
)


def kept_ids(decisions: list[Decision]) -> set[str]:
    return {d.backup.id for d in decisions if d.keep}


def good_newest_first(backups: list[Backup], kind: str) -> list[Backup]:
    """The backups the rules count: good ones of the kind that are no safety backups."""
    return sorted(
        (b for b in backups if b.kind == kind and not b.failed_proof and b.safety_before is None),
        key=lambda b: b.started_at,
        reverse=True,
    )


@settings(max_examples=300, deadline=None)
@given(histories(), policies, st.sampled_from(ZONES))
def test_every_rule_keeps_the_newest_backup_of_each_of_its_last_periods(
    backups: list[Backup], policy: Policy, zone: ZoneInfo
) -> None:
    """An oracle written differently from the implementation: group the good backups of
    each kind by period, take the N newest periods, and the newest backup of each."""
    decisions = decide(backups, policy, NOW, zone)
    by_id = {d.backup.id: d for d in decisions}
    for kind in ("logical", "physical"):
        good = good_newest_first(backups, kind)
        for tier in TIERS:
            periods: dict[tuple[object, ...], Backup] = {}
            for backup in good:
                periods.setdefault(PERIOD_OF[tier](backup.started_at.astimezone(zone)), backup)
            newest_periods = sorted(periods.values(), key=lambda b: b.started_at, reverse=True)[
                : policy.tier_count(tier)
            ]
            expected = {b.id for b in newest_periods}
            actual = {d.backup.id for d in decisions if tier in d.rules and d.backup.kind == kind}
            assert actual == expected, tier
        for backup in good[: policy.keep_last]:
            assert "last" in by_id[backup.id].rules
        if policy.keep_within is not None:
            for backup in good:
                young = backup.started_at >= NOW - policy.keep_within
                assert ("within" in by_id[backup.id].rules) == young


@settings(max_examples=300, deadline=None)
@given(histories(), policies, st.sampled_from(ZONES))
def test_safety_never_empties_and_keeps_holds_and_chains(
    backups: list[Backup], policy: Policy, zone: ZoneInfo
) -> None:
    decisions = decide(backups, policy, NOW, zone)
    kept = kept_ids(decisions)
    by_id = {b.id: b for b in backups}
    for kind in ("logical", "physical"):
        good = good_newest_first(backups, kind)
        if good:
            assert good[0].id in kept, "the newest good backup is always kept"
            assert len(kept & {b.id for b in good}) >= min(policy.keep_last, len(good))
    for backup in backups:
        if backup.held:
            assert backup.id in kept
    for backup_id_ in kept:
        parent = by_id[backup_id_].parent
        if parent is not None:
            assert parent in kept, "a kept incremental keeps what it builds on"
    for decision in decisions:
        assert decision.keep == bool(decision.reasons)
        assert len(decision.rules) == len(decision.reasons)


@settings(max_examples=300, deadline=None)
@given(histories(), policies, st.sampled_from(ZONES))
def test_safety_backups_count_for_no_rule_and_expire_unless_held(
    backups: list[Backup], policy: Policy, zone: ZoneInfo
) -> None:
    decisions = decide(backups, policy, NOW, zone)
    for decision in decisions:
        backup = decision.backup
        if backup.safety_before is None:
            assert "safety" not in decision.rules
            continue
        assert set(decision.rules) <= {"safety", "hold"}, "no other rule counts it"
        young = backup.started_at + policy.safety_backups_expire_after > NOW
        assert ("safety" in decision.rules) == (young and not backup.failed_proof)
        assert decision.keep == (backup.held or "safety" in decision.rules)
        if decision.keep:
            assert "hold" in decision.rules or decision.reasons[0].startswith(
                f"safety backup taken before {backup.safety_before}: expires "
            )
        elif not backup.failed_proof:
            assert decision.explanation[0].startswith(
                f"safety backup taken before {backup.safety_before}: expired "
            )


@settings(max_examples=300, deadline=None)
@given(histories(), policies, st.sampled_from(ZONES))
def test_pruning_twice_deletes_nothing_more(
    backups: list[Backup], policy: Policy, zone: ZoneInfo
) -> None:
    first = kept_ids(decide(backups, policy, NOW, zone))
    survivors = [b for b in backups if b.id in first]
    assert kept_ids(decide(survivors, policy, NOW, zone)) == first


@settings(max_examples=200, deadline=None)
@given(histories(), policies)
def test_pitr_window_keeps_a_base_for_its_oldest_moment(
    backups: list[Backup], policy: Policy
) -> None:
    if policy.pitr_window is None:
        return
    kept = kept_ids(decide(backups, policy, NOW, UTC))
    horizon = NOW - policy.pitr_window
    bases = [b for b in good_newest_first(backups, "physical") if b.started_at <= horizon]
    if bases:
        assert bases[0].id in kept


def test_locked_backups_are_kept_until_their_lock_ends() -> None:
    old = Backup(
        "20200101T000000Z",
        "logical",
        datetime(2020, 1, 1, tzinfo=UTC),
        locked_until=NOW + timedelta(days=1),
    )
    expired = Backup(
        "20200102T000000Z",
        "logical",
        datetime(2020, 1, 2, tzinfo=UTC),
        locked_until=NOW - timedelta(days=1),
    )
    newest = Backup("20270101T000000Z", "logical", datetime(2027, 1, 1, tzinfo=UTC))
    decisions = {d.backup.id: d for d in decide([old, expired, newest], Policy(), NOW, UTC)}
    assert decisions[old.id].rules == ["object-lock"]
    assert not decisions[expired.id].keep
    assert decisions[newest.id].rules == ["newest", "last"]


# --- fixed histories -----------------------------------------------------------------------


def local(zone: ZoneInfo, year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=zone)


def history(moments: list[datetime], kind: str = "logical") -> list[Backup]:
    return [Backup(backup_id(m), kind, m.astimezone(UTC)) for m in moments]


def rules_by_local_time(
    backups: list[Backup], policy: Policy, zone: tzinfo, now: datetime = NOW
) -> dict[str, list[str]]:
    return {
        d.backup.started_at.astimezone(zone).strftime("%Y-%m-%d %H:%M%z"): d.rules
        for d in decide(backups, policy, now, zone)
    }


def test_hourly_counts_both_hours_of_the_night_dst_ends() -> None:
    """Berlin, 2026-10-25: 02:00-03:00 happens twice (CEST, then CET). Backups every 30
    minutes from 01:00: the two 02:xx hours are two hours."""
    start = local(BERLIN, 2026, 10, 25, 1, 0).astimezone(UTC)
    moments = [start + timedelta(minutes=30 * i) for i in range(8)]  # 01:00 .. 04:30 UTC+1
    kept = rules_by_local_time(history(moments), Policy(keep_last=1, keep_hourly=3), BERLIN)
    hourly = [time for time, rules in kept.items() if "hourly" in rules]
    # newest first: 03:30 CET, 02:30 CET, 02:30 CEST
    assert hourly == ["2026-10-25 03:30+0100", "2026-10-25 02:30+0100", "2026-10-25 02:30+0200"]


def test_daily_across_the_night_dst_begins() -> None:
    """Berlin, 2026-03-29 loses 02:00-03:00: backups at 00:30 and 23:30 local each day are
    counted by local day, and the short day is one day."""
    moments = []
    for day in (27, 28, 29, 30):
        moments += [local(BERLIN, 2026, 3, day, 0, 30), local(BERLIN, 2026, 3, day, 23, 30)]
    kept = rules_by_local_time(
        history(moments),
        Policy(keep_last=1, keep_daily=3),
        BERLIN,
        now=datetime(2026, 4, 1, tzinfo=UTC),
    )
    daily = [time for time, rules in kept.items() if "daily" in rules]
    assert daily == ["2026-03-30 23:30+0200", "2026-03-29 23:30+0200", "2026-03-28 23:30+0100"]


def test_daily_is_counted_in_the_policy_time_zone() -> None:
    """21:30 and 22:30 UTC are one day in UTC, and 23:30 and 00:30 (the next day) in
    Berlin's summer time."""
    moments = [datetime(2026, 6, 1, 21, 30, tzinfo=UTC), datetime(2026, 6, 1, 22, 30, tzinfo=UTC)]
    policy = Policy(keep_last=1, keep_daily=5)
    in_utc = decide(history(moments), policy, NOW, UTC)
    in_berlin = decide(history(moments), policy, NOW, BERLIN)
    assert sum("daily" in d.rules for d in in_utc) == 1
    assert sum("daily" in d.rules for d in in_berlin) == 2


def test_weekly_uses_iso_weeks_across_the_year_end() -> None:
    """2026-12-28 to 2027-01-03 is ISO week 2026-W53: a backup on New Year's Eve and one on
    2 January are one week, but two years."""
    moments = [
        datetime(2026, 12, 27, 12, tzinfo=UTC),  # Sunday of 2026-W52
        datetime(2026, 12, 31, 12, tzinfo=UTC),  # 2026-W53
        datetime(2027, 1, 2, 12, tzinfo=UTC),  # 2026-W53
        datetime(2027, 1, 4, 12, tzinfo=UTC),  # Monday of 2027-W01
    ]
    policy = Policy(keep_last=1, keep_weekly=3, keep_yearly=3)
    kept = rules_by_local_time(history(moments), policy, UTC)
    assert kept == {
        "2027-01-04 12:00+0000": ["newest", "last", "weekly", "yearly"],
        "2027-01-02 12:00+0000": ["weekly"],  # the newest of 2026-W53
        "2026-12-31 12:00+0000": ["yearly"],  # the newest of 2026, not of its week
        "2026-12-27 12:00+0000": ["weekly"],  # the newest of 2026-W52
    }


def test_yearly_and_monthly_in_the_policy_time_zone_at_new_year() -> None:
    """23:30 UTC on 31 December is already the new year in Berlin."""
    moments = [
        datetime(2026, 12, 31, 20, 0, tzinfo=UTC),
        datetime(2026, 12, 31, 23, 30, tzinfo=UTC),
    ]
    policy = Policy(keep_last=1, keep_monthly=2, keep_yearly=2)
    assert rules_by_local_time(history(moments), policy, UTC) == {
        "2026-12-31 23:30+0000": ["newest", "last", "monthly", "yearly"],
        "2026-12-31 20:00+0000": [],
    }
    assert rules_by_local_time(history(moments), policy, BERLIN) == {
        "2027-01-01 00:30+0100": ["newest", "last", "monthly", "yearly"],
        "2026-12-31 21:00+0100": ["monthly", "yearly"],
    }


def test_gfs_seed_policy_over_a_year_of_hourly_backups() -> None:
    """The seeds' policy over a year of hourly backups: 48 hourly, 30 daily, 12 weekly,
    12 monthly and the yearly overlap; the counts are what an operator expects."""
    moments = [NOW - timedelta(hours=h) for h in range(0, 366 * 24)]
    policy = Policy(
        keep_last=3, keep_hourly=48, keep_daily=30, keep_weekly=12, keep_monthly=12, keep_yearly=7
    )
    decisions = decide(history(moments), policy, NOW, UTC)
    count = {
        rule: sum(rule in d.rules for d in decisions)
        for rule in ("hourly", "daily", "weekly", "monthly", "yearly")
    }
    assert count == {"hourly": 48, "daily": 30, "weekly": 12, "monthly": 12, "yearly": 2}
    kept = [d for d in decisions if d.keep]
    # 48 hours overlap the last 2-3 days, 30 days overlap about 4 weeks...
    assert len(kept) < 48 + 30 + 12 + 12 + 2
    assert len(kept) == len({d.backup.id for d in kept})


def test_incremental_chain_of_a_kept_backup_is_kept() -> None:
    full = Backup("20270101T000000Z", "physical", datetime(2027, 1, 1, tzinfo=UTC))
    incr1 = Backup("20270102T000000Z", "physical", datetime(2027, 1, 2, tzinfo=UTC), parent=full.id)
    incr2 = Backup(
        "20270103T000000Z", "physical", datetime(2027, 1, 3, tzinfo=UTC), parent=incr1.id
    )
    decisions = {d.backup.id: d for d in decide([full, incr1, incr2], Policy(), NOW, UTC)}
    assert decisions[incr2.id].rules == ["newest", "last"]
    assert decisions[incr1.id].rules == ["chain"]
    assert decisions[full.id].rules == ["chain"]
    assert decisions[full.id].reasons == [f"incremental {incr1.id} builds on it"]


def test_failed_verification_counts_for_no_rule() -> None:
    good = Backup("20270101T000000Z", "logical", datetime(2027, 1, 1, tzinfo=UTC))
    bad = Backup(
        "20270102T000000Z", "logical", datetime(2027, 1, 2, tzinfo=UTC), verification_failed=True
    )
    decisions = {d.backup.id: d for d in decide([good, bad], Policy(keep_daily=7), NOW, UTC)}
    assert not decisions[bad.id].keep
    assert decisions[good.id].rules == ["newest", "last", "daily"]


def test_physical_and_logical_are_counted_separately() -> None:
    moments = [NOW - timedelta(days=d) for d in range(4)]
    backups = history(moments, "logical") + history(
        [m + timedelta(minutes=1) for m in moments], "physical"
    )
    decisions = decide(backups, Policy(keep_last=2), NOW, UTC)
    kept = [(d.backup.kind, d.backup.started_at) for d in decisions if d.keep]
    assert len(kept) == 4
    assert {kind for kind, _ in kept} == {"logical", "physical"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2d", timedelta(days=2)),
        ("36h", timedelta(hours=36)),
        ("1w2d", timedelta(days=9)),
        ("90m", timedelta(minutes=90)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "2", "d", "2 days", "-1d", "2x"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_policies_merge_key_by_key() -> None:
    from lifeboat.config.model import RetentionConfig

    merged = merged_policy(
        [
            RetentionConfig(keep_daily=30, keep_last=3, timezone="Europe/Berlin"),
            None,
            RetentionConfig(keep_daily=90, pitr_window="7d"),
        ]
    )
    assert merged is not None
    policy, zone = merged
    assert (policy.keep_daily, policy.keep_last, policy.pitr_window) == (90, 3, timedelta(days=7))
    assert zone == "Europe/Berlin"
    assert merged_policy([None, RetentionConfig()]) is None


def test_the_tier_of_a_backup_is_its_longest_tier_rule() -> None:
    backup = Backup("20270101T000000Z", "logical", datetime(2027, 1, 1, tzinfo=UTC))
    assert Decision(backup, ["newest", "last", "daily", "weekly"]).tier == "weekly"
    assert Decision(backup, ["monthly", "yearly", "weekly"]).tier == "yearly"
    assert Decision(backup, ["hold"]).tier == "daily"


def test_a_safety_backup_is_not_the_newest_backup_and_expires() -> None:
    """A restore took safety backups after the newest real backup: keep_last = 1 still
    keeps the real one, and each safety backup lives for its own time."""
    real = Backup("20270228T020000Z", "logical", NOW - timedelta(days=1, hours=10))
    older = Backup("20270227T020000Z", "logical", NOW - timedelta(days=2, hours=10))
    fresh = Backup(
        "20270301T100000.000000Z-0001",
        "logical",
        NOW - timedelta(hours=2),
        safety_before=f"restore of {real.id} into wms",
    )
    stale = Backup(
        "20270220T100000.000000Z-0002",
        "logical",
        NOW - timedelta(days=9, hours=2),
        safety_before=f"restore of {older.id} into wms",
    )
    held = Backup(
        "20270210T100000.000000Z-0003",
        "logical",
        NOW - timedelta(days=19, hours=2),
        safety_before=f"restore of {older.id} into wms",
        held=True,
    )
    decisions = {
        d.backup.id: d for d in decide([older, real, fresh, stale, held], Policy(), NOW, UTC)
    }
    assert decisions[real.id].rules == ["newest", "last"]
    assert not decisions[older.id].keep
    assert decisions[fresh.id].rules == ["safety"]
    assert decisions[fresh.id].explanation == [
        f"safety backup taken before restore of {real.id} into wms: expires 2027-03-08 10:00 UTC"
    ]
    assert not decisions[stale.id].keep
    assert decisions[stale.id].explanation == [
        f"safety backup taken before restore of {older.id} into wms: expired 2027-02-27 10:00 UTC"
    ]
    assert decisions[held.id].rules == ["hold"]
    short = Policy(safety_backups_expire_after=timedelta(hours=1))
    assert not {d.backup.id: d for d in decide([real, fresh], short, NOW, UTC)}[fresh.id].keep


def test_safety_backups_expire_after_merges_and_is_summarised() -> None:
    from lifeboat.config.model import RetentionConfig
    from lifeboat.policy.retention import policy_summary

    merged = merged_policy([RetentionConfig(safety_backups_expire_after="36h")])
    assert merged is not None
    assert merged[0].safety_backups_expire_after == timedelta(hours=36)
    assert policy_summary(merged[0], merged[1])["safety_backups_expire_after"] == "36h"
    default = merged_policy([RetentionConfig(keep_last=2)])
    assert default is not None
    assert default[0].safety_backups_expire_after == timedelta(days=7)
