"""The compliance report built from real local repositories (manifests, the audit chain,
hold, verification and drill records) and `lifeboat report`'s formats, exit codes and bad
input. Integration tests make the same with real backups (tests/integration/test_report.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lifeboat.cli.commands.report import chosen_format, period_bound
from lifeboat.context import Context
from lifeboat.errors import UsageError
from lifeboat.ops.drill_records import record_drill
from lifeboat.ops.holds import hold
from lifeboat.ops.prune import prune
from lifeboat.ops.report import build
from lifeboat.ops.report_markdown import render
from lifeboat.ops.report_model import ComplianceReport, Control, SourceReport
from lifeboat.ops.verify import BackupCheck, _record
from lifeboat.policy.retention import Policy
from lifeboat.repo import audit, layout
from lifeboat.repo.commit import commit
from lifeboat.repo.manifest import Manifest
from lifeboat.repo.objects import Written
from lifeboat.repo.records import audit_key, write_record
from tests.unit.drill_records import make_record, write_drills_config
from tests.unit.helpers import one_error_line, run
from tests.unit.repo.test_repository import make_manifest

pytestmark = pytest.mark.unit

DAY = timedelta(days=1)


def control(source: SourceReport, control_id: str) -> Control:
    return next(c for c in source.controls if c.id == control_id)


class History:
    """Four daily backups: the oldest in main only, pruned; the next only in main; the
    newest two in main and offsite; one held, one failed verification, the newest drilled."""

    def __init__(self, folder: Path) -> None:
        self.config = write_drills_config(folder)
        with self.config.open("a", encoding="utf-8") as config:
            config.write("[retention]\nkeep_daily = 7\n")
        self.ctx = Context.load(self.config)
        self.now = datetime.now(UTC)
        main, offsite = self.ctx.repository("main"), self.ctx.repository("offsite")
        self.manifests: list[Manifest] = []
        for days in (4, 3, 2, 1):
            manifest = make_manifest(when=self.now - days * DAY)
            repos = [main] if days > 2 else [main, offsite]
            commit(manifest, Written(manifest.objects[0], repos, {}), [])
            self.manifests.append(manifest)
        self.pruned, self.single, self.held, self.newest = self.manifests
        hold(main, self.held, "litigation 42", None)
        # the three newest are within 3.5 days: the oldest goes, with its reasons
        prune(main, "wms", Policy(keep_within=3.5 * DAY), "UTC", dry_run=False)
        _record(main, BackupCheck("main", "wms", self.single.id, deep=False, problems=["bad"]))
        _record(main, BackupCheck("main", "wms", self.newest.id, deep=False, problems=[]))
        record_drill([main, offsite], make_record(self.newest.id, self.now - DAY / 2))

    def report(self, source: str | None = "wms") -> ComplianceReport:
        return build(Context.load(self.config), self.now - 10 * DAY, self.now + DAY, source)


@pytest.fixture
def history(tmp_path: Path) -> History:
    return History(tmp_path)


def test_the_report_is_built_from_the_repositories_alone(history: History) -> None:
    report = history.report()
    (source,) = report.sources
    rows = {row.id: row for row in source.backups}
    assert list(rows) == [m.id for m in history.manifests]
    assert rows[history.pruned.id].repositories == []  # known from its backup event
    assert rows[history.newest.id].repositories == ["main", "offsite"]
    assert rows[history.held.id].held and not rows[history.newest.id].held
    assert rows[history.single.id].verification == "failed"
    assert rows[history.newest.id].verification == "ok"

    offsite = control(source, "offsite")
    assert offsite.status == "fail"
    assert [e.split(" (")[0] for e in offsite.exceptions] == [
        f"backup {history.pruned.id}",
        f"backup {history.single.id}",
    ]
    assert control(source, "verification").exceptions[0].startswith(f"backup {history.single.id} ")
    assert control(source, "encryption").status == "pass"
    assert control(source, "audit-chain").status == "pass"
    assert control(source, "wal").status == "not-applicable"
    assert control(source, "immutability").status == "not-applicable"

    (deletion,) = source.deletions
    assert (deletion.backup, deletion.repository) == (history.pruned.id, "main")
    assert deletion.reasons and "keep_within = 84h" in deletion.policy
    (held,) = source.holds
    assert (held.backup, held.action, held.reason) == (history.held.id, "hold", "litigation 42")
    (drill,) = source.drills
    assert drill.backup == history.newest.id and drill.passed
    days_with_backups = [d for d in source.calendar if d.backups]
    assert len(days_with_backups) == 4
    assert {c.tier for c in source.coverage} == {"daily", "weekly", "monthly", "yearly"}
    assert {chain.repository for chain in report.chains} == {"main", "offsite"}
    assert not report.passed


def test_a_tampered_chain_fails_its_control_and_the_report_is_still_built(
    history: History, tmp_path: Path
) -> None:
    event = tmp_path / "main" / audit.event_key(2)
    body = json.loads(event.read_text())
    body["details"]["bytes"] = 1
    event.write_text(json.dumps(body))
    (source,) = history.report().sources
    chain = control(source, "audit-chain")
    assert chain.status == "fail"
    assert chain.exceptions[-1] == (
        "main: broken at event 2: event 2 is not the one event 3 links to: altered"
    )
    assert source.backups  # the rest of the report stands


def test_an_unreadable_repository_is_named_and_the_others_give_the_report(
    history: History, tmp_path: Path
) -> None:
    (tmp_path / "offsite" / layout.MARKER).unlink()
    report = history.report()
    (offsite,) = [r for r in report.repositories if r.name == "offsite"]
    assert offsite.error is not None and "not initialised" in offsite.error, offsite.error
    assert [r.error for r in report.repositories if r.name == "main"] == [None]
    (source,) = report.sources
    assert [row.id for row in source.backups] == [m.id for m in history.manifests]


def test_an_unknown_source_and_a_reversed_period_are_usage_errors(history: History) -> None:
    with pytest.raises(UsageError, match="unknown source 'nope'"):
        history.report("nope")
    with pytest.raises(UsageError, match="after it ends"):
        build(history.ctx, history.now, history.now - DAY)


def test_an_empty_period_says_so(history: History) -> None:
    report = build(history.ctx, datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 2, 1, tzinfo=UTC))
    (source,) = report.sources
    assert not source.has_data
    assert control(source, "frequency").status == "no-data"
    assert "**No backup, drill, deletion or hold in this period.**" in render(report)


def test_the_markdown_opens_with_the_version_time_and_control_matrix(history: History) -> None:
    text = render(history.report())
    head, _, rest = text.partition("## Control matrix")
    assert "by Lifeboat " in head and "Generated: " in head
    assert "| offsite | **FAIL** |" in rest
    assert (
        rest.index("### Restore drills")
        < rest.index("### Deletions")
        < rest.index("## Audit chains")
    )
    assert history.pruned.id in rest


# --- the command ----------------------------------------------------------------------------


def test_the_command_writes_json_and_exits_1_naming_the_failed_controls(
    history: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.json"
    today = f"{history.now:%Y-%m-%d}"
    code = run(
        ["--config", str(history.config), "report", "--from", "2026-01-01", "--to", today,
         "--format", "json", "--output", str(out)]
    )  # fmt: skip
    assert code == 1
    line = one_error_line(capsys.readouterr().err)
    assert "wms/offsite (fail)" in line
    body = json.loads(out.read_text())
    assert body["passed"] is False
    assert body["period_end"].startswith(f"{(history.now + DAY):%Y-%m-%d}T00:00:00")
    assert [c["id"] for c in body["sources"][0]["controls"]][:3] == [
        "frequency",
        "encryption",
        "offsite",
    ]


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--source", "nope"], 2, "unknown source 'nope'"),
        (["--output", "/nonexistent-folder/r.md"], 1, "cannot write the report to"),
        (["--from", "2026-05-01", "--to", "2026-04-01"], 2, "is after --to"),
        (["--from", "yesterday"], 2, "is not a date"),
    ],
)
def test_bad_input_is_one_line_and_its_exit_code(
    history: History,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    code: int,
    words: str,
) -> None:
    period = {"--from": "2026-01-01", "--to": "2026-03-31"}
    for name, value in zip(args[::2], args[1::2], strict=True):
        period[name] = value
    flat = [item for pair in period.items() for item in pair]
    assert run(["--config", str(history.config), "report", *flat]) == code
    assert words in one_error_line(capsys.readouterr().err)


def test_prune_and_hold_records_written_before_the_chain_are_reported(tmp_path: Path) -> None:
    """A repository used before the audit chain existed: its audit/ records of prunes and
    holds are the only evidence of them, and the report reads them."""
    config = write_drills_config(tmp_path)
    ctx = Context.load(config)
    storage = ctx.repository("main").storage
    at = datetime.now(UTC) - 2 * DAY
    gone = make_manifest(when=at - 30 * DAY).id
    write_record(
        storage,
        audit_key(at, "prune", "wms"),
        {
            "action": "prune",
            "at": at.isoformat(),
            "by": "backup@db1",
            "source": "wms",
            "policy": {"keep_last": 1},
            "deleted": [gone],
            "backups": [
                {"id": gone, "type": "logical", "decision": "delete", "reasons": ["old"]},
                {"id": "kept", "type": "logical", "decision": "keep", "reasons": ["newest"]},
            ],
        },
    )
    write_record(
        storage,
        audit_key(at, "hold", "wms"),
        {"action": "hold", "at": at.isoformat(), "by": "dba@db1", "source": "wms",
         "backup": gone, "reason": "tax audit", "until": None},
    )  # fmt: skip
    (source,) = build(ctx, at - DAY, at + DAY, "wms").sources
    assert [(d.backup, d.reasons, d.policy, d.by) for d in source.deletions] == [
        (gone, ["old"], "keep_last = 1", "backup@db1")
    ]
    assert [(h.backup, h.action, h.reason) for h in source.holds] == [(gone, "hold", "tax audit")]


def test_to_takes_in_its_whole_day_and_iso_times_are_kept() -> None:
    assert period_bound("2026-03-31", "--to", inclusive_day=True) == datetime(
        2026, 4, 1, tzinfo=UTC
    )
    assert period_bound("2026-01-01", "--from", inclusive_day=False) == datetime(
        2026, 1, 1, tzinfo=UTC
    )
    assert period_bound("2026-03-31T12:00:00+02:00", "--to", inclusive_day=True) == datetime(
        2026, 3, 31, 10, tzinfo=UTC
    )
    assert period_bound("2026-03-31T12:00", "--to", inclusive_day=True) == datetime(
        2026, 3, 31, 12, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("given", "output", "chosen"),
    [
        (None, None, "md"),  # printed at a terminal
        (None, "q1.html", "html"),
        (None, "Q1.PDF", "pdf"),
        (None, "q1.json", "json"),
        (None, "q1.md", "md"),
        (None, "q1.report", "html"),  # a file of no known suffix is for a browser
        ("json", "q1.html", "json"),  # --format wins over the suffix
        ("html", None, "html"),
    ],
)
def test_the_format_is_named_by_the_option_then_the_output_suffix(
    given: str | None, output: str | None, chosen: str
) -> None:
    assert chosen_format(given, Path(output) if output else None) == chosen


def test_a_pdf_is_never_printed_to_the_terminal() -> None:
    with pytest.raises(UsageError, match="--format pdf needs --output FILE"):
        chosen_format("pdf", None)
