"""The dashboard's page: ``templates/page.html`` rendered from the summary (``data``).

The rules:

* The page is a Jinja2 template with autoescaping always on: every value from the data
  folder (signatures, notices, file names, reasons) is escaped by the template, never by
  hand, and no HTML is built in Python strings. The one exception is the charts: ``chart``
  draws the SVG and escapes its own text, and it goes in as ``Markup`` (``chart_markup``).
* Two charts, over the same days: the value of each model and of QQQ, and below it their
  drawdowns (``metrics.drawdowns`` of the same points, in percent), whose lowest point is
  the max drawdown in the metrics table. Both are drawn with the body, once per change of
  the data, from the series the summary already has: ``/api/summary`` carries no more.
* The template is compiled once, when this module is imported; a render never reads or
  compiles it again.
* The page has two parts. ``head`` says when the data was read, so it is rendered for
  every request (a few lines); ``body`` is the rest, rendered once per change of the data
  (``Page`` keeps it by the summary's fingerprint).
* The page is self-contained: inline CSS, the chart as inline SVG, a few lines of script
  that reload it when the data changes, and a meta refresh that does the same without
  script. It works with no network at all.
* The template only presents: numbers come formatted by the filters below (``money``,
  ``percent``, ``shares``), figures come from the summary, which has them from
  ``ai_trader.valuation``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from ai_trader import manifest
from ai_trader.dashboard.chart import Series, line_chart
from ai_trader.metrics import DISPLAY, drawdowns, shown
from ai_trader.usage import DISPLAY as USAGE_DISPLAY

REFRESH_SECONDS = 10
# The page lists this many trading days of trades, newest first (the JSON has them all).
TRADE_DAYS_SHOWN = 250


def money(value: float | None) -> str:
    return f"{value:,.2f}" if value is not None else "n/a"


def percent(value: float | None) -> str:
    return f"{value:+.2%}" if value is not None else "n/a"


def shares(value: float) -> str:
    return f"{value:g}"


# The metrics the page's table shows, as every presenter writes them (metrics.DISPLAY); the
# return is in the overview above it.
METRIC_COLUMNS = tuple(
    column
    for column in DISPLAY
    if column[0] not in {"cumulative_return", "average_win", "average_loss"}
)


# What each model paid (usage.DISPLAY): on the model's own row; QQQ's are left empty.
PAID_COLUMNS = USAGE_DISPLAY


def metric(figure: Mapping[str, Any], pattern: str) -> str:
    """A metric of the summary's JSON ({"value": x} or {"na": why}) as the page shows it."""
    return shown(figure.get("value"), pattern)


def recent_trades(
    model: Mapping[str, Any],
) -> tuple[list[tuple[Mapping[str, Any], float | None]], int]:
    """The trading days the page lists, newest first, each with that day's value, and how
    many earlier days are left to the JSON."""
    values = {point["date"]: point["value"] for point in model["series"]}
    shown = model["trades"][-TRADE_DAYS_SHOWN:]
    older = len(model["trades"]) - TRADE_DAYS_SHOWN
    return [(day, values.get(day["date"])) for day in reversed(shown)], older


ENVIRONMENT = Environment(
    loader=PackageLoader("ai_trader.dashboard", "templates"),
    autoescape=True,
    undefined=StrictUndefined,  # a misspelt name is an error, not an empty cell
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)
ENVIRONMENT.filters.update(
    money=money, percent=percent, shares=shares, metric=metric, described=manifest.described
)
ENVIRONMENT.globals.update(
    recent_trades=recent_trades,
    METRIC_COLUMNS=METRIC_COLUMNS,
    PAID_COLUMNS=PAID_COLUMNS,
)
TEMPLATE = ENVIRONMENT.get_template("page.html")
# The template's two parts, its macros (Jinja2's documented ``Template.module``).
_PARTS: dict[str, Callable[..., Markup]] = vars(TEMPLATE.module)


def chart_svg(summary: Mapping[str, Any]) -> str:
    """The chart: one line per model, and the benchmark's line."""
    series = [
        Series(m["signature"], [(p["date"], p["value"]) for p in m["series"]])
        for m in summary["signatures"]
    ]
    bench = summary["benchmark"]
    if bench["points"]:
        series.append(
            Series(
                bench["symbol"], [(p["date"], p["value"]) for p in bench["points"]], benchmark=True
            )
        )
    return line_chart(
        series,
        title=f"Portfolio value{_in_currency(summary)} against {bench['symbol']} "
        "(scaled to the same start)",
        element_id="value-chart",
    )


def drawdown_points(
    points: Sequence[Mapping[str, Any]], key: str
) -> list[tuple[str, float | None]]:
    """The drawdown of the summary's ``points`` (``key``: "value" or "benchmark") at each
    date, in percent: ``metrics.drawdowns``, the max drawdown's own series, times 100."""
    falls = drawdowns([point[key] for point in points])
    return [
        (point["date"], None if fall is None else fall * 100)
        for point, fall in zip(points, falls, strict=True)
    ]


def drawdown_svg(summary: Mapping[str, Any]) -> str:
    """The drawdown chart: one line per model, and QQQ's over the days of the model whose
    QQQ the value chart draws (``benchmark.basis``), gaps kept."""
    series = [
        Series(m["signature"], drawdown_points(m["series"], "value")) for m in summary["signatures"]
    ]
    bench = summary["benchmark"]
    for model in summary["signatures"]:
        if model["signature"] == bench["basis"]:
            points = drawdown_points(model["series"], "benchmark")
            series.append(Series(bench["symbol"], points, benchmark=True))
    return line_chart(
        series,
        height=320,
        title="Drawdown: the fall from each line's running peak, in %",
        element_id="drawdown-chart",
        unit="%",
    )


def _in_currency(summary: Mapping[str, Any]) -> str:
    """The words " in CNY" when the summary names its currency (not the US default)."""
    market = summary.get("market")
    return f" in {market['currency']}" if market else ""


def chart_markup(summary: Mapping[str, Any]) -> tuple[Markup, Markup]:
    """The value chart and the drawdown chart, as the template inserts them."""
    # The only Markup in the dashboard: chart.py builds the SVG itself and escapes every
    # name and label in it (html.escape), so the template must insert it as it is.
    value, drawdown = chart_svg(summary), drawdown_svg(summary)
    return Markup(value), Markup(drawdown)  # noqa: S704 (escaped by chart.py, as said above)


def page_head(summary: Mapping[str, Any]) -> str:
    """The page up to its data: the head, the title and when the data was read."""
    return str(_PARTS["head"](summary, REFRESH_SECONDS))


def page_body(summary: Mapping[str, Any]) -> str:
    """The rest of the page: notices, skipped lines, the charts and each model's tables."""
    return str(_PARTS["body"](summary, *chart_markup(summary), REFRESH_SECONDS * 1000))


def render_page(summary: Mapping[str, Any]) -> str:
    """The whole page of a summary."""
    return page_head(summary) + page_body(summary)


class Page:
    """The page of a changing summary: the body is rendered again only when the summary's
    fingerprint changed, the head (with the time of the read) each time. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._body: tuple[str, str] | None = None

    def render(self, summary: Mapping[str, Any]) -> str:
        with self._lock:
            if self._body is None or self._body[0] != summary["fingerprint"]:
                self._body = (summary["fingerprint"], page_body(summary))
            body = self._body[1]
        return page_head(summary) + body
