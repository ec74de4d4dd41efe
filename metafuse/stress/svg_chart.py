"""Charts as inline SVG text: line charts over a run's time and stacked bars, standard library only.

Every chart is one `<svg class="chart">` element that scales to its container (a `viewBox`, no
fixed pixel size). Colours are CSS classes (`c0` to `c7`, `axis`, `grid`), so the page that holds
the chart decides them, for dark and for light mode alike. Every piece of text is escaped. A
chart stays small however long the run: `downsample` caps a series at a fixed number of points.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from html import escape

WIDTH = 640
"""Width of a chart's coordinate system (it is drawn at the container's width)."""
HEIGHT = 240
"""Height of a line chart's coordinate system."""
MAX_POINTS = 150
"""Points per series at most; longer series are aggregated into intervals (see `downsample`)."""
DOTS_UP_TO = 12
"""A solid line of this many points or fewer gets a dot (and a tooltip) on each point."""
COLOURS = 8
"""Distinct series colour classes, `c0` to `c7`; further series reuse them in order."""
_LEFT, _RIGHT, _TOP, _BOTTOM = 62, 12, 28, 34


@dataclasses.dataclass(frozen=True)
class Series:
    """One named line: `points` are (x, y) pairs in increasing x; `dashed` draws it dashed."""

    name: str
    points: tuple[tuple[float, float], ...]
    colour: int = 0
    dashed: bool = False


@dataclasses.dataclass(frozen=True)
class Bar:
    """One stacked bar: `label` under it, one value per part (in the chart's part order)."""

    label: str
    values: tuple[float, ...]


def downsample(
    values: Sequence[float], limit: int = MAX_POINTS, how: str = "mean"
) -> list[tuple[float, float]]:
    """Return (x, y) points of `values` (one per second, x = the second) with at most `limit` points.

    Consecutive seconds are grouped into equal intervals; a group's y is the mean of its values
    (`how="mean"`, for rates) or the largest (`how="max"`, for latency percentiles: a spike
    must not be averaged away), and its x is the middle of the interval.
    """
    if how not in ("mean", "max"):
        raise ValueError(f"how must be 'mean' or 'max', not {how!r}")
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    size = max(1, math.ceil(len(values) / limit))
    points = []
    for start in range(0, len(values), size):
        group = values[start : start + size]
        y = max(group) if how == "max" else sum(group) / len(group)
        points.append((start + len(group) / 2, y))
    return points


def nice_ticks(high: float, count: int = 5) -> list[float]:
    """Return evenly spaced round tick values from 0 to at least `high` (1, 2 or 5 times a power of 10)."""
    if not high > 0 or not math.isfinite(high):
        return [0.0, 1.0]
    raw = high / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    ticks = [0.0]
    while ticks[-1] < high - 1e-12 * high:
        ticks.append(round(ticks[-1] + step, 12))
    return ticks


def log_ticks(low: float, high: float) -> list[float]:
    """Return the powers of ten that span `low` to `high` (both positive), one below and one above."""
    first = math.floor(math.log10(low))
    last = math.ceil(math.log10(high))
    if last == first:
        last += 1
    return [10.0**power for power in range(first, last + 1)]


def number(value: float) -> str:
    """Return `value` short, as an axis label: 0, 0.5, 12, 1.5k, 2M, 0.001."""
    magnitude = abs(value)
    if magnitude >= 1e6:
        return f"{value / 1e6:g}M"
    if magnitude >= 1e3:
        return f"{value / 1e3:g}k"
    if magnitude >= 1 or value == 0:
        return f"{value:g}"
    return f"{value:.3g}"


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    log: bool = False,
    x_max: float | None = None,
    chart_id: str = "",
) -> str:
    """Return an SVG line chart of `series`, sharing one x axis (seconds) and one y axis.

    With `log` the y axis is logarithmic (for latencies that span decades); values of 0 or less
    are left out there. Each line carries `data-series` (its name) and `data-peak` (its largest y,
    as given), and the chart `data-points` (points drawn), so a reader, or a test, can check the
    drawing against the numbers. The x axis runs from 0 to `x_max` (default: the largest x). An
    empty chart says so in its middle.
    """
    drawn = [dataclasses.replace(s, points=tuple(p for p in s.points if p[1] > 0 or not log)) for s in series]
    xs = [x for s in drawn for x, _ in s.points]
    ys = [y for s in drawn for _, y in s.points]
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    x_high = x_max if x_max is not None and x_max > 0 else max(xs, default=1.0) or 1.0
    if log and ys:
        ticks = log_ticks(min(ys), max(ys))
        low, high = math.log10(ticks[0]), math.log10(ticks[-1])

        def y_pos(y: float) -> float:
            return _TOP + plot_h - (math.log10(y) - low) / (high - low) * plot_h

    else:
        ticks = nice_ticks(max(ys, default=0.0))
        top = ticks[-1]

        def y_pos(y: float) -> float:
            return _TOP + plot_h - y / top * plot_h

    def x_pos(x: float) -> float:
        return _LEFT + x / x_high * plot_w

    parts = [_open(title, HEIGHT, chart_id, f' data-points="{len(ys)}"')]
    for tick in ticks:
        y = y_pos(tick)
        parts.append(f'<line class="grid" x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(
            f'<text class="axis" x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{number(tick)}</text>'
        )
    for tick in nice_ticks(x_high, 6):
        if tick > x_high:
            break
        x = x_pos(tick)
        parts.append(
            f'<text class="axis" x="{x:.1f}" y="{HEIGHT - _BOTTOM + 16}" text-anchor="middle">'
            f"{number(tick)}</text>"
        )
    parts.append(
        f'<line class="frame" x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{_TOP + plot_h}" y2="{_TOP + plot_h}"/>'
    )
    parts.append(
        f'<text class="axis" x="{WIDTH - _RIGHT}" y="{HEIGHT - 4}" text-anchor="end">{escape(x_label)}</text>'
    )
    parts.append(
        f'<text class="axis" x="{_LEFT - 6}" y="{_TOP - 10}" text-anchor="end">{escape(y_label)}</text>'
    )
    if not ys:
        parts.append(
            f'<text class="axis" x="{WIDTH / 2:.0f}" y="{_TOP + plot_h / 2:.0f}" text-anchor="middle">'
            "no data</text>"
        )
    for line in drawn:
        if not line.points:
            continue
        path = " ".join(
            f"{'M' if i == 0 else 'L'}{x_pos(x):.1f},{y_pos(y):.1f}" for i, (x, y) in enumerate(line.points)
        )
        peak = max(y for _, y in line.points)
        style = " dashed" if line.dashed else ""
        parts.append(
            f'<path class="line c{line.colour % COLOURS}{style}" data-series="{escape(line.name)}"'
            f' data-peak="{peak:g}" d="{path}"><title>{escape(line.name)}: peak {peak:,.4g}</title></path>'
        )
        if len(line.points) <= DOTS_UP_TO and not line.dashed:  # few points: mark each, with its value
            parts += [
                f'<circle class="dot c{line.colour % COLOURS}" cx="{x_pos(x):.1f}" cy="{y_pos(y):.1f}"'
                f' r="3"><title>{escape(line.name)}: {number(x)}, {y:,.4g}</title></circle>'
                for x, y in line.points
            ]
    parts.append(_legend([(s.name, s.colour, s.dashed) for s in drawn]))
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(
    bars: Sequence[Bar], parts: Sequence[str], *, title: str, y_label: str, chart_id: str = ""
) -> str:
    """Return an SVG chart of stacked bars, one per `Bar`, its parts coloured `c0`, `c1`, ... in order.

    Each bar carries `data-label` and `data-total` (the sum of its parts). Labels under the bars
    are thinned out when there are many bars, so 50 bars stay legible.
    """
    height = HEIGHT
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, height - _TOP - _BOTTOM
    totals = [sum(bar.values) for bar in bars]
    ticks = nice_ticks(max(totals, default=0.0))
    top = ticks[-1]
    out = [_open(title, height, chart_id, f' data-bars="{len(bars)}"')]
    for tick in ticks:
        y = _TOP + plot_h - tick / top * plot_h
        out.append(f'<line class="grid" x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(
            f'<text class="axis" x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{number(tick)}</text>'
        )
    out.append(
        f'<text class="axis" x="{_LEFT - 6}" y="{_TOP - 10}" text-anchor="end">{escape(y_label)}</text>'
    )
    slot = plot_w / max(len(bars), 1)
    label_every = max(1, math.ceil(len(bars) / 25))
    for index, (bar, total) in enumerate(zip(bars, totals)):
        x = _LEFT + index * slot + slot * 0.15
        width = max(slot * 0.7, 1.0)
        base = float(_TOP + plot_h)
        detail = ", ".join(f"{name} {value:,.0f}" for name, value in zip(parts, bar.values))
        out.append(
            f'<g class="bar" data-label="{escape(bar.label)}" data-total="{total:g}">'
            f"<title>{escape(bar.label)}: {escape(detail)}</title>"
        )
        for part, value in enumerate(bar.values):
            if value <= 0:
                continue
            h = value / top * plot_h
            base -= h
            out.append(
                f'<rect class="fill c{part % COLOURS}" x="{x:.1f}" y="{base:.1f}"'
                f' width="{width:.1f}" height="{h:.1f}"/>'
            )
        out.append("</g>")
        if index % label_every == 0:
            out.append(
                f'<text class="axis" x="{x + width / 2:.1f}" y="{height - _BOTTOM + 16}"'
                f' text-anchor="middle">{escape(bar.label)}</text>'
            )
    out.append(_legend([(name, index, False) for index, name in enumerate(parts)]))
    out.append("</svg>")
    return "".join(out)


def _open(title: str, height: int, chart_id: str, extra: str) -> str:
    ident = f' id="{escape(chart_id)}"' if chart_id else ""
    return (
        f'<svg class="chart"{ident} viewBox="0 0 {WIDTH} {height}" role="img"'
        f' aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg"{extra}>'
        f"<title>{escape(title)}</title>"
    )


def _legend(entries: Sequence[tuple[str, int, bool]]) -> str:
    """A row of legend entries along the top, right-aligned, as many as fit (tables name them all)."""
    out = []
    x = float(WIDTH - _RIGHT)
    for name, colour, dashed in reversed(entries):
        label = name if len(name) <= 36 else name[:35] + "\u2026"
        width = 24 + 7.2 * len(label)
        if x - width < _LEFT + 40:
            break
        x -= width
        style = " dashed" if dashed else ""
        out.append(
            f'<line class="line c{colour % COLOURS}{style}" x1="{x:.1f}" x2="{x + 16:.1f}" y1="10" y2="10"/>'
            f'<text class="legend" x="{x + 20:.1f}" y="14">{escape(label)}</text>'
        )
    return "".join(out)
