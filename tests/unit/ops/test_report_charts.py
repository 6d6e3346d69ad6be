"""The geometry of the report's charts: scales and ticks, thinning of long series, and what a
chart with one point or none draws."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest

from lifeboat.ops.report_charts import (
    BYTE_UNITS,
    HEIGHT,
    LEFT,
    MAX_POINTS,
    NO_DATA,
    SECOND_UNITS,
    TOP,
    WIDTH,
    LinearScale,
    Point,
    calendar_chart,
    coverage_chart,
    drill_chart,
    duration_chart,
    size_chart,
    thin,
    time_ticks,
    unit_for,
    value_ticks,
)
from lifeboat.ops.report_model import CalendarDay, DrillRow
from tests.reports import HOUR, main_source, seven_year_report

START = datetime(2025, 4, 1, tzinfo=UTC)


def marks(svg: str, css_class: str) -> list[dict[str, str]]:
    """The attributes of each element whose first class is css_class."""
    found = []
    for tag in re.findall(rf'<\w+ class="{css_class}(?:"| [^"]*")[^>]*>', svg):
        found.append(dict(re.findall(r'([\w-]+)="([^"]*)"', tag)))
    return found


def test_value_ticks_start_at_zero_and_end_on_a_round_value_above_the_highest() -> None:
    assert value_ticks(3.7) == [0, 1, 2, 3, 4]
    assert value_ticks(100) == [0, 20, 40, 60, 80, 100]
    assert value_ticks(101) == [0, 20, 40, 60, 80, 100, 120]
    assert value_ticks(0.37) == pytest.approx([0, 0.1, 0.2, 0.3, 0.4])
    assert value_ticks(0) == [0, 1]  # nothing measured: still an axis to draw on


def test_a_linear_scale_maps_its_ends_and_the_middle_of_an_empty_range() -> None:
    y = LinearScale(0, 40, 200, 10)
    assert (y(0), y(40)) == (200, 10)
    assert y(10) == pytest.approx(152.5)
    assert LinearScale(5, 5, 0, 100)(5) == 50


def test_the_unit_is_the_largest_in_which_the_highest_value_is_at_least_two() -> None:
    gib = 1024.0**3
    assert unit_for(3 * gib, BYTE_UNITS).name == "GiB"
    assert unit_for(1.5 * gib, BYTE_UNITS).name == "MiB"
    assert unit_for(500, BYTE_UNITS).name == "B"
    assert unit_for(90, SECOND_UNITS).name == "s"
    assert unit_for(150, SECOND_UNITS).name == "min"
    assert unit_for(3 * HOUR, SECOND_UNITS).name == "h"


@pytest.mark.parametrize(
    ("days", "labels"),
    [
        (3, ["2025-04-01", "2025-04-02", "2025-04-03", "2025-04-04"]),
        (365, ["2025-04", "2025-07", "2025-10", "2026-01", "2026-04"]),
        (7 * 365 + 2, ["2026", "2027", "2028", "2029", "2030", "2031", "2032"]),
    ],
)
def test_time_ticks_fall_on_days_months_or_years_as_the_period_asks(
    days: int, labels: list[str]
) -> None:
    ticks = time_ticks(START, START + timedelta(days=days))
    assert [label for _moment, label in ticks] == labels
    assert all(START <= moment <= START + timedelta(days=days) for moment, _ in ticks)


def daily_points(count: int) -> list[Point]:
    return [Point(START + timedelta(days=n), float(n % 10), f"b{n}") for n in range(count)]


def test_few_points_are_drawn_each() -> None:
    points = daily_points(MAX_POINTS)
    assert thin(points) == points


def test_seven_years_of_daily_backups_are_drawn_one_point_a_week_at_its_largest() -> None:
    points = daily_points(2600)
    drawn = thin(points)
    weeks = {p.at.isocalendar()[:2] for p in points}
    assert len(drawn) == len(weeks) <= MAX_POINTS
    assert sum(p.count for p in drawn) == 2600
    assert [p.at for p in drawn] == sorted(p.at for p in drawn)
    for point in drawn:
        members = [p for p in points if p.at.isocalendar()[:2] == point.at.isocalendar()[:2]]
        assert point.value == max(p.value for p in members)
        assert point.group == f"{point.at.isocalendar()[0]}-W{point.at.isocalendar()[1]:02d}"


def test_thinning_coarsens_to_years_when_nothing_finer_fits() -> None:
    drawn = thin(daily_points(2600), limit=5)
    assert [p.group for p in drawn] == [
        "2025",
        "2026",
        "2027",
        "2028",
        "2029",
        "2030",
        "2031",
        "2032",
    ]


@pytest.mark.parametrize("chart", [size_chart, duration_chart])
def test_a_chart_without_data_says_so_instead_of_drawing_an_axis(chart: object) -> None:
    assert callable(chart)
    drawn = chart([])
    assert NO_DATA in drawn
    assert 'data-points="0"' in drawn
    assert "<svg" not in drawn


def test_a_single_backup_is_one_point_inside_the_plot_area() -> None:
    backup = main_source().backups[0]
    svg = size_chart([backup])
    [point] = marks(svg, "point")
    assert point["data-value"] == str(backup.stored_bytes)
    assert LEFT < float(point["cx"]) < WIDTH
    assert TOP <= float(point["cy"]) < HEIGHT
    assert "<polyline" not in svg  # nothing to join
    assert 'data-points="1"' in svg


def test_the_size_axis_is_labelled_with_its_unit_and_the_dates() -> None:
    svg = size_chart(main_source().backups)
    assert "stored size (GiB)" in svg
    assert "date (UTC)" in svg
    assert ">2025-10<" in svg


def test_a_seven_year_size_chart_is_thinned_and_says_so() -> None:
    backups = seven_year_report().sources[0].backups
    svg = size_chart(backups)
    points = marks(svg, "point")
    assert len(points) == len({b.finished_at.isocalendar()[:2] for b in backups}) <= MAX_POINTS
    assert f'data-points="{len(points)}"' in svg
    assert f"({len(backups)} backups, the largest of each week shown)" in svg
    assert sum(int(p["data-count"]) for p in points) == len(backups)


def drill(at: datetime, rto: float | None, passed: bool, objective: float | None) -> DrillRow:
    return DrillRow(
        f"d-{at:%Y%m%d}", "logical", "b", at, "ops@h", passed, rto, 60.0, objective, None, []
    )


def test_drill_points_are_pass_or_fail_against_the_objective_in_force_then() -> None:
    drills = [
        drill(START, 1800.0, True, HOUR),  # met
        drill(START + timedelta(days=90), 5400.0, False, HOUR),  # over
        drill(START + timedelta(days=180), 5400.0, True, 2 * HOUR),  # met a later objective
        drill(START + timedelta(days=270), None, False, HOUR),  # nothing measured: no point
        drill(START + timedelta(days=300), 1000.0, False, None),  # the source's objective
    ]
    svg = drill_chart("rto", drills, HOUR)
    points = marks(svg, "point")
    assert [(p["data-value"], p["data-status"]) for p in points] == [
        ("1800", "pass"),
        ("5400", "fail"),
        ("5400", "pass"),
        ("1000", "pass"),
    ]
    [line] = marks(svg, "objective")
    assert line["data-value"] == "3600"
    assert "<polyline" not in svg  # drills are separate events, not a series


def test_without_an_objective_a_drill_point_shows_the_drills_verdict() -> None:
    svg = drill_chart("rto", [drill(START, 10.0, False, None)], None)
    assert [p["data-status"] for p in marks(svg, "point")] == ["fail"]
    assert marks(svg, "objective") == []
    assert "(no objective configured)" in svg


def test_the_calendar_has_one_cell_per_day_in_its_weekday_row_and_a_legend() -> None:
    days = [CalendarDay(date(2025, 12, 29) + timedelta(days=n), "ok", [f"b{n}"]) for n in range(10)]
    svg = calendar_chart(days)
    cells = marks(svg, "day")
    assert [c["data-day"] for c in cells] == [d.day.isoformat() for d in days]
    rows = {c["data-day"]: float(c["y"]) for c in cells}
    # 2025-12-29 and 2026-01-05 are Mondays: the first row of their year's block
    assert rows["2026-01-05"] - rows["2026-01-01"] == -3 * 13
    assert rows["2025-12-29"] < rows["2026-01-05"]  # the years stacked
    assert len(marks(svg, "swatch")) == 4


def test_the_coverage_grid_has_every_cell_with_its_state() -> None:
    source = main_source()
    svg = coverage_chart(source.coverage)
    cells = marks(svg, "cell")
    assert len(cells) == len(source.coverage)
    states = {c["data-state"] for c in cells}
    assert states == {"covered", "held", "missing", "not-promised"}
    assert {c["data-tier"] for c in cells} == {"daily", "weekly", "monthly", "yearly"}
    assert NO_DATA in coverage_chart([])
