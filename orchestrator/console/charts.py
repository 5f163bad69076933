"""Charts as server-rendered SVG: the geometry here (pure), the drawing in
``templates/_charts.html`` (one Jinja macro). They need no JavaScript, carry no inline style
(colours come from the stylesheet's ``series-N`` classes), and every point has its exact value
as a tooltip and in a data table beside the picture.

The analytics pages use the same two functions: :func:`line_chart` (values over time or any
ordered x) and :func:`bar_chart` (one value per category).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

X = float | int | datetime
WIDTH, HEIGHT = 640, 220
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 44, 12, 12, 28


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[X, float]]


@dataclass(frozen=True)
class Tick:
    at: float  # pixels along the axis
    label: str
    anchor: str = "middle"  # SVG text-anchor: the ends of a line chart's axis stay inside


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    title: str  # "label: value" shown on hover


@dataclass(frozen=True)
class Line:
    css: str  # series-1 … series-6
    label: str
    path: str  # SVG path data
    points: tuple[Point, ...]


@dataclass(frozen=True)
class Bar:
    css: str
    x: float
    y: float
    width: float
    height: float
    title: str


@dataclass(frozen=True)
class Chart:
    title: str
    width: int
    height: int
    left: float
    right: float
    top: float
    bottom: float
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    lines: tuple[Line, ...] = ()
    bars: tuple[Bar, ...] = ()
    table: tuple[tuple[str, ...], ...] = ()  # header row, then one row per x: the exact data

    @property
    def empty(self) -> bool:
        return not self.lines and not self.bars


def line_chart(
    title: str,
    series: Sequence[Series],
    *,
    x_label: Callable[[X], str] = str,
    y_label: Callable[[float], str] = lambda v: f"{v:g}",
    y_range: tuple[float, float] | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Chart:
    """One line per series over a shared x axis (numbers or moments, in order)."""
    frame = _Frame(width, height)
    xs = [_number(x) for s in series for x, _ in s.points]
    ys = [y for s in series for _, y in s.points]
    if not xs:
        return frame.chart(title, (), ())
    x_low, x_high = min(xs), max(xs)
    y_low, y_high = y_range or _nice_range(min(ys), max(ys))
    y_ticks = _y_ticks(frame, y_low, y_high, y_label)
    raw_x = {_number(x): x for s in series for x, _ in s.points}
    picked = _spread(sorted(raw_x.values(), key=_number), 5)
    x_ticks = tuple(
        Tick(frame.x(_number(x), x_low, x_high), x_label(x), _anchor(i, len(picked)))
        for i, x in enumerate(picked)
    )
    lines = []
    for index, each in enumerate(series):
        points = tuple(
            Point(
                frame.x(_number(x), x_low, x_high),
                frame.y(y, y_low, y_high),
                f"{each.label} · {x_label(x)}: {y_label(y)}",
            )
            for x, y in sorted(each.points, key=lambda p: _number(p[0]))
        )
        path = " ".join(
            f"{'M' if i == 0 else 'L'}{p.x:.1f},{p.y:.1f}" for i, p in enumerate(points)
        )
        lines.append(Line(_css(index), each.label, path, points))
    table = _table(series, x_label, y_label)
    return frame.chart(title, x_ticks, y_ticks, lines=tuple(lines), table=table)


def bar_chart(
    title: str,
    values: Sequence[tuple[str, float]],
    *,
    y_label: Callable[[float], str] = lambda v: f"{v:g}",
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Chart:
    """One bar per category, in the order given."""
    frame = _Frame(width, height)
    if not values:
        return frame.chart(title, (), ())
    y_low, y_high = _nice_range(min(0.0, *(v for _, v in values)), max(v for _, v in values))
    slot = (frame.right - frame.left) / len(values)
    bars, x_ticks = [], []
    for index, (label, value) in enumerate(values):
        top, zero = frame.y(max(value, 0), y_low, y_high), frame.y(min(value, 0), y_low, y_high)
        x = frame.left + slot * index + slot * 0.15
        bars.append(
            Bar(_css(0), x, top, slot * 0.7, max(zero - top, 0.5), f"{label}: {y_label(value)}")
        )
        x_ticks.append(Tick(frame.left + slot * (index + 0.5), label))
    table = (("", title), *((label, y_label(value)) for label, value in values))
    return frame.chart(
        title,
        tuple(x_ticks),
        _y_ticks(frame, y_low, y_high, y_label),
        bars=tuple(bars),
        table=table,
    )


@dataclass(frozen=True)
class _Frame:
    width: int
    height: int

    @property
    def left(self) -> float:
        return MARGIN_LEFT

    @property
    def right(self) -> float:
        return self.width - MARGIN_RIGHT

    @property
    def top(self) -> float:
        return MARGIN_TOP

    @property
    def bottom(self) -> float:
        return self.height - MARGIN_BOTTOM

    def x(self, value: float, low: float, high: float) -> float:
        if high == low:
            return (self.left + self.right) / 2
        return self.left + (value - low) / (high - low) * (self.right - self.left)

    def y(self, value: float, low: float, high: float) -> float:
        if high == low:
            return (self.top + self.bottom) / 2
        return self.bottom - (value - low) / (high - low) * (self.bottom - self.top)

    def chart(
        self,
        title: str,
        x_ticks: tuple[Tick, ...],
        y_ticks: tuple[Tick, ...],
        *,
        lines: tuple[Line, ...] = (),
        bars: tuple[Bar, ...] = (),
        table: tuple[tuple[str, ...], ...] = (),
    ) -> Chart:
        return Chart(
            title,
            self.width,
            self.height,
            self.left,
            self.right,
            self.top,
            self.bottom,
            x_ticks,
            y_ticks,
            lines,
            bars,
            table,
        )


def _anchor(index: int, count: int) -> str:
    if count < 2:
        return "middle"
    return "start" if index == 0 else "end" if index == count - 1 else "middle"


def _number(x: X) -> float:
    return x.timestamp() if isinstance(x, datetime) else float(x)


def _css(index: int) -> str:
    return f"series-{index % 6 + 1}"


def _nice_range(low: float, high: float) -> tuple[float, float]:
    """Round the data's range out to a "nice" step (1, 2 or 5 × 10ⁿ), from 0 if all positive."""
    low = min(low, 0.0)
    if high <= low:
        return low, low + 1
    step = _nice_step((high - low) / 4)
    return math.floor(low / step) * step, math.ceil(high / step) * step


def _nice_step(raw: float) -> float:
    magnitude: float = 10.0 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1.0, 2.0, 5.0, 10.0) if m * magnitude >= raw)


def _y_ticks(
    frame: _Frame, low: float, high: float, label: Callable[[float], str]
) -> tuple[Tick, ...]:
    step = _nice_step((high - low) / 5) if high > low else 1
    count = int((high - low) / step + 1e-9)  # never a tick above the plot
    return tuple(
        Tick(frame.y(low + i * step, low, high), label(low + i * step)) for i in range(count + 1)
    )


def _spread(values: Sequence[X], most: int) -> list[X]:
    """At most ``most`` values, evenly picked, the first and the last always among them."""
    if len(values) <= most:
        return list(values)
    picks = {round(i * (len(values) - 1) / (most - 1)) for i in range(most)}
    return [values[i] for i in sorted(picks)]


def _table(
    series: Sequence[Series], x_label: Callable[[X], str], y_label: Callable[[float], str]
) -> tuple[tuple[str, ...], ...]:
    xs = sorted({_number(x): x for s in series for x, _ in s.points}.items())
    values = [{_number(x): y for x, y in s.points} for s in series]
    rows = [(x_label(x), *(y_label(v[key]) if key in v else "" for v in values)) for key, x in xs]
    return (("", *(s.label for s in series)), *rows)
