"""Small charts as inline SVG, drawn on the server from plain numbers: stacked bars and
lines, with axes and labels, for the console's dashboard.

No script and no library: the SVG is text in the page, so it works with the console's
strict Content-Security-Policy, prints, and needs nothing fetched. Colours are CSS classes
(``c0`` … ``c5``) whose light and dark palettes the page defines; the chart's accessible
name is its title (``role="img"`` + ``aria-labelledby``), and the page shows the same
numbers in a table beside it. The legend is the page's (HTML beside the chart, colour
class ``s0`` … ``s5``): a chart scrolled on a phone keeps it in view.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

__all__ = ["Chart", "Series", "bars", "lines", "nice_ceiling"]

WIDTH, HEIGHT = 640, 216
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 24
PALETTE_SIZE = 6


@dataclass(frozen=True)
class Series:
    name: str
    values: list[float]


@dataclass(frozen=True)
class Chart:
    """What a chart shows: one label per point on the x axis, and its series."""

    id: str
    title: str
    labels: list[str]
    series: list[Series]

    @property
    def empty(self) -> bool:
        return not self.labels or not any(v for s in self.series for v in s.values)


def nice_ceiling(value: float) -> float:
    """The axis top: four steps of 1, 2 or 5 times a power of ten (whole numbers for
    counts), the first such top at or above ``value``."""
    step = _step(value)
    return step * max(1, math.ceil(value / step)) if value > 0 else 4.0


def _step(value: float) -> float:
    """A gridline step that reaches ``value`` in at most four steps, never below 1."""
    if value <= 4:
        return 1.0
    rough = value / 4
    power = 10 ** math.floor(math.log10(rough))
    for factor in (1, 2, 5, 10):
        if rough <= factor * power:
            return float(factor * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def _frame(chart: Chart, top: float) -> list[str]:
    """The y axis with a gridline and its number at each step (whole numbers: these are
    counts), and the x axis."""
    plot_h = HEIGHT - TOP - BOTTOM
    out = ['<g class="axis" aria-hidden="true">']
    step = _step(top)
    for i in range(round(top / step) + 1):
        value = step * i
        y = TOP + plot_h - plot_h * value / top
        out.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" '
                   f'y2="{y:.1f}"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                   f'{_number(value)}</text>')
    out.append(f'<line class="base" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_h}" '
               f'y2="{TOP + plot_h}"/></g>')
    return out


def _x_labels(labels: list[str], centers: list[float]) -> list[str]:
    """At most about eight labels, evenly spaced, so they never overlap."""
    every = max(1, math.ceil(len(labels) / 6))
    y = HEIGHT - BOTTOM + 16
    return [f'<text x="{x:.1f}" y="{y}" text-anchor="middle">{escape(label)}</text>'
            for i, (label, x) in enumerate(zip(labels, centers, strict=True))
            if i % every == 0 or (i == len(labels) - 1 and len(labels) <= 8)]


def _open(chart: Chart) -> str:
    title_id = f"{chart.id}-title"
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" aria-labelledby={quoteattr(title_id)} '
            f'id={quoteattr(chart.id)}><title id={quoteattr(title_id)}>'
            f'{escape(chart.title)}</title>')


def bars(chart: Chart) -> str:
    """Stacked bars: one bar per label, one segment per series."""
    n = max(len(chart.labels), 1)
    totals = [sum(s.values[i] for s in chart.series) for i in range(len(chart.labels))]
    top = nice_ceiling(max(totals, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / n
    width = max(slot * 0.7, 1)
    parts = [_open(chart), *_frame(chart, top), '<g class="data">']
    centers = []
    for i in range(len(chart.labels)):
        x = LEFT + slot * i + (slot - width) / 2
        centers.append(x + width / 2)
        base = float(TOP + plot_h)
        for k, s in enumerate(chart.series):
            value = s.values[i]
            if value <= 0:
                continue
            h = plot_h * value / top
            base -= h
            parts.append(f'<rect class="c{k % PALETTE_SIZE}" x="{x:.1f}" y="{base:.1f}" '
                         f'width="{width:.1f}" height="{h:.1f}"/>')
    parts += ["</g>", '<g class="axis" aria-hidden="true">',
              *_x_labels(chart.labels, centers), "</g></svg>"]
    return "".join(parts)


def lines(chart: Chart) -> str:
    """One line per series, a dot at each point."""
    n = len(chart.labels)
    top = nice_ceiling(max((v for s in chart.series for v in s.values), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(n - 1, 1)
    xs = [LEFT + step * i if n > 1 else LEFT + plot_w / 2 for i in range(n)]
    parts = [_open(chart), *_frame(chart, top), '<g class="data">']
    for k, s in enumerate(chart.series):
        points = [(x, TOP + plot_h - plot_h * v / top) for x, v in zip(xs, s.values,
                                                                         strict=True)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(f'<polyline class="l{k % PALETTE_SIZE}" points="{path}"/>')
        parts += [f'<circle class="c{k % PALETTE_SIZE}" cx="{x:.1f}" cy="{y:.1f}" r="3"/>'
                  for x, y in points]
    parts += ["</g>", '<g class="axis" aria-hidden="true">', *_x_labels(chart.labels, xs),
              "</g></svg>"]
    return "".join(parts)
