"""`lifeboat report` over real repositories: real backups copied into a second repository,
a hold, a verification, a quick drill and a prune, then the JSON and Markdown reports
through the command; and the bad inputs: an empty period, a tampered chain, an unknown
source, an unwritable output path."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pypdf
import pytest

from lifeboat.postgres.instance import ScratchCluster
from lifeboat.postgres.wal import is_segment_name
from lifeboat.repo import audit
from tests.chromium import running_browser

from .archiving import Archiving
from .helpers import Workspace, error_line, fill_rich, make_workspace
from .versions import on_oldest_major


def _with_copy_target(ws: Workspace, dsn: str) -> None:
    """Repositories primary (the source's) and dr (a copy target); a daily retention."""
    ws.config.write_text(
        f'[repositories.primary]\nurl = "file://{ws.root / "primary"}"\n\n'
        f'[repositories.dr]\nurl = "file://{ws.root / "dr"}"\n\n'
        f'[encryption]\nage_recipients = ["{ws.public_key}"]\n'
        f'age_identity_file = "{ws.identity}"\n\n'
        "[retention]\nkeep_daily = 7\n\n"
        f'[sources.wms]\ntype = "postgres"\ndsn = "{dsn}"\nrepositories = ["primary"]\n'
    )
    ws.run("init", check=True)


def _controls(body: dict[str, Any]) -> dict[str, str]:
    (source,) = body["sources"]
    return {c["id"]: c["status"] for c in source["controls"]}


def _control(body: dict[str, Any], control_id: str) -> dict[str, Any]:
    (source,) = body["sources"]
    found: dict[str, Any] = next(c for c in source["controls"] if c["id"] == control_id)
    return found


@on_oldest_major
@pytest.mark.browser
def test_the_report_of_a_real_history_and_its_bad_inputs(
    pg_cluster: ScratchCluster, fresh_db: str, tmp_path: Path
) -> None:
    fill_rich(pg_cluster, fresh_db)
    ws = make_workspace(tmp_path, pg_cluster.dsn(fresh_db), in_process=True)
    _with_copy_target(ws, pg_cluster.dsn(fresh_db))
    held, pruned, newest = (ws.run_json("backup", "wms")["id"] for _ in range(3))
    ws.run("copy", "--from", "primary", "--to", "dr", check=True)
    ws.run("hold", held, "--reason", "audit 2026", check=True)
    ws.run("verify", "wms", check=True)
    drilled = ws.run("drill", "wms", "--depth", "quick", "--json", timeout=600, own_process=True)
    assert drilled.returncode == 0, drilled.stderr
    (drill,) = json.loads(drilled.stdout)["drills"]
    assert drill["verdict"] == "pass", drill["reasons"]
    ws.run("prune", "wms", check=True)  # keep_daily: today's newest; the held one stays

    today = datetime.now(UTC).date()
    period = ["--from", (today - timedelta(days=1)).isoformat(), "--to", today.isoformat()]
    out = tmp_path / "q.json"
    written = ws.run("report", *period, "--format", "json", "--output", str(out))
    assert written.returncode == 0, written.stderr  # every control passed or does not apply
    body = json.loads(out.read_text(encoding="utf-8"))
    assert body["passed"] is True
    assert _controls(body) == {
        "frequency": "pass",
        "encryption": "pass",
        "offsite": "pass",
        "retention": "pass",
        "drills": "pass",
        "verification": "pass",
        "wal": "not-applicable",
        "immutability": "not-applicable",
        "audit-chain": "pass",
    }
    (source,) = body["sources"]
    rows = {row["id"]: row for row in source["backups"]}
    assert list(rows) == [held, pruned, newest]
    assert rows[held]["held"] and rows[held]["repositories"] == ["primary", "dr"]
    assert rows[pruned]["repositories"] == ["dr"]  # pruned from primary, copied before
    assert rows[newest]["verification"] == "ok"
    assert [(d["backup"], d["repository"]) for d in source["deletions"]] == [(pruned, "primary")]
    assert [(h["backup"], h["action"]) for h in source["holds"]] == [
        (held, "hold"),
        (held, "hold"),
    ]  # in both repositories
    assert [d["drill_id"] for d in source["drills"]] == [drill["drill_id"]]
    chains = {c["repository"]: c for c in body["chains"]}
    assert chains["primary"]["whole"] and chains["dr"]["whole"]

    markdown = ws.run("report", *period, "--format", "md")
    assert markdown.returncode == 0, markdown.stderr
    assert "| audit-chain | PASS |" in markdown.stdout
    assert f"`{pruned}`" in markdown.stdout and drill["drill_id"] in markdown.stdout

    _html_and_pdf_show_the_same_report(ws, period, body, tmp_path)

    # an empty period: a report that says so, and exit 1 (nothing shows the controls met)
    empty = ws.run("report", "--from", "2020-01-01", "--to", "2020-03-31", "--format", "md")
    assert empty.returncode == 1
    assert "**No backup, drill, deletion or hold in this period.**" in empty.stdout
    assert "wms/frequency (no-data)" in error_line(empty)

    # a tampered event: the audit-chain control fails with audit verify's words, the
    # report is still written
    event = ws.root / "primary" / audit.event_key(2)
    tampered = json.loads(event.read_text(encoding="utf-8"))
    tampered["actor"]["user"] = "mallory"
    event.write_text(json.dumps(tampered), encoding="utf-8")
    broken = ws.run("report", *period, "--format", "json", "--output", str(out))
    assert broken.returncode == 1
    assert "wms/audit-chain (fail)" in error_line(broken)
    (source,) = json.loads(out.read_text(encoding="utf-8"))["sources"]
    (chain,) = [c for c in source["controls"] if c["id"] == "audit-chain"]
    assert chain["exceptions"] == [
        "primary: broken at event 2: event 2 is not the one event 3 links to: altered"
    ]

    unknown = ws.run("report", *period, "--source", "nope")
    assert unknown.returncode == 2
    assert "unknown source 'nope'" in error_line(unknown)
    unwritable = ws.run("report", *period, "--output", str(tmp_path / "no" / "such" / "r.md"))
    assert unwritable.returncode == 1
    assert "cannot write the report to" in error_line(unwritable)


def _html_and_pdf_show_the_same_report(
    ws: Workspace, period: list[str], body: dict[str, Any], tmp_path: Path
) -> None:
    """The HTML the command writes (format from the file's suffix), as headless Chromium
    renders it, shows the JSON report's controls and backups; the PDF names the source."""
    page_file = tmp_path / "q.html"
    written = ws.run("report", *period, "--output", str(page_file))
    assert written.returncode == 0, written.stderr
    (source,) = body["sources"]
    with running_browser(tmp_path / "chromium") as browser, browser.open(page_file) as page:
        shown = page.evaluate(
            "[...document.querySelectorAll('section.source tr[data-control]')]"
            ".map(r => [r.dataset.control, r.dataset.status])"
        )
        assert dict(shown) == _controls(body)
        assert page.evaluate("document.body.dataset.verdict") == "pass"
        points = page.evaluate(
            "document.querySelector('figure[data-chart=size]').querySelectorAll("
            "'circle.point').length"
        )
        assert points == len(source["backups"])
        (tmp_path / "q.png").write_bytes(page.screenshot())

    printed = tmp_path / "q.pdf"
    written = ws.run("report", *period, "--output", str(printed))
    assert written.returncode == 0, written.stderr
    pages = [page.extract_text() for page in pypdf.PdfReader(printed).pages]
    assert len(pages) >= 2 and any("wms" in text for text in pages[1:])
    unprinted = ws.run("report", *period, "--format", "pdf")
    assert unprinted.returncode == 2
    assert "--format pdf needs --output FILE" in error_line(unprinted)


@on_oldest_major
def test_the_wal_control_follows_the_archive_from_the_physical_base(
    archiving: Archiving,
) -> None:
    base = json.loads(archiving.lifeboat("backup", "wms", "--type", "physical", "--json").stdout)
    for row in range(3):  # three segments after the base's, each with a commit
        archiving.commit(row, row)
        archiving.switch_and_wait()
    today = datetime.now(UTC).date().isoformat()
    out = archiving.home / "report.json"
    report = ["report", "--from", today, "--to", today, "--format", "json", "--output", str(out)]

    archiving.lifeboat(*report, check=False)
    wal = _control(json.loads(out.read_text(encoding="utf-8")), "wal")
    assert wal["status"] == "pass", wal
    assert wal["evidence"][0].startswith(f"base backup {base['id']} ")

    # a segment after the base's goes missing: the PITR window has a gap, named
    archive = archiving.home / "repo" / "wms" / "wal"
    stems = {path.name.split("-")[0] for path in archive.rglob("*-*")}
    names = sorted(stem for stem in stems if len(stem) == 24 and is_segment_name(stem))
    lost = names[-2]
    for path in archive.rglob(f"{lost}-*"):
        path.unlink()
    archiving.lifeboat(*report, check=False)
    wal = _control(json.loads(out.read_text(encoding="utf-8")), "wal")
    assert wal["status"] == "fail"
    assert wal["exceptions"] == [
        f"local: WAL gap: segment {lost} is missing, so recovery from this backup stops at "
        f"{names[-3]}"
    ]
