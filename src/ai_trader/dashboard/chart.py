"""A small line chart drawn as SVG on the server: no script, no external asset.

Days are spaced evenly along the x axis (trading days, not calendar days), values on a
linear y axis with rounded ticks. Each run of known values of a series is one
``<polyline>`` carrying ``data-series`` (its name), ``data-points`` (how many points it
joins) and ``data-low`` (the lowest value it joins, exactly), so a test can count lines and
points and read the lowest value in the rendered page. An unknown value (None) is a gap:
the line stops before it and starts again after it. ``element_id`` tells one chart of a
page from another.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

# Beyond this many points a series is drawn without a marker per point (they would merge).
MARKER_LIMIT = 400
PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#4d7c0f")
BENCHMARK_COLOUR = "#6b7280"


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[str, float | None]]  # (ISO date, value or None), in date order
    benchmark: bool = False  # drawn grey and dashed


def nice_step(span: float, ticks: int = 5) -> float:
    """A round tick spacing (1, 2, 2.5 or 5 times a power of ten) giving about ``ticks``."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / ticks
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if factor * magnitude >= raw:
            return factor * magnitude
    return 10 * magnitude


def _decimals(step: float) -> int:
    """The fewest decimals that print every multiple of ``step`` exactly."""
    for decimals in range(7):
        if abs(round(step, decimals) - step) < 1e-9 * max(1.0, step):
            return decimals
    return 6


def _fmt(number: float) -> str:
    return f"{number:.1f}"


def _known_runs(points: Sequence[tuple[str, float | None]]) -> list[list[tuple[str, float]]]:
    """The stretches of consecutive known values, split at each unknown one."""
    runs: list[list[tuple[str, float]]] = [[]]
    for day, value in points:
        if value is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((day, value))
    return [run for run in runs if run]


def line_chart(
    series: Sequence[Series],
    *,
    width: int = 960,
    height: int = 420,
    title: str = "",
    element_id: str = "",
    unit: str = "",
) -> str:
    """The SVG markup of a line chart of ``series`` (an empty-state chart when none has points);
    ``unit`` follows each value the chart writes (the y ticks, a point's tooltip)."""
    left, right, top, bottom = 84, 24, 36 if title else 16, 64
    plot_w, plot_h = width - left - right, height - top - bottom
    svg_id = f' id="{escape(element_id)}"' if element_id else ""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg"{svg_id} class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'font-family="system-ui, sans-serif" font-size="12">'
    ]
    parts.append(f"<title>{escape(title or 'Portfolio value')}</title>")
    parts.append(f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>')
    if title:
        parts.append(
            f'<text x="{left}" y="22" font-size="15" font-weight="600" fill="#111827">'
            f"{escape(title)}</text>"
        )
    drawn = [s for s in series if any(v is not None for _, v in s.points)]
    dates = sorted({day for s in drawn for day, _ in s.points})
    values = [v for s in drawn for _, v in s.points if v is not None]
    if not dates:
        parts.append(
            f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" '
            f'fill="#6b7280" font-size="14">No data to chart yet</text></svg>'
        )
        return "".join(parts)

    low, high = min(values), max(values)
    if high - low < 1e-9:
        pad = abs(high) * 0.01 or 1.0
        low, high = low - pad, high + pad
    step = nice_step(high - low)
    # Each tick a whole multiple of the step, so the tick at 0 is exactly 0 (never "-0.0").
    ticks = [k * step for k in range(math.floor(low / step), math.ceil(high / step) + 1)]
    low, high = ticks[0], ticks[-1]
    decimals = _decimals(step)
    label = escape(unit)
    index = {day: i for i, day in enumerate(dates)}

    def x(day: str) -> float:
        if len(dates) == 1:
            return left + plot_w / 2
        return left + plot_w * index[day] / (len(dates) - 1)

    def y(value: float) -> float:
        return top + plot_h * (high - value) / (high - low)

    # Every line of a chart shares the days: each day's x is written once, not once a line.
    xs = {day: _fmt(x(day)) for day in dates}

    # grid and y labels
    for tick in ticks:
        ty = _fmt(y(tick))
        parts.append(
            f'<line x1="{left}" y1="{ty}" x2="{left + plot_w}" y2="{ty}" stroke="#e5e7eb"/>'
        )
        parts.append(
            f'<text x="{left - 8}" y="{ty}" dy="4" text-anchor="end" fill="#374151">'
            f"{tick:,.{decimals}f}{label}</text>"
        )
    # x labels: every day when there are few, else first, last and a few evenly between
    last = len(dates) - 1
    shown = (
        range(len(dates)) if len(dates) <= 8 else sorted({round(i * last / 5) for i in range(6)})
    )
    for i in shown:
        tx = _fmt(x(dates[i]))
        parts.append(
            f'<line x1="{tx}" y1="{top + plot_h}" x2="{tx}" y2="{top + plot_h + 5}" '
            f'stroke="#9ca3af"/>'
        )
        anchor = "end" if i == len(dates) - 1 and i > 0 else "middle"
        parts.append(
            f'<text x="{tx}" y="{top + plot_h + 18}" text-anchor="{anchor}" fill="#374151">'
            f"{escape(dates[i])}</text>"
        )
    # axes
    parts.append(
        f'<path d="M{left},{top} V{top + plot_h} H{left + plot_w}" fill="none" stroke="#9ca3af"/>'
    )

    # the lines, benchmark first so the models are drawn over it
    colours: dict[str, str] = {}
    models = iter(PALETTE * (1 + len(drawn) // len(PALETTE)))
    for s in drawn:
        colours[s.name] = BENCHMARK_COLOUR if s.benchmark else next(models)
    for s in sorted(drawn, key=lambda s: not s.benchmark):
        colour = colours[s.name]
        dash = ' stroke-dasharray="6 4"' if s.benchmark else ""
        for run in _known_runs(s.points):
            coords = " ".join(f"{xs[day]},{_fmt(y(v))}" for day, v in run)
            lowest = min(v for _, v in run)
            parts.append(
                f'<polyline data-series="{escape(s.name)}" data-points="{len(run)}" '
                f'data-low="{lowest!r}" '
                f'points="{coords}" fill="none" stroke="{colour}" stroke-width="2"'
                f' stroke-linejoin="round"{dash}/>'
            )
        if len(s.points) > MARKER_LIMIT:
            continue
        parts.append(f'<g class="markers" fill="{colour}">')
        for day, v in s.points:
            if v is None:
                continue
            parts.append(
                f'<circle cx="{xs[day]}" cy="{_fmt(y(v))}" r="2.5">'
                f"<title>{escape(s.name)} {escape(day)}: {v:,.2f}{label}</title></circle>"
            )
        parts.append("</g>")

    # legend, one row under the x labels (wrapping when it runs out of width)
    lx, ly = left, top + plot_h + 44
    for s in drawn:
        label = escape(s.name)
        entry = 34 + 7 * len(s.name) + 18
        if lx + entry > width - right and lx > left:
            lx, ly = left, ly + 18
        dash = ' stroke-dasharray="6 4"' if s.benchmark else ""
        parts.append(
            f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 24}" y2="{ly - 4}" '
            f'stroke="{colours[s.name]}" stroke-width="3"{dash}/>'
        )
        parts.append(f'<text x="{lx + 30}" y="{ly}" fill="#111827">{label}</text>')
        lx += entry
    parts.append("</svg>")
    return "".join(parts)
