"""What the compliance report counts as evidence, and what it must not: each repository's
copy judged on its own, records without their audit events, files put in place by hand,
repositories that cannot be read, events altered into nonsense, and Markdown that keeps
its tables whole whatever names and reasons hold. Real local repositories, as in
test_report_build.py, whose History these tests start from."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lifeboat.context import Context
from lifeboat.ops.drill_records import record_drill
from lifeboat.ops.holds import hold, release
from lifeboat.ops.prune import prune
from lifeboat.ops.report import build, held_at_end
from lifeboat.ops.report_markdown import render
from lifeboat.ops.report_model import HoldEvent
from lifeboat.ops.verify import BackupCheck, _record
from lifeboat.policy.retention import Policy
from lifeboat.repo import layout
from lifeboat.repo.commit import commit
from lifeboat.repo.drills import write_drill
from lifeboat.repo.manifest import Manifest, Physical
from lifeboat.repo.objects import Written
from lifeboat.repo.records import check_key, write_record
from tests.unit.drill_records import make_record, write_drills_config
from tests.unit.ops.test_report_build import History, control
from tests.unit.repo.test_repository import make_manifest

pytestmark = pytest.mark.unit

DAY = timedelta(days=1)


@pytest.fixture
def history(tmp_path: Path) -> History:
    return History(tmp_path)


def test_a_repository_that_cannot_be_listed_does_not_take_the_others_with_it(
    history: History, tmp_path: Path
) -> None:
    """Each chain's anchors are looked for in every repository: one that cannot be listed
    (a path the disk refuses, as a bucket that is gone would be) leaves the others read,
    and the anchors it may hold are an exception, not silently unchecked."""
    with history.config.open("a", encoding="utf-8") as config:
        config.write(f'[repositories.worm]\nurl = "file://{tmp_path / ("w" * 300)}"\n')
    report = history.report()
    errors = {r.name: r.error for r in report.repositories}
    assert errors["main"] is None and errors["offsite"] is None, errors
    assert errors["worm"] is not None and "too long" in errors["worm"]
    (source,) = report.sources
    assert [row.id for row in source.backups] == [m.id for m in history.manifests]
    chain = control(source, "audit-chain")
    assert chain.status == "fail"
    assert [e.split(":")[0] for e in chain.exceptions] == [
        "the anchors of main kept in worm cannot be read",
        "the anchors of offsite kept in worm cannot be read",
    ]


def test_an_ok_check_of_one_copy_does_not_hide_a_failed_one_of_another(history: History) -> None:
    """The newest backup is in main and offsite, checked ok in main; its offsite copy then
    fails verification and main is checked ok once more. Offsite's copy is still the one
    that failed: the backup's verification is failed, and so is the control."""
    offsite, main = history.ctx.repository("offsite"), history.ctx.repository("main")
    newest = history.newest.id
    _record(offsite, BackupCheck("offsite", "wms", newest, deep=False, problems=["bad object"]))
    _record(main, BackupCheck("main", "wms", newest, deep=False, problems=[]))
    (source,) = history.report().sources
    rows = {row.id: row for row in source.backups}
    assert rows[newest].verification == "failed"
    assert any(
        e.startswith(f"backup {newest} ") for e in control(source, "verification").exceptions
    )


def test_a_backup_that_failed_verification_covers_no_retention_cell(history: History) -> None:
    """Prune counts a backup whose newest verification failed by no rule: the grid does
    not show its day as covered, as if it could be restored."""
    (source,) = history.report().sources
    day = f"{history.single.started_at:%Y-%m-%d}"
    (cell,) = [c for c in source.coverage if c.tier == "daily" and c.label == day]
    assert cell.backup is None and not cell.promised
    newest_day = f"{history.newest.started_at:%Y-%m-%d}"
    (newest,) = [c for c in source.coverage if c.tier == "daily" and c.label == newest_day]
    assert newest.backup == history.newest.id and newest.promised


def test_each_repository_pruned_with_its_own_policy_is_held_to_it(tmp_path: Path) -> None:
    """wms writes to main (keep_daily = 7) and offsite, which keeps months too. Offsite was
    pruned down to one backup by hand: main's grid is whole, offsite's promise is not, and
    the retention control says so instead of passing on main's policy alone."""
    config = write_drills_config(tmp_path)
    text = config.read_text(encoding="utf-8").replace(
        'repositories = ["main"]', 'repositories = ["main", "offsite"]'
    )
    config.write_text(
        text + "[retention]\nkeep_daily = 7\n[repositories.offsite.retention]\nkeep_monthly = 12\n",
        encoding="utf-8",
    )
    ctx = Context.load(config)
    now = datetime.now(UTC)
    main, offsite = ctx.repository("main"), ctx.repository("offsite")
    for days in (5, 2, 1):
        manifest = make_manifest(when=now - days * DAY)
        commit(manifest, Written(manifest.objects[0], [main, offsite], {}), [])
    prune(offsite, "wms", Policy(keep_last=1), "UTC", dry_run=False)
    (source,) = build(Context.load(config), now - 10 * DAY, now + DAY, "wms").sources
    judged = control(source, "retention")
    assert judged.status == "fail"
    assert judged.exceptions and all(e.startswith("offsite: ") for e in judged.exceptions)
    assert f"offsite: daily {now - 2 * DAY:%Y-%m-%d}: " in " ".join(judged.exceptions)
    assert any("offsite prunes with its own policy" in line for line in judged.evidence)
    assert all(c.covered for c in source.coverage if c.promised)  # main's grid


def _table_widths(text: str) -> list[list[int]]:
    """The number of cells of each row of each Markdown table, splitting on the pipes a
    GitHub-flavoured Markdown reader splits on (a backslash escapes the next character)."""
    tables: list[list[int]] = []
    previous = ""
    for line in text.splitlines():
        if not line.startswith("|"):
            previous = line
            continue
        if not previous.startswith("|"):
            tables.append([])
        pipes, escaped = 0, False
        for char in line:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == "|":
                pipes += 1
        tables[-1].append(pipes)
        previous = line
    return tables


def test_pipes_backslashes_and_line_breaks_do_not_break_the_markdown(history: History) -> None:
    """Names and reasons come from the configuration and from whoever placed a hold: a
    pipe, a backslash before one, or a line break must not split a table row or a list
    item, wherever it appears."""
    report = history.report()
    (source,) = report.sources
    odd = "tax \\| audit | 42\r\nsee ticket\\"
    holds = [replace(h, reason=odd) for h in source.holds]
    controls = [
        replace(c, evidence=[*c.evidence, "line one\nline two"], exceptions=["first\r\nsecond"])
        if c.id == "frequency"
        else c
        for c in source.controls
    ]
    source = replace(source, source="w|ms\n", holds=holds, controls=controls)
    text = render(replace(report, sources=[source]))
    tables = _table_widths(text)
    assert len(tables) >= 4
    for widths in tables:
        assert len(set(widths)) == 1, (widths, text)
    assert "- line one line two" in text and "- first second" in text
    assert "tax \\\\\\| audit \\| 42 see ticket\\\\" in text


def test_a_copy_gone_without_a_prune_deletion_is_no_off_site_copy(
    history: History, tmp_path: Path
) -> None:
    """The newest backup's copy in offsite is deleted by hand: the chain still records the
    copy, but no prune deleted it, so nothing vouches that it is kept off site."""
    for key in (
        layout.manifest_key("wms", history.newest.id),
        layout.manifest_copy_key("wms", history.newest.id),
    ):
        (tmp_path / "offsite" / key).unlink(missing_ok=True)
    (source,) = history.report().sources
    assert {row.id: row for row in source.backups}[history.newest.id].repositories == ["main"]
    exceptions = control(source, "offsite").exceptions
    assert (
        f"backup {history.newest.id} ({history.newest.finished_at:%Y-%m-%d %H:%M} UTC) is only "
        "in main (gone from offsite without a prune deletion)"
    ) in exceptions
    # the oldest, pruned from main by its rules, is no such exception: it was only in main
    assert any(e.startswith(f"backup {history.pruned.id} ") for e in exceptions)


def test_a_release_in_one_repository_leaves_the_hold_of_another(history: History) -> None:
    """The newest backup is held in main and offsite, then released in offsite only: main
    still keeps it from prune, and the report says it is held."""
    main, offsite = history.ctx.repository("main"), history.ctx.repository("offsite")
    hold(main, history.newest, "tax audit", None)
    hold(offsite, history.newest, "tax audit", None)
    release(offsite, history.newest, "offsite copy not needed")
    (source,) = history.report().sources
    assert {row.id: row for row in source.backups}[history.newest.id].held


def test_a_verification_record_without_its_event_does_not_count(history: History) -> None:
    """A check record written after the chain began, with no `verify` event (here a forged
    ok one, newer than the real failed check), vouches for nothing: the failure stands."""
    storage = history.ctx.repository("main").storage
    at = datetime.now(UTC) + timedelta(seconds=1)
    write_record(
        storage,
        check_key("wms", history.single.id, at, ok=True),
        {"ok": True, "problems": [], "at": at.isoformat(), "by": "someone@elsewhere"},
    )
    (source,) = history.report().sources
    assert {row.id: row for row in source.backups}[history.single.id].verification == "failed"


def test_a_drill_record_forged_or_changed_since_the_chain_began_is_no_evidence(
    history: History, tmp_path: Path
) -> None:
    """Drill records are plain objects; since the chain began each drill also has a `drill`
    event. A record written without one, or one whose verdict was changed after its event,
    is named and not counted as a passed drill; the genuine drill still counts."""
    main = history.ctx.repository("main")
    forged_at = altered_at = datetime.now(UTC)  # drilled after the chain began
    write_drill(main.storage, make_record(history.newest.id, forged_at, drill_id="forged"))
    record_drill([main], make_record(history.newest.id, altered_at, "fail", drill_id="altered"))
    for path in (tmp_path / "main" / "wms" / "drills").rglob("*.json"):
        body = json.loads(path.read_text())
        if body["drill_id"] == "altered":
            path.write_text(json.dumps(body | {"verdict": "pass", "reasons": []}))
    (source,) = history.report().sources
    drills = control(source, "drills")
    assert drills.status == "fail"
    assert [e.split(":")[0] for e in drills.exceptions] == [
        f"drill altered at {altered_at:%Y-%m-%d %H}",
        f"drill forged at {forged_at:%Y-%m-%d %H}",
    ]
    assert "its verdict differs from its drill event's" in drills.exceptions[0]
    assert "the record was changed" in drills.exceptions[0]
    assert "the audit chain has no drill event of it" in drills.exceptions[1]
    genuine = [d for d in source.drills if d.drill_id not in ("forged", "altered")]
    assert any(genuine[0].drill_id in line for line in drills.evidence)


def test_a_backup_whose_manifests_cannot_be_read_is_named_not_dropped(
    history: History, tmp_path: Path
) -> None:
    """Both manifests of the newest backup's offsite copy are damaged: the backup is still
    listed from main, and the damaged copy is a verification exception, not a log line."""
    for key in (
        layout.manifest_key("wms", history.newest.id),
        layout.manifest_copy_key("wms", history.newest.id),
    ):
        (tmp_path / "offsite" / key).write_text("{not json")
    (source,) = history.report().sources
    exceptions = control(source, "verification").exceptions
    assert any(
        e.startswith(f"backup {history.newest.id} in offsite: neither its manifest nor its copy")
        for e in exceptions
    ), exceptions


def test_a_manifest_put_in_a_repository_by_hand_is_no_evidence(
    history: History, tmp_path: Path
) -> None:
    """A backup committed into main only is given an offsite copy by copying its files, not
    by `lifeboat copy`: offsite's chain, begun before it, has no event of it. It is not
    counted as off site, and the audit-chain control names it."""
    manifest = make_manifest(when=datetime.now(UTC))  # after both chains began
    commit(manifest, Written(manifest.objects[0], [history.ctx.repository("main")], {}), [])
    for key in (
        layout.manifest_key("wms", manifest.id),
        layout.manifest_copy_key("wms", manifest.id),
    ):
        target = tmp_path / "offsite" / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((tmp_path / "main" / key).read_bytes())
    (source,) = history.report().sources
    row = {row.id: row for row in source.backups}[manifest.id]
    assert row.repositories == ["main", "offsite"]
    assert any(
        e.startswith(f"backup {manifest.id} ") for e in control(source, "offsite").exceptions
    )
    (named,) = [e for e in control(source, "audit-chain").exceptions if manifest.id in e]
    assert named.startswith(f"backup {manifest.id} in offsite (finished ")


def _physical(when: datetime, segment: int) -> Manifest:
    """A physical backup that started and ended in WAL segment `segment` of timeline 1."""
    name = f"00000001{0:08X}{segment:08X}"
    span = Physical(
        timeline=1,
        start_lsn=f"0/{segment:X}000028",
        stop_lsn=f"0/{segment:X}000100",
        start_wal=name,
        stop_wal=name,
        segment_size=16 * 1024 * 1024,
    )
    return make_manifest(when=when, type="physical", physical=span)


def test_an_archive_that_stopped_growing_is_no_continuous_wal(tmp_path: Path) -> None:
    """Segments 2 to 5 are archived, then archiving stopped; physical backups went on, the
    newest ending in segment 9. The archive has no gap up to its newest segment, yet no
    recovery reaches past segment 5: the wal control fails instead of passing."""
    config = write_drills_config(tmp_path)
    ctx = Context.load(config)
    main = ctx.repository("main")
    now = datetime.now(UTC)
    for days, segment in ((3, 2), (1, 9)):
        manifest = _physical(now - days * DAY, segment)
        commit(manifest, Written(manifest.objects[0], [main], {}), [])
    for segment in range(2, 6):
        name = f"00000001{0:08X}{segment:08X}"
        main.storage.write(layout.wal_key("wms", name, "e" * 64, ".age"), [b"wal"])
    (source,) = build(Context.load(config), now - 10 * DAY, now + DAY, "wms").sources
    judged = control(source, "wal")
    assert judged.status == "fail", judged
    assert "WAL archiving stopped" in judged.exceptions[0]


def test_a_repository_of_another_source_begun_later_leaves_drills_vouched_for(
    history: History, tmp_path: Path
) -> None:
    """A repository only another source writes to starts its chain after wms's drill was
    forged: the drill is still after wms's own chain began, and still named."""
    forged_at = datetime.now(UTC)
    text = history.config.read_text(encoding="utf-8")
    other = tmp_path / "other"
    history.config.write_text(
        text.replace("[encryption]", f'[repositories.other]\nurl = "file://{other}"\n[encryption]')
        + '[sources.erp]\ntype = "postgres"\ndsn = "postgresql://backup@db.internal:5432/erp"\n'
        'repositories = ["other"]\n',
        encoding="utf-8",
    )
    ctx = Context.load(history.config)
    ctx.repository("other").init()
    manifest = make_manifest("erp", when=datetime.now(UTC))
    commit(manifest, Written(manifest.objects[0], [ctx.repository("other")], {}), [])
    main = ctx.repository("main")
    write_drill(main.storage, make_record(history.newest.id, forged_at, drill_id="forged"))
    (source,) = build(ctx, history.now - 10 * DAY, history.now + DAY, "wms").sources
    assert any(e.startswith("drill forged at ") for e in control(source, "drills").exceptions)


def _main_events(tmp_path: Path) -> dict[int, tuple[Path, dict[str, Any]]]:
    """Main's chain events as stored: sequence -> (file, body)."""
    found = {}
    for path in sorted((tmp_path / "main" / "audit" / "chain").glob("*.json")):
        body = json.loads(path.read_text())
        found[int(body["sequence"])] = (path, body)
    return found


def test_events_altered_into_nonsense_break_the_chain_not_the_report(
    history: History, tmp_path: Path
) -> None:
    """Two events are altered into shapes no Lifeboat writes: the pruned backup's `backup`
    event gets words for its size, a hold event a list for its backup. The report is
    built, the chain is named broken, the odd event is named, the rest stands."""
    events = _main_events(tmp_path)
    (backup_path, backup_body), *_ = [
        (p, b)
        for p, b in events.values()
        if b["event"] == "backup" and b["subject"]["backup"] == history.pruned.id
    ]
    backup_body["details"]["bytes"] = "a lot"
    backup_path.write_text(json.dumps(backup_body))
    (hold_path, hold_body), *_ = [(p, b) for p, b in events.values() if b["event"] == "hold"]
    hold_body["subject"]["backup"] = [history.held.id]
    hold_path.write_text(json.dumps(hold_body))
    (source,) = history.report().sources
    rows = {row.id: row for row in source.backups}
    assert rows[history.pruned.id].stored_bytes == 0
    chain = control(source, "audit-chain")
    assert chain.status == "fail"
    assert any(e.startswith("main: broken at event ") for e in chain.exceptions)
    assert any(
        e.startswith(f"event {hold_body['sequence']} in main cannot be read as a hold event")
        for e in chain.exceptions
    ), chain.exceptions


def test_a_drill_record_whose_rto_was_changed_is_no_evidence(
    history: History, tmp_path: Path
) -> None:
    """A passed drill whose record was edited to a shorter RTO, its verdict left alone:
    the figures an auditor reads must be those the drill event keeps."""
    main = history.ctx.repository("main")
    record_drill([main], make_record(history.newest.id, datetime.now(UTC), drill_id="slow"))
    for path in (tmp_path / "main" / "wms" / "drills").rglob("*.json"):
        body = json.loads(path.read_text())
        if body["drill_id"] == "slow":
            path.write_text(json.dumps(body | {"rto_seconds": 1.0}))
    (source,) = history.report().sources
    (changed,) = [e for e in control(source, "drills").exceptions if e.startswith("drill slow ")]
    assert "its RTO differs from its drill event's" in changed


def test_a_manifest_changed_since_its_backup_event_is_no_evidence(history: History) -> None:
    """The backup held in main only has its manifest rewritten (checksum and copy too) to
    end an hour later: its backup event keeps the end it was committed with. The
    audit-chain control names it, and the offsite control does not count main for it."""
    main = history.ctx.repository("main")
    moved = history.single.finished_at + timedelta(hours=1)
    main.save_manifest(history.single.model_copy(update={"finished_at": moved}))
    (source,) = history.report().sources
    assert {row.id: row for row in source.backups}[history.single.id].finished_at == moved
    (named,) = [e for e in control(source, "audit-chain").exceptions if history.single.id in e]
    assert named.endswith(
        "its manifest and its backup event differ in its end: one was changed since the "
        "backup was committed"
    )
    (offsite,) = [e for e in control(source, "offsite").exceptions if history.single.id in e]
    assert offsite.endswith("is only in no repository (not vouched for by the chain of main)")


def test_a_backup_its_newest_drill_could_not_restore_covers_no_retention_cell(
    history: History,
) -> None:
    """Prune counts a backup whose newest drill failed to restore it by no rule, as it
    does one that failed verification: the grid does not show its day as covered."""
    main = history.ctx.repository("main")
    record_drill([main], make_record(history.held.id, history.now - DAY / 4, "fail"))
    (source,) = history.report().sources
    day = f"{history.held.started_at:%Y-%m-%d}"
    (cell,) = [c for c in source.coverage if c.tier == "daily" and c.label == day]
    assert cell.backup is None and not cell.promised


def test_a_hold_placed_as_the_period_ends_belongs_to_the_next_period() -> None:
    """The period is [start, end): a hold placed at its end is not in force within it,
    and one lasting until its end was in force to its last instant."""
    end = datetime(2026, 4, 1, tzinfo=UTC)

    def event(at: datetime, backup: str, until: datetime | None = None) -> HoldEvent:
        return HoldEvent(at, "main", backup, "hold", "audit", until, "dba@db1")

    holds = [event(end, "late"), event(end - DAY, "until-end", until=end)]
    assert held_at_end(holds, end) == {"until-end"}


def test_a_backup_only_put_in_place_by_hand_makes_no_calendar_day(history: History) -> None:
    """A manifest saved into main without `lifeboat backup` (no backup event) is listed and
    named, but the calendar does not show its day as one with a backup."""
    manifest = make_manifest(when=datetime.now(UTC))
    history.ctx.repository("main").save_manifest(manifest)
    (source,) = history.report().sources
    assert manifest.id in {row.id for row in source.backups}
    day = manifest.finished_at.date()
    (shown,) = [d for d in source.calendar if d.day == day]
    assert shown.outcome != "ok" and manifest.id not in shown.backups
