"""The compliance report's charts as inline SVG, computed here: the report is one offline file,
so no chart library's script runs in it, and a library drawing SVG on the server side would
add a dependency for four simple charts (axes, points, rectangles).

Every mark carries a <title> (hovering names the backup or drill) and data- attributes that
tests and users' scripts read: data-value on each point, data-day and data-outcome on each
calendar day, data-state on each retention cell. A chart with nothing to show says so in
text instead of drawing an empty axis. Seven years of daily backups stay legible: more than
MAX_POINTS backups are gathered per day, week, month, ... and each group is drawn as its
largest value (the title says how many it stands for).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from html import escape

from lifeboat.ops.report_model import BackupRow, CalendarDay, CoverageCell, DrillRow, Tier
from lifeboat.policy.drill import seconds_text
from lifeboat.util.progress import human_bytes

MAX_POINTS = 400  # per time series; a year of daily backups is drawn one point each
WIDTH = 720
HEIGHT = 240
LEFT, RIGHT, TOP, BOTTOM = 70, 16, 14, 42  # the margins around the plot area
MAX_TIME_TICKS = 8
MAX_VALUE_TICKS = 6
CELL = 11  # a calendar day or retention cell, in px; its pitch adds a gap of 2
PITCH = CELL + 2
NO_DATA = "No data in this period."


# --------------------------------------------------------------------------- scales


@dataclass(frozen=True)
class LinearScale:
    """Maps [low, high] onto [start, stop] (stop < start for a y axis growing upwards)."""

    low: float
    high: float
    start: float
    stop: float

    def __call__(self, value: float) -> float:
        span = self.high - self.low
        fraction = (value - self.low) / span if span else 0.5
        return self.start + fraction * (self.stop - self.start)


def nice_step(high: float, most: int = MAX_VALUE_TICKS) -> float:
    """The round step (1, 2 or 5 times a power of ten) dividing [0, high] into at most
    `most` intervals; 1 for an empty range."""
    if high <= 0:
        return 1.0
    raw = high / most
    power = 10 ** math.floor(math.log10(raw))
    for multiple in (1, 2, 5, 10):
        if multiple * power >= raw:
            return float(multiple * power)
    return float(10 * power)  # pragma: no cover - the loop ends at 10, which is >= raw


def value_ticks(high: float) -> list[float]:
    """0, step, 2 step, ... up to the first multiple of step >= high: the axis starts at 0
    (sizes and durations compare honestly) and ends on a round value."""
    step = nice_step(high)
    count = max(1, math.ceil(high / step - 1e-9))
    return [step * index for index in range(count + 1)]


@dataclass(frozen=True)
class Unit:
    name: str  # shown in the axis label: "GiB", "min"
    size: float  # how many of the series' base unit (bytes, seconds) make one


BYTE_UNITS = [Unit(name, 1024.0**power) for power, name in enumerate(("B", "KiB", "MiB", "GiB"))]
BYTE_UNITS.append(Unit("TiB", 1024.0**4))
SECOND_UNITS = [Unit("s", 1), Unit("min", 60), Unit("h", 3600), Unit("d", 86400)]


def unit_for(high: float, units: Sequence[Unit]) -> Unit:
    """The largest unit in which `high` is still at least 2 (so ticks are not all fractions)."""
    chosen = units[0]
    for unit in units:
        if high >= 2 * unit.size:
            chosen = unit
    return chosen


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


# (label format, days per step, months per step), finest first
TIME_STEPS: tuple[tuple[str, int, int], ...] = (
    ("%Y-%m-%d", 1, 0),
    ("%Y-%m-%d", 2, 0),
    ("%Y-%m-%d", 7, 0),
    ("%Y-%m-%d", 14, 0),
    ("%Y-%m", 0, 1),
    ("%Y-%m", 0, 3),
    ("%Y-%m", 0, 6),
    ("%Y", 0, 12),
    ("%Y", 0, 24),
    ("%Y", 0, 60),
)


def time_ticks(start: datetime, end: datetime) -> list[tuple[datetime, str]]:
    """Midnights (UTC) or first days of months/years between start and end, at the finest
    step giving at most MAX_TIME_TICKS of them, each with its label."""
    for label_format, days, months in TIME_STEPS:
        ticks = list(_ticks_every(start, end, days, months))
        if len(ticks) <= MAX_TIME_TICKS:
            return [(tick, tick.strftime(label_format)) for tick in ticks]
    return []  # pragma: no cover - 60-month steps fit any period a report covers


def _ticks_every(start: datetime, end: datetime, days: int, months: int) -> Iterable[datetime]:
    day = start.astimezone(UTC).date()
    if months:  # month steps fall on the first of months that are multiples of the step
        day = date(day.year, day.month, 1)
        while (day.year * 12 + day.month - 1) % months:
            day = _add_months(day, 1)
    count = 0
    while count <= MAX_TIME_TICKS:  # enough to tell the step is too fine
        moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
        if moment > end:
            return
        if moment >= start:
            count += 1
            yield moment
        day = _add_months(day, months) if months else day + timedelta(days=days)


def time_scale(moments: Sequence[datetime], start: float, stop: float) -> LinearScale:
    """Over the moments' range, widened by a day each side when it is a single moment."""
    low = min(moments).timestamp()
    high = max(moments).timestamp()
    if high - low < 3600:
        low, high = low - 86400, high + 86400
    return LinearScale(low, high, start, stop)


# --------------------------------------------------------------------------- thinning


@dataclass(frozen=True)
class Point:
    at: datetime
    value: float  # in the series' base unit: bytes, seconds
    name: str  # the backup or drill it shows
    status: str | None = None  # pass / fail where the chart tells them apart
    count: int = 1  # backups it stands for after thinning
    group: str = ""  # the day, week, month... it stands for after thinning


def _day_group(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d}"


def _week_group(moment: datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


# (what a group is called, its label of a moment), finest first
GROUPINGS: tuple[tuple[str, Callable[[datetime], str]], ...] = (
    ("day", _day_group),
    ("week", _week_group),
    ("month", lambda moment: f"{moment:%Y-%m}"),
    ("quarter", lambda moment: f"{moment.year}-Q{(moment.month - 1) // 3 + 1}"),
    ("year", lambda moment: f"{moment.year}"),
)


def thin(points: Sequence[Point], limit: int = MAX_POINTS) -> list[Point]:
    """At most `limit` points (years excepted: one each whatever the limit)."""
    return thinned(points, limit)[0]


def thinned(points: Sequence[Point], limit: int = MAX_POINTS) -> tuple[list[Point], str]:
    """The points themselves when few enough, else one per day, week, month, quarter or
    year (the finest that fits), each group drawn as its largest value at that point's
    time: a size or a duration that grew shows, an average would hide it. Points are
    oldest first and stay so. Also what a group is ("" when not thinned)."""
    if len(points) <= limit:
        return list(points), ""
    for noun, grouping in GROUPINGS:
        groups: dict[str, list[Point]] = {}
        for point in points:
            groups.setdefault(grouping(point.at.astimezone(UTC)), []).append(point)
        if len(groups) <= limit or noun == "year":  # years: as coarse as it gets
            break
    drawn = [
        replace(max(members, key=lambda p: p.value), count=len(members), group=key)
        for key, members in groups.items()
    ]
    return drawn, noun


# --------------------------------------------------------------------------- SVG pieces


def _attr(value: object) -> str:
    return escape(str(value), quote=True)


def _num(value: float) -> str:
    """Coordinates to a tenth of a pixel: enough for the eye, short in the file."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _when(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def figure(chart: str, caption: str, points: int, body: str, css_class: str = "") -> str:
    """A chart in its <figure>: data-chart names it, data-points counts its marks."""
    classes = f"chart {css_class}".strip()
    return (
        f'<figure class="{classes}" data-chart="{chart}" data-points="{points}">'
        f"<figcaption>{escape(caption)}</figcaption>{body}</figure>"
    )


def no_data(chart: str, caption: str) -> str:
    return figure(chart, caption, 0, f'<p class="no-data">{NO_DATA}</p>', "empty")


def _svg(width: float, height: float, label: str, content: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_num(width)} {_num(height)}" '
        f'width="{_num(width)}" height="{_num(height)}" role="img" aria-label="{_attr(label)}">'
        f"{content}</svg>"
    )


def _axes(
    x: LinearScale, y: LinearScale, ticks: list[float], unit: Unit, x_label: str, y_label: str
) -> list[str]:
    parts = [
        f'<line class="axis" x1="{LEFT}" y1="{_num(y.start)}" x2="{LEFT}" y2="{TOP}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{_num(y.start)}" x2="{WIDTH - RIGHT}" '
        f'y2="{_num(y.start)}"/>',
    ]
    for tick in ticks:
        at = _num(y(tick))
        parts.append(
            f'<line class="grid" x1="{LEFT}" y1="{at}" x2="{WIDTH - RIGHT}" y2="{at}"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{at}" text-anchor="end" '
            f'dominant-baseline="middle">{_tick_text(tick / unit.size)}</text>'
        )
    low = datetime.fromtimestamp(x.low, UTC)
    high = datetime.fromtimestamp(x.high, UTC)
    for moment, label in time_ticks(low, high):
        at = _num(x(moment.timestamp()))
        parts.append(
            f'<line class="axis" x1="{at}" y1="{_num(y.start)}" x2="{at}" '
            f'y2="{_num(y.start + 4)}"/>'
            f'<text class="tick" x="{at}" y="{_num(y.start + 16)}" '
            f'text-anchor="middle">{label}</text>'
        )
    parts.append(
        f'<text class="label" x="{_num((LEFT + WIDTH - RIGHT) / 2)}" y="{HEIGHT - 4}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
        f'<text class="label" transform="translate(14 {_num((TOP + y.start) / 2)}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)} ({unit.name})</text>'
    )
    return parts


def _tick_text(value: float) -> str:
    return f"{value:g}" if value >= 0.01 or value == 0 else f"{value:.2g}"


def _point_title(point: Point, value_text: str, noun: str) -> str:
    if point.count == 1:
        return f"{point.name}, {_when(point.at)}: {value_text}"
    return f"{point.group}: {point.count} {noun}s, the largest {point.name}: {value_text}"


def series_chart(
    chart: str,
    caption: str,
    points: Sequence[Point],
    units: Sequence[Unit],
    y_label: str,
    describe: Callable[[float], str],
    noun: str = "backup",
    objective: float | None = None,
) -> str:
    """Points over time, joined by a line when they are a series (no status), with an
    optional dashed objective line; the y axis starts at 0 and fits the objective too."""
    if not points:
        return no_data(chart, caption)
    drawn, group = thinned(points)
    high = max([p.value for p in drawn] + ([objective] if objective is not None else []))
    unit = unit_for(high, units)
    ticks = [tick * unit.size for tick in value_ticks(high / unit.size)]
    x = time_scale([p.at for p in drawn], LEFT + 8, WIDTH - RIGHT - 8)
    y = LinearScale(0, ticks[-1], HEIGHT - BOTTOM, TOP)
    parts = _axes(x, y, ticks, unit, "date (UTC)", y_label)
    if objective is not None:
        at = _num(y(objective))
        objective_text = escape(f"objective {describe(objective)}")
        parts.append(
            f'<line class="objective" x1="{LEFT}" y1="{at}" x2="{WIDTH - RIGHT}" y2="{at}" '
            f'data-value="{_num(objective)}"><title>{objective_text}</title></line>'
            f'<text class="objective-label" x="{WIDTH - RIGHT - 4}" y="{_num(y(objective) - 4)}" '
            f'text-anchor="end">{objective_text}</text>'
        )
    if all(p.status is None for p in drawn) and len(drawn) > 1:
        line = " ".join(f"{_num(x(p.at.timestamp()))},{_num(y(p.value))}" for p in drawn)
        parts.append(f'<polyline class="series" points="{line}"/>')
    for p in drawn:
        status = f" {p.status}" if p.status else ""
        status_attr = f' data-status="{p.status}"' if p.status else ""
        title = _point_title(p, describe(p.value), noun)
        parts.append(
            f'<circle class="point{status}" cx="{_num(x(p.at.timestamp()))}" '
            f'cy="{_num(y(p.value))}" r="{3 if len(drawn) > 60 else 4}" '
            f'data-value="{_num(p.value)}" data-at="{p.at.isoformat()}" '
            f'data-count="{p.count}"{status_attr}>'
            f"<title>{escape(title)}</title></circle>"
        )
    if group:
        caption += f" ({len(points)} {noun}s, the largest of each {group} shown)"
    return figure(chart, caption, len(drawn), _svg(WIDTH, HEIGHT, caption, "".join(parts)))


# --------------------------------------------------------------------------- the charts


def size_chart(backups: Sequence[BackupRow]) -> str:
    points = [Point(b.finished_at, float(b.stored_bytes), b.id) for b in backups]
    return series_chart(
        "size",
        "Backup size over time (stored: compressed and encrypted)",
        points,
        BYTE_UNITS,
        "stored size",
        human_bytes,
    )


def duration_chart(backups: Sequence[BackupRow]) -> str:
    points = [Point(b.finished_at, b.duration_seconds, b.id) for b in backups]
    return series_chart(
        "duration", "Backup duration over time", points, SECOND_UNITS, "duration", seconds_text
    )


def drill_chart(metric: str, drills: Sequence[DrillRow], source_objective: float | None) -> str:
    """RTO or RPO of each drill against its objective: a point is pass when the value met
    the objective in force when the drill ran (the source's when the drill recorded none),
    fail when not; without any objective, the drill's own verdict."""
    points = []
    for drill in drills:
        value = drill.rto_seconds if metric == "rto" else drill.rpo_seconds
        if value is None:
            continue
        objective = drill.rto_objective_seconds if metric == "rto" else drill.rpo_objective_seconds
        objective = objective if objective is not None else source_objective
        met = value <= objective if objective is not None else drill.passed
        points.append(Point(drill.started_at, value, drill.drill_id, "pass" if met else "fail"))
    name = metric.upper()
    caption = f"{name} of each drill against the objective"
    if source_objective is None:
        caption += " (no objective configured)"
    return series_chart(
        metric, caption, points, SECOND_UNITS, name, seconds_text, "drill", source_objective
    )


OUTCOMES = ("ok", "failed", "missing", "not-expected")
WEEKDAYS = ("Mon", "", "Wed", "", "Fri", "", "Sun")


def _legend(x: float, y: float, entries: Sequence[tuple[str, str]]) -> str:
    parts = []
    for css_class, text in entries:
        parts.append(
            f'<rect class="{css_class}" x="{_num(x)}" y="{_num(y)}"/>'
            f'<text class="tick" x="{_num(x + PITCH + 2)}" y="{_num(y + CELL - 1)}">'
            f"{escape(text)}</text>"
        )
        x += PITCH + 12 + 6.5 * len(text)
    return '<g class="legend">' + "".join(parts) + "</g>"


def calendar_chart(days: Sequence[CalendarDay]) -> str:
    """GitHub-style: for each year, one column per week (Monday first) and one row per
    weekday, one cell per day coloured by its outcome; the years stacked."""
    caption = "Calendar of backup outcomes"
    if not days:
        return no_data("calendar", caption)
    years: dict[int, list[CalendarDay]] = {}
    for day in days:
        years.setdefault(day.day.year, []).append(day)
    left, block_height = 48, 7 * PITCH + 22
    parts: list[str] = []
    width = float(left)
    for index, (year, members) in enumerate(years.items()):
        top = 16 + index * block_height
        first_monday = members[0].day - timedelta(days=members[0].day.weekday())
        parts.append(f'<text class="label" x="0" y="{_num(top + 3 * PITCH + CELL)}">{year}</text>')
        for row, name in enumerate(WEEKDAYS):
            if name:
                parts.append(
                    f'<text class="tick" x="{left - 4}" y="{_num(top + row * PITCH + CELL - 1)}" '
                    f'text-anchor="end">{name}</text>'
                )
        for day in members:
            column = (day.day - first_monday).days // 7
            x = left + column * PITCH
            width = max(width, x + PITCH)
            # a month's name where it begins; the first column's month only when the next
            # month's name is two weeks away or more (else the two would overlap)
            if day.day.day == 1 or (day is members[0] and day.day.day <= 14):
                parts.append(f'<text class="tick" x="{x}" y="{top - 3}">{day.day:%b}</text>')
            shown = ", ".join(day.backups[:3]) + (" ..." if len(day.backups) > 3 else "")
            title = f"{day.day.isoformat()}: {day.outcome}" + (f" ({shown})" if shown else "")
            parts.append(
                f'<rect class="day {day.outcome}" x="{x}" y="{top + day.day.weekday() * PITCH}" '
                f'data-day="{day.day.isoformat()}" data-outcome="{day.outcome}">'
                f"<title>{escape(title)}</title></rect>"
            )
    height = 16 + len(years) * block_height + 8
    parts.append(_legend(left, height - 14, [(f"swatch {o}", o) for o in OUTCOMES]))
    width = max(width, left + 360)
    svg = _svg(width + 8, height + 4, caption, "".join(parts))
    return figure("calendar", caption, len(days), svg, "calendar")


TIERS: tuple[Tier, ...] = ("daily", "weekly", "monthly", "yearly")
PER_LINE = {"daily": 31, "weekly": 53, "monthly": 12, "yearly": 10}
CELL_STATES = (
    ("covered", "kept backup"),
    ("held", "kept by a hold"),
    ("missing", "promised, missing"),
    ("not-promised", "not promised"),
)


def cell_state(cell: CoverageCell) -> str:
    if cell.covered:
        return "held" if cell.held else "covered"
    return "missing" if cell.promised else "not-promised"


def coverage_chart(cells: Sequence[CoverageCell]) -> str:
    """The retention (GFS) grid: one band per tier, its cells oldest first in lines of a
    month of days, a year of weeks or months, ten years."""
    caption = "Retention coverage (daily, weekly, monthly, yearly)"
    if not cells:
        return no_data("coverage", caption)
    left = 150
    parts: list[str] = []
    top = 4.0
    for tier in TIERS:
        members = sorted((c for c in cells if c.tier == tier), key=lambda c: c.start)
        if not members:
            continue
        per_line = PER_LINE[tier]
        for line_start in range(0, len(members), per_line):
            line = members[line_start : line_start + per_line]
            label = tier if line_start == 0 else ""
            parts.append(
                f'<text class="label" x="0" y="{_num(top + CELL - 1)}">{label}</text>'
                f'<text class="tick" x="{left - 6}" y="{_num(top + CELL - 1)}" '
                f'text-anchor="end">{escape(line[0].label)}</text>'
            )
            for column, cell in enumerate(line):
                state = cell_state(cell)
                title = f"{tier} {cell.label}: " + (
                    f"{cell.backup}" + (" (held)" if cell.held else "")
                    if cell.backup
                    else ("promised, no kept backup" if cell.promised else "not promised")
                )
                parts.append(
                    f'<rect class="cell {state}" x="{left + column * PITCH}" y="{_num(top)}" '
                    f'data-tier="{tier}" data-label="{_attr(cell.label)}" data-state="{state}">'
                    f"<title>{escape(title)}</title></rect>"
                )
            top += PITCH
        top += 8
    parts.append(_legend(left, top + 2, [(f"swatch {s}", text) for s, text in CELL_STATES]))
    width = left + max(PER_LINE.values()) * PITCH + 8
    svg = _svg(width, top + PITCH + 8, caption, "".join(parts))
    return figure("coverage", caption, len(cells), svg, "coverage")
