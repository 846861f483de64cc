"""A small SVG line chart: the loss curves of the training dashboard.

Drawn as SVG text in an `ipywidgets.HTML`, not as a raster, for three reasons: the
browser shapes the Hindi axis labels itself (no font or shaping engine needed in the
kernel), a live update is a few kilobytes of text, and the saved widget state is the
same on every run. The geometry is plain data (`Chart`), so tests check the numbers
the chart draws without a browser.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

#: matplotlib's tab10, so the dashboard and the matplotlib plots colour alike
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
#: a curve longer than this is thinned (every k-th point, the last one kept)
MAX_POINTS = 400
#: the y axis switches to a log scale when the values span more than this ratio
LOG_RATIO = 100.0
#: a loss above this (or NaN, or infinite) has diverged: it is marked, not plotted, so
#: the axis stays readable for the steps before it
DIVERGED = 1e6
#: at most this many tick labels on the log axis (decades are skipped to keep to it)
MAX_LOG_TICKS = 6


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def nice_step(span: float, count: int = 5) -> float:
    """A step of 1, 2 or 5 times a power of ten giving about `count` intervals."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / count
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power * (1 + 1e-9):
            return factor * power
    return 10 * power


def _decimals(step: float) -> int:
    return max(0, -math.floor(math.log10(step) + 1e-9)) if step < 1 else 0


@dataclass(frozen=True)
class Axis:
    """A range, its tick values and their labels; `log` maps values through log10."""

    low: float
    high: float
    ticks: tuple[float, ...]
    labels: tuple[str, ...]
    log: bool = False

    def fraction(self, value: float) -> float:
        """Where `value` lies between low (0) and high (1)."""
        if self.log:
            value, low, high = math.log10(value), math.log10(self.low), math.log10(self.high)
        else:
            low, high = self.low, self.high
        return 0.0 if high == low else (value - low) / (high - low)


def linear_axis(low: float, high: float, count: int = 5, integer: bool = False) -> Axis:
    """From a round value at or below `low` to one at or above `high`."""
    if high <= low:
        high = low + 1
    step = nice_step(high - low, count)
    if integer:
        step = max(1.0, round(step))
    start = math.floor(low / step + 1e-9) * step
    stop = math.ceil(high / step - 1e-9) * step
    n = round((stop - start) / step)
    ticks = tuple(round(start + i * step, 12) for i in range(n + 1))
    decimals = 0 if integer else _decimals(step)
    return Axis(start, stop, ticks, tuple(f"{t:.{decimals}f}" for t in ticks))


def count_axis(high: float, count: int = 6) -> Axis:
    """0 to exactly `high` (a number of steps), with round ticks that fit inside."""
    high = max(1.0, float(high))
    step = max(1.0, round(nice_step(high, count)))
    ticks = tuple(float(t) for t in range(0, int(high) + 1, int(step)))
    return Axis(0.0, high, ticks, tuple(f"{t:.0f}" for t in ticks))


def log_axis(low: float, high: float) -> Axis:
    """Whole decades around [low, high], a tick every `stride` decades so that there are
    at most MAX_LOG_TICKS of them."""
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    stride = max(1, math.ceil((last - first) / (MAX_LOG_TICKS - 1)))
    last = first + max(1, math.ceil((last - first) / stride)) * stride
    ticks = tuple(10.0**p for p in range(first, last + 1, stride))
    return Axis(ticks[0], ticks[-1], ticks, tuple(f"{t:g}" for t in ticks), log=True)


def diverged(value: float) -> bool:
    """NaN, infinite, or too large to be a loss that is still being trained."""
    return not math.isfinite(value) or abs(value) > DIVERGED


def value_axis(values: Sequence[float]) -> Axis:
    """The y axis of a loss: from 0, or a log scale when the loss spans decades.
    Diverged values do not stretch it (they are marked instead)."""
    finite = [v for v in values if not diverged(v)]
    if not finite:
        return linear_axis(0.0, 1.0)
    low, high = min(finite), max(finite)
    if low > 0 and high / low > LOG_RATIO:
        return log_axis(low, high)
    return linear_axis(min(0.0, low), high if high > 0 else 1.0)


def thin(points: Sequence[tuple[float, float]], limit: int = MAX_POINTS) -> list:
    """At most `limit` points, evenly picked, always keeping the last one."""
    if len(points) <= limit:
        return list(points)
    stride = math.ceil(len(points) / limit)
    kept = list(points[::stride])
    if kept[-1] != points[-1]:
        kept.append(points[-1])
    return kept


def _thin_keeping_divergence(points: Sequence[tuple[float, float]]) -> list:
    """`thin`, but the first diverged point always survives, so it is always marked."""
    first = next((p for p in points if diverged(p[1])), None)
    kept = thin(points)
    if first is not None and first not in kept:
        kept = sorted([*kept, first], key=lambda point: point[0])
    return kept


@dataclass(frozen=True)
class Frame:
    """The drawing area in pixels: the plot sits inside the margins."""

    width: int = 620
    height: int = 240
    left: int = 58
    right: int = 14
    top: int = 12
    bottom: int = 42


@dataclass(frozen=True)
class Chart:
    """Everything the SVG shows: curves in data units, the axes, the frame."""

    curves: Mapping[str, tuple[tuple[float, float], ...]]
    x: Axis
    y: Axis
    frame: Frame = Frame()

    def pixel(self, x: float, y: float) -> tuple[float, float]:
        f = self.frame
        px = f.left + self.x.fraction(x) * (f.width - f.left - f.right)
        py = f.height - f.bottom - self.y.fraction(y) * (f.height - f.top - f.bottom)
        return round(px, 1), round(py, 1)

    def polyline(self, name: str) -> list[tuple[float, float]]:
        """The pixels of one curve; a diverged value (NaN, huge) is marked, not drawn."""
        return [
            self.pixel(x, y)
            for x, y in self.curves[name]
            if not diverged(y) and (not self.y.log or y > 0)
        ]

    def divergence(self, name: str) -> float | None:
        """The first step at which the curve diverged, or None."""
        return next((x for x, y in self.curves[name] if diverged(y)), None)


def line_chart(
    curves: Mapping[str, Sequence[tuple[float, float]]],
    steps: float | None = None,
    frame: Frame = Frame(),
) -> Chart:
    """Axes that fit every curve. x counts steps; with `steps` (how many are expected) the
    x axis is fixed from the start, so a live curve grows into a frame that stays put."""
    thinned = {name: tuple(_thin_keeping_divergence(points)) for name, points in curves.items()}
    xs = [x for points in thinned.values() for x, _ in points]
    ys = [y for points in thinned.values() for _, y in points]
    x_axis = count_axis(max([*xs, steps or 0.0], default=1.0))
    return Chart(thinned, x_axis, value_axis(ys), frame)


def svg(
    chart: Chart, x_label: str, y_label: str, title: str, diverged_label: str = "diverged"
) -> str:
    """The chart as an inline SVG element; text is left for the browser to shape.

    Where a curve first diverged, a cross on the top edge at that step and
    `diverged_label` beside it, in the curve's colour, one row per worker."""
    f = chart.frame
    bottom, right = f.height - f.bottom, f.width - f.right
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="fl-chart" role="img" '
        f'aria-label="{escape(title)}" width="{f.width}" height="{f.height}" '
        f'viewBox="0 0 {f.width} {f.height}" style="font-size:12px;font-family:inherit">',
        f'<rect x="{f.left}" y="{f.top}" width="{right - f.left}" height="{bottom - f.top}" '
        'fill="none" stroke="#bbb"/>',
    ]
    for value, label in zip(chart.y.ticks, chart.y.labels):
        _, py = chart.pixel(chart.x.low, value)
        parts.append(f'<line x1="{f.left}" y1="{py}" x2="{right}" y2="{py}" stroke="#eee"/>')
        parts.append(
            f'<text x="{f.left - 5}" y="{py + 4}" text-anchor="end" fill="#444">{label}</text>'
        )
    for value, label in zip(chart.x.ticks, chart.x.labels):
        px, _ = chart.pixel(value, chart.y.low)
        parts.append(f'<line x1="{px}" y1="{bottom}" x2="{px}" y2="{bottom + 4}" stroke="#888"/>')
        parts.append(
            f'<text x="{px}" y="{bottom + 16}" text-anchor="middle" fill="#444">{label}</text>'
        )
    middle_x, middle_y = (f.left + right) / 2, (f.top + bottom) / 2
    parts.append(
        f'<text class="fl-axis" x="{middle_x}" y="{f.height - 6}" text-anchor="middle" '
        f'fill="#222">{escape(x_label)}</text>'
    )
    parts.append(
        f'<text class="fl-axis" x="14" y="{middle_y}" text-anchor="middle" fill="#222" '
        f'transform="rotate(-90 14 {middle_y})">{escape(y_label)}</text>'
    )
    for index, name in enumerate(chart.curves):
        points = " ".join(f"{x},{y}" for x, y in chart.polyline(name))
        if points:
            parts.append(
                f'<polyline data-worker="{escape(name)}" points="{points}" fill="none" '
                f'stroke="{color(index)}" stroke-width="1.6" stroke-linejoin="round"/>'
            )
    for index, name in enumerate(chart.curves):
        step = chart.divergence(name)
        if step is None:
            continue
        px, _ = chart.pixel(step, chart.y.low)
        top = f.top + 8 + 14 * index  # one row per worker, so marks never overprint
        anchor = "end" if px > (f.left + right) / 2 else "start"
        shift = -8 if anchor == "end" else 8
        parts.append(
            f'<g class="fl-diverged" data-worker="{escape(name)}" stroke="{color(index)}" '
            f'fill="{color(index)}"><path d="M{px - 4},{top - 4}L{px + 4},{top + 4}'
            f'M{px - 4},{top + 4}L{px + 4},{top - 4}" stroke-width="2"/>'
            f'<text x="{px + shift}" y="{top + 4}" text-anchor="{anchor}" stroke="none">'
            f"{escape(name)}: {escape(diverged_label)}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)
