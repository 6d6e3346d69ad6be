"""The HTML report as a real browser shows it, and its PDF as Chromium prints it: Debian's
chromium, headless, driven over the DevTools protocol (one browser for the module). The
DOM is read as rendered: the controls, the figures, every chart with its marks and a
non-zero size, no request to the network; a full-page screenshot is kept in tmp_path."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pypdf
import pytest

from lifeboat.ops.report_html import render
from lifeboat.ops.report_model import CONTROL_IDS, ComplianceReport
from lifeboat.ops.report_pdf import MISSING, PdfError, write_pdf
from tests.chromium import Browser, Page, png_facts, running_browser
from tests.reports import AWKWARD_SOURCE, empty_report, sample_report, seven_year_report

pytestmark = pytest.mark.browser

CHARTS = ["size", "duration", "calendar", "rto", "rpo", "coverage"]
# each chart's marks: the data points, calendar days and retention cells, legends excluded
MARKS = "circle.point, rect[data-day], rect[data-state]"

# every chart of the page: its name, points claimed, marks drawn, rendered size
CHARTS_JS = (
    """(marks => [...document.querySelectorAll('section.source')].map(section => ({
  source: section.dataset.source,
  charts: [...section.querySelectorAll('figure.chart')].map(figure => {
    const drawn = figure.querySelector('svg, p.no-data').getBoundingClientRect();
    return {chart: figure.dataset.chart, points: Number(figure.dataset.points),
            marks: figure.querySelectorAll(marks).length,
            titled: [...figure.querySelectorAll(marks)].every(m => m.querySelector('title')),
            width: drawn.width, height: drawn.height};
  })})))"""
    + f"({json.dumps(MARKS)})"
)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    with running_browser(tmp_path_factory.mktemp("chromium") / "profile") as browser:
        yield browser


def rendered(report: ComplianceReport, folder: Path, name: str = "report.html") -> Path:
    path = folder / name
    path.write_text(render(report), encoding="utf-8")
    return path


def charts_of(page: Page) -> dict[str, dict[str, dict[str, Any]]]:
    sources: list[dict[str, Any]] = page.evaluate(CHARTS_JS)
    return {s["source"]: {c["chart"]: c for c in s["charts"]} for s in sources}


def test_the_controls_figures_and_charts_as_rendered(browser: Browser, tmp_path: Path) -> None:
    report = sample_report()
    with browser.open(rendered(report, tmp_path)) as page:
        controls = page.evaluate(
            "[...document.querySelectorAll('section.source')].map(s => [s.dataset.source, "
            "[...s.querySelectorAll('tr[data-control]')].map(r => "
            "[r.dataset.control, r.dataset.status, r.querySelector('.status').innerText])])"
        )
        assert controls == [
            [
                source.source,
                [
                    [c.id, c.status, c.status]
                    for c in sorted(source.controls, key=lambda c: CONTROL_IDS.index(c.id))
                ],
            ]
            for source in report.sources
        ]
        assert page.evaluate("document.body.dataset.verdict") == "fail"
        assert page.evaluate(
            "['#version', '#generated', '#period'].map(s => document.querySelector(s).innerText)"
        ) == [
            report.lifeboat_version,
            "2026-04-01 08:15:02 UTC",
            "2025-04-01 00:00:00 UTC to 2026-04-01 00:00:00 UTC (end excluded)",
        ]
        assert page.evaluate("document.querySelector('#verdict').innerText") == (
            "At least one control failed"
        )
        assert page.evaluate(
            "document.querySelector('#source-1 [data-summary=backups]').dataset.count"
        ) == str(len(report.sources[0].backups))
        # the awkward name is text on the page, not markup
        assert page.evaluate("document.querySelector('#source-2 h2').innerText") == (
            f"Source {AWKWARD_SOURCE}"
        )
        assert page.evaluate("document.querySelectorAll('main b, main keep').length") == 0

        charts = charts_of(page)
        main, awkward, empty = report.sources
        expected = {
            main.source: [len(main.backups)] * 2
            + [len(main.calendar), len(main.drills), len(main.drills), len(main.coverage)],
            awkward.source: [7, 7, len(awkward.calendar), 1, 1, len(awkward.coverage)],
            empty.source: [0] * 6,
        }
        for source, counts in expected.items():
            assert list(charts[source]) == CHARTS
            for chart, count in zip(CHARTS, counts, strict=True):
                drawn = charts[source][chart]
                assert (chart, drawn["points"], drawn["marks"]) == (chart, count, count)
                assert drawn["titled"], f"{source} {chart}: a mark without a title"
                assert drawn["width"] > 100 and drawn["height"] > 10, drawn
        # a failed drill's RTO point is drawn as failed, above the dashed objective line
        failed = page.evaluate(
            "(() => { const f = document.querySelector('#source-1 figure[data-chart=rto]');"
            " const p = f.querySelector('circle.fail').getBoundingClientRect();"
            " const o = f.querySelector('line.objective');"
            " return [p.top < o.getBoundingClientRect().top,"
            " getComputedStyle(o).strokeDasharray]; })()"
        )
        assert failed[0] is True
        assert failed[1] != "none"

        shot = page.screenshot()
    (tmp_path / "report.png").write_bytes(shot)
    width, height, distinct = png_facts(shot)
    assert width >= 1000 and height > 3000  # the whole page, not the window
    assert distinct > 50  # not a blank page


def test_the_page_requests_nothing_from_the_network(browser: Browser, tmp_path: Path) -> None:
    with browser.open(rendered(sample_report(), tmp_path)) as page:
        page.collect()
        assert page.requests == [page.url]
        assert page.evaluate("performance.getEntriesByType('resource').length") == 0
        assert page.logged == []  # no blocked load, no error


def test_the_network_watch_sees_a_request_when_there_is_one(
    browser: Browser, tmp_path: Path
) -> None:
    """The check above can fail: a page that loads an image shows its request."""
    page_file = tmp_path / "loads.html"
    image = "http://127.0.0.1:9/logo.png"  # the discard port: refused at once
    page_file.write_text(f'<!DOCTYPE html><img src="{image}">', encoding="utf-8")
    with browser.open(page_file) as page:
        page.collect()
        assert image in page.requests


# A4 less the report's 12 mm side margins, in CSS px (96 per inch)
A4_PRINTED_WIDTH = round((210 - 2 * 12) / 25.4 * 96)


def test_printed_nothing_is_wider_than_an_a4_page(browser: Browser, tmp_path: Path) -> None:
    with browser.open(rendered(sample_report(), tmp_path)) as page:
        page.emulate("print", A4_PRINTED_WIDTH)
        assert page.evaluate("document.documentElement.scrollWidth") <= A4_PRINTED_WIDTH
        breaks = page.evaluate(
            "[...document.querySelectorAll('section.source')]"
            ".map(s => getComputedStyle(s).breakBefore)"
        )
        assert breaks == ["page"] * 3


def test_seven_years_stay_legible(browser: Browser, tmp_path: Path) -> None:
    report = seven_year_report()
    with browser.open(rendered(report, tmp_path)) as page:
        charts = charts_of(page)["wms"]
        assert charts["size"]["marks"] == charts["size"]["points"] <= 400
        assert charts["calendar"]["marks"] == len(report.sources[0].calendar)
        # seven years of calendar stacked, not one 365-week-wide strip
        assert charts["calendar"]["width"] < 1100
        assert charts["calendar"]["height"] > 7 * 7 * 11
        assert page.evaluate("document.documentElement.scrollWidth") <= 1200


def test_an_empty_period_says_so(browser: Browser, tmp_path: Path) -> None:
    with browser.open(rendered(empty_report(), tmp_path)) as page:
        texts = page.evaluate(
            "[...document.querySelectorAll('figure.chart p.no-data')].map(p => p.innerText)"
        )
        assert texts == ["No data in this period."] * 6
        assert page.evaluate("document.body.dataset.verdict") == "incomplete"


def pdf_pages(path: Path) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(path).pages]


def test_the_pdf_has_a_page_run_per_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    # the sample with its list of backups cut to a month: the same pages, printed faster
    sample = sample_report()
    report = replace(sample, sources=[replace(s, backups=s.backups[-30:]) for s in sample.sources])
    output = tmp_path / "report.pdf"
    write_pdf(render(report), output)
    assert output.read_bytes().startswith(b"%PDF-")
    pages = pdf_pages(output)
    assert len(pages) >= 1 + len(report.sources)
    starts = []
    for source in report.sources:
        [first] = [n for n, text in enumerate(pages) if f"Source {source.source}" in text]
        starts.append(first)
        assert f"Source {source.source}" in pages[first].lstrip()[: 20 + len(source.source)]
    assert starts == sorted(set(starts))  # each source begins its own page, in order
    assert "Compliance report" in pages[0]
    assert not list(tmp_path.glob(".*.tmp"))
    assert list(temporary.iterdir()) == []  # the page and Chromium's profile deleted


def pdf_error(output: Path, timeout: float = 60.0) -> str:
    """The one line write_pdf fails with; nothing is written."""
    with pytest.raises(PdfError) as raised:
        write_pdf(render(empty_report()), output, timeout)
    assert not output.exists()
    return str(raised.value)


def test_without_chromium_the_pdf_error_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert pdf_error(tmp_path / "report.pdf") == MISSING
    assert "apt-get install chromium" in MISSING and "--format html" in MISSING
    assert "\n" not in MISSING


def stand_in_chromium(folder: Path, script: str) -> None:
    """A `chromium` on the PATH that behaves as the script says: a crashing or hanging
    browser is a fault the real one cannot be made to show on demand."""
    folder.mkdir()
    program = folder / "chromium"
    program.write_text(f"#!/bin/sh\n{script}\n", encoding="utf-8")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)


def test_a_failing_chromium_is_named_by_its_last_stderr_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in_chromium(
        tmp_path / "bin",
        "echo '[1:1:ERROR:bus.cc] Failed to connect to the bus' >&2\n"
        "echo 'Missing X server or $DISPLAY' >&2\nexit 1",
    )
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}/usr/bin:/bin")
    assert pdf_error(tmp_path / "report.pdf") == (
        "Chromium could not print the report to PDF: Missing X server or $DISPLAY"
    )


def test_a_hanging_chromium_is_stopped_at_the_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in_chromium(tmp_path / "bin", "exec sleep 300")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}/usr/bin:/bin")
    assert pdf_error(tmp_path / "report.pdf", timeout=0.5) == (
        "Chromium did not finish printing the PDF within 0.5 s"
    )


def test_an_unwritable_output_is_one_line(tmp_path: Path) -> None:
    output = tmp_path / "no-such-folder" / "report.pdf"
    assert pdf_error(output) == f"cannot write {output}: the folder {output.parent} does not exist"


def test_a_temporary_folder_that_cannot_be_used_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "gone"))
    assert pdf_error(tmp_path / "report.pdf") == (
        "cannot print the PDF in a temporary folder: No such file or directory"
    )
