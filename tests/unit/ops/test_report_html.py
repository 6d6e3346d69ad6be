"""The HTML report's document, read back by Python's HTML parser: self-contained, everything
from the repositories escaped, the hooks tests and scripts rely on present. (How a browser
renders it: tests/integration/test_report_browser.py.)"""

from __future__ import annotations

from dataclasses import replace
from html.parser import HTMLParser

from lifeboat.ops.report_html import render, verdict
from lifeboat.ops.report_model import CONTROL_IDS
from tests.reports import (
    AWKWARD_SOURCE,
    awkward_source,
    empty_report,
    sample_report,
    seven_year_report,
)


class Elements(HTMLParser):
    """Every start tag with its attributes (entities decoded), and the text."""

    def __init__(self, document: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.feed(document)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {name: value or "" for name, value in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def having(self, attribute: str) -> list[dict[str, str]]:
        return [attrs for _tag, attrs in self.tags if attribute in attrs]


def test_every_control_of_every_source_is_a_row_with_its_status() -> None:
    report = sample_report()
    document = render(report)
    rows = [
        (a["data-control"], a["data-status"]) for a in Elements(document).having("data-control")
    ]
    expected = [
        (c.id, c.status)
        for source in report.sources
        for c in sorted(source.controls, key=lambda c: CONTROL_IDS.index(c.id))
    ]
    assert rows == expected


def test_names_reasons_and_paths_are_escaped_and_read_back_unchanged() -> None:
    document = render(sample_report())
    parsed = Elements(document)
    assert [a["data-source"] for a in parsed.having("data-source")] == [
        "wms",
        AWKWARD_SOURCE,
        "archive-db",
    ]
    text = "".join(parsed.text)
    assert f"Source {AWKWARD_SOURCE}" in text
    assert 'year-end close: auditor\'s request "FY2025" <keep>' in text
    assert "file:///srv/backups/<main>" in text
    # no markup of the data became markup of the page
    assert not [tag for tag, _attrs in parsed.tags if tag in ("b", "main>", "keep", "w")]


def test_the_document_loads_nothing_and_runs_nothing() -> None:
    parsed = Elements(render(sample_report()))
    tags = {tag for tag, _attrs in parsed.tags}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed"}
    assert [a["href"] for a in parsed.having("href") if not a["href"].startswith("#")] == []
    assert parsed.having("src") == []
    [policy] = [a for a in parsed.having("http-equiv")]
    assert policy["content"].startswith("default-src 'none'")
    style = render(sample_report()).split("<style>")[1].split("</style>")[0]
    assert "url(" not in style and "@import" not in style


def test_the_verdict_is_fail_incomplete_or_pass() -> None:
    assert verdict(sample_report()) == "fail"
    assert verdict(empty_report()) == "incomplete"
    passing = replace(sample_report(), sources=[awkward_source()])
    assert verdict(passing) == "pass"
    [body] = [a for tag, a in Elements(render(passing)).tags if tag == "body"]
    assert (body["data-verdict"], body["data-passed"]) == ("pass", "true")


def test_each_source_has_its_charts_and_tables() -> None:
    report = sample_report()
    parsed = Elements(render(report))
    charts = [(a["data-chart"], a["data-points"]) for a in parsed.having("data-chart")]
    main = report.sources[0]
    assert charts[:6] == [
        ("size", str(len(main.backups))),
        ("duration", str(len(main.backups))),
        ("calendar", str(len(main.calendar))),
        ("rto", str(len(main.drills))),
        ("rpo", str(len(main.drills))),
        ("coverage", str(len(main.coverage))),
    ]
    tables: dict[str, str | None] = {}  # the first of each name: the main source's
    for attrs in parsed.having("data-table"):
        tables.setdefault(attrs["data-table"], attrs.get("data-rows"))
    assert tables["backups"] == str(len(main.backups))
    assert tables["deletions"] == "7"
    assert tables["holds"] == "3"
    assert tables["repositories"] == "3"
    assert tables["chains"] == "2"


def test_a_period_without_data_says_so_for_every_chart() -> None:
    document = render(empty_report())
    parsed = Elements(document)
    assert [a["data-points"] for a in parsed.having("data-chart")] == ["0"] * 6
    assert document.count("No data in this period.") == 6
    assert parsed.having("data-no-data")
    assert "No audit chain was read." in document


def test_the_period_version_and_generation_time_are_stated() -> None:
    report = sample_report()
    parsed = Elements(render(report))
    [period] = [a for a in parsed.having("id") if a["id"] == "period"]
    assert period["data-start"] == report.period_start.isoformat()
    text = "".join(parsed.text)
    assert "Generated 2026-04-01 08:15:02 UTC by Lifeboat 0.1.0" in text


def test_seven_years_render_to_a_file_of_reasonable_size() -> None:
    """About 2,550 backups and days, 28 drills: measured 1.15 MB, half of it the charts
    (thinned to a point a week), half the table of every backup."""
    document = render(seven_year_report())
    assert len(document.encode()) < 1_500_000
