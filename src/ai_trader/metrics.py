"""The figures of one value series: returns, risk, drawdown, wins and losses. ``valuation``
owns them (``valuation.measure``) and hands this module the series it valued; the run
summary, the report and the dashboard only present what comes back. The formulas are
written once, in docs/METRICS.md; this module is them in code.

The rules:

* The series is the valuation's points, the start included; the periods are the changes
  between consecutive points, so n points make n - 1 periods and period i returns
  ``v[i] / v[i-1] - 1``.
* A figure the data cannot support is n/a with the reason (``Figure.na``), never NaN,
  infinity, or a 0 standing in for what is not known. A 0 shown is a true 0.
* A point whose value is unknown (a gap) is never skipped and never filled in: every
  figure that needs each period is n/a and names the first such day. The cumulative and
  annualised returns need only the two ends and the count of periods, so a gap inside the
  run leaves them standing.
* The spread of the returns is the sample standard deviation (n - 1 in the denominator);
  the downside deviation divides by every period, n, as empyrical and quantstats do.
* Annualising takes ``periods_per_year`` (252: US daily; a market object may pass its own)
  and an annual risk-free rate, compounded down to one period: ``(1 + rf) ** (1 / P) - 1``.
* Everything is one or two passes over plain floats, sums by ``math.fsum``: thousands of
  days of several models take milliseconds.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# The US daily market: trading days a year.
PERIODS_PER_YEAR = 252
TOO_LARGE = "the result is too large to be a number"

# How every presenter (the run's summary, the report, the dashboard) writes each figure, in
# the order the tables show them: (the Metrics field, its heading, its format).
DISPLAY: tuple[tuple[str, str, str], ...] = (
    ("cumulative_return", "return", "{:+.2%}"),
    ("annualised_return", "annualised", "{:+.2%}"),
    ("volatility", "volatility", "{:.2%}"),
    ("sharpe", "Sharpe", "{:.2f}"),
    ("sortino", "Sortino", "{:.2f}"),
    ("calmar", "Calmar", "{:.2f}"),
    ("max_drawdown", "max drawdown", "{:.2%}"),
    ("win_rate", "win rate", "{:.2%}"),
    ("average_win", "avg win", "{:+.2%}"),
    ("average_loss", "avg loss", "{:+.2%}"),
    ("trades", "trades", "{:.0f}"),
    ("turnover", "turnover", "{:.2f}"),
)
FORMATS = {key: pattern for key, _, pattern in DISPLAY}


def shown(value: float | None, pattern: str) -> str:
    """A figure's value as the tables write it; n/a when it has none."""
    return "n/a" if value is None else pattern.format(value)


@dataclass(frozen=True)
class Figure:
    """One metric: a finite value, or None and the reason the data cannot support it."""

    value: float | None
    reason: str | None = None

    @classmethod
    def of(cls, value: float) -> Figure:
        return cls(value) if math.isfinite(value) else cls(None, TOO_LARGE)

    @classmethod
    def na(cls, reason: str) -> Figure:
        return cls(None, reason)

    def to_json(self) -> dict[str, float | str | None]:
        if self.value is None:
            return {"value": None, "na": self.reason}
        return {"value": self.value}


@dataclass(frozen=True)
class Metrics:
    """The metric set of one series (a model's book, or QQQ over the same days)."""

    periods: int  # the changes between consecutive points
    periods_per_year: float
    risk_free_rate: float  # annual
    cumulative_return: Figure
    annualised_return: Figure
    volatility: Figure  # annualised
    sharpe: Figure
    sortino: Figure
    calmar: Figure
    max_drawdown: Figure  # a fraction <= 0: the deepest fall from a running peak
    drawdown_peak: str | None  # the peak's date and the trough's; None without a drawdown
    drawdown_trough: str | None
    win_rate: Figure
    average_win: Figure
    average_loss: Figure  # a negative return
    trades: Figure
    turnover: Figure

    def to_json(self) -> dict[str, object]:
        names = (*_RETURN_FIGURES, "trades", "turnover")
        figures = {name: getattr(self, name).to_json() for name in names}
        return {
            "periods": self.periods,
            "periods_per_year": self.periods_per_year,
            "risk_free_rate": self.risk_free_rate,
            **figures,
            "drawdown_peak": self.drawdown_peak,
            "drawdown_trough": self.drawdown_trough,
        }


def period_rate(risk_free_rate: float, periods_per_year: float) -> float:
    """The annual risk-free rate as a rate per period, compounded: (1 + rf) ** (1 / P) - 1."""
    return float((1.0 + risk_free_rate) ** (1.0 / periods_per_year) - 1.0)


def _ratio(top: float, bottom: float) -> Figure:
    """top / bottom (bottom not 0); n/a, never a 0 or infinity, when either is too large."""
    if not (math.isfinite(top) and math.isfinite(bottom)):
        return Figure.na(TOO_LARGE)
    try:
        return Figure.of(top / bottom)
    except OverflowError:
        return Figure.na(TOO_LARGE)


def series_metrics(
    points: Sequence[tuple[str, float | None]],
    *,
    periods_per_year: float = PERIODS_PER_YEAR,
    risk_free_rate: float = 0.0,
    unknown: Mapping[str, str] | None = None,
    trades: Figure | None = None,
    turnover: Figure | None = None,
) -> Metrics:
    """The metric set of ``points`` (date, value or None), in order, the start first.

    ``unknown`` gives the reason a day's value is None (else "the value is unknown");
    ``trades`` and ``turnover`` come from the book's rows (``valuation.measure``), n/a when
    not given."""
    if not periods_per_year > 0 or not math.isfinite(periods_per_year):
        raise ValueError(f"periods_per_year must be a positive number, got {periods_per_year!r}")
    if not math.isfinite(risk_free_rate) or risk_free_rate <= -1:
        raise ValueError(f"risk_free_rate must be a rate above -100%, got {risk_free_rate!r}")
    rest, found, (peak, trough) = _figures(points, periods_per_year, risk_free_rate, unknown)
    missing = Figure.na("no trades: the book's rows were not given")
    return Metrics(
        periods=max(len(points) - 1, 0),
        periods_per_year=periods_per_year,
        risk_free_rate=risk_free_rate,
        drawdown_peak=peak,
        drawdown_trough=trough,
        trades=trades or missing,
        turnover=turnover or missing,
        **{name: found.get(name, rest) for name in _RETURN_FIGURES},
    )


_RETURN_FIGURES = (
    "cumulative_return",
    "annualised_return",
    "volatility",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "win_rate",
    "average_win",
    "average_loss",
)
Dates = tuple[str | None, str | None]


def _figures(
    points: Sequence[tuple[str, float | None]],
    p: float,
    risk_free_rate: float,
    unknown: Mapping[str, str] | None,
) -> tuple[Figure, dict[str, Figure], Dates]:
    """The return figures found, the n/a (and why) of every other, the drawdown's dates."""
    n = len(points) - 1
    if n < 1:
        return Figure.na("no period: the series has fewer than 2 points"), {}, (None, None)
    values = [value for _, value in points]

    # The two ends and the count: the cumulative and the annualised return.
    first, last = values[0], values[-1]
    found: dict[str, Figure] = {}
    if first is None or last is None:
        day = points[0][0] if first is None else points[-1][0]
        found = dict.fromkeys(("cumulative_return", "annualised_return"), _gap(day, unknown))
    elif first <= 0:
        return Figure.na(f"the start value is {first:g}: no return on it"), {}, (None, None)
    else:
        growth = last / first
        found["cumulative_return"] = Figure.of(growth - 1.0)
        if n < 2:
            found["annualised_return"] = Figure.na("one period: too short to annualise")
        elif growth < 0:
            found["annualised_return"] = Figure.na("the value ended below 0")
        else:
            try:
                found["annualised_return"] = Figure.of(growth ** (p / n) - 1.0)
            except OverflowError:
                found["annualised_return"] = Figure.na(TOO_LARGE)

    # Every period: the first unknown or unusable point makes the rest n/a.
    for (day, value), previous in zip(points, [None, *values[:-1]], strict=True):
        if value is None:
            return _gap(day, unknown), found, (None, None)
        if previous is not None and previous <= 0:
            why = f"the value before {day} is {previous:g}: no return on it"
            return Figure.na(why), found, (None, None)
    known = [v for v in values if v is not None]  # all of them, by now
    returns = [b / a - 1.0 for a, b in itertools.pairwise(known)]
    if not all(map(math.isfinite, returns)):
        return Figure.na(TOO_LARGE), found, (None, None)

    # Drawdown: the deepest point of the drawdown series (the start included; known[0] > 0,
    # so every point has one), the first when two are as deep, and the peak it fell from.
    falls = [fall for fall in drawdowns(known) if fall is not None]
    deepest = min(falls)
    found["max_drawdown"] = Figure.of(deepest)
    dates: Dates = (None, None)
    if deepest < 0:
        trough = falls.index(deepest)
        peak = known.index(max(known[: trough + 1]))
        dates = (points[peak][0], points[trough][0])

    # Wins and losses: a period that gained, one that lost; a flat period is neither.
    wins = [r for r in returns if r > 0]
    losses = [r for r in returns if r < 0]
    if wins or losses:
        found["win_rate"] = Figure.of(len(wins) / (len(wins) + len(losses)))
    else:
        found["win_rate"] = Figure.na("no period gained or lost")
    found["average_win"] = _mean(wins) if wins else Figure.na("no period gained")
    found["average_loss"] = _mean(losses) if losses else Figure.na("no period lost")

    if n < 2:
        found["calmar"] = _calmar(found)
        return Figure.na("one period: a spread needs at least 2"), found, dates
    # Spread: the sample standard deviation, annualised by sqrt(P).
    found.update(_spread(returns, p, period_rate(risk_free_rate, p)))
    found["calmar"] = _calmar(found)
    return Figure.na("not computed"), found, dates


def _mean(numbers: Sequence[float]) -> Figure:
    try:
        return Figure.of(math.fsum(numbers) / len(numbers))
    except OverflowError:
        return Figure.na(TOO_LARGE)


def _spread(returns: Sequence[float], p: float, rf: float) -> dict[str, Figure]:
    """Volatility, Sharpe and Sortino of at least 2 returns; n/a when a sum overflows."""
    n = len(returns)
    root = math.sqrt(p)
    try:
        mean = math.fsum(returns) / n
        flat = max(returns) == min(returns)  # exactly: no rounding makes a spread of nothing
        stdev = 0.0 if flat else math.sqrt(math.fsum((r - mean) ** 2 for r in returns) / (n - 1))
        below = math.fsum(min(r - rf, 0.0) ** 2 for r in returns)
    except OverflowError:
        return dict.fromkeys(("volatility", "sharpe", "sortino"), Figure.na(TOO_LARGE))
    excess = mean - rf
    found = {"volatility": Figure.of(stdev * root)}
    if not stdev:
        found["sharpe"] = Figure.na("volatility is 0")
    else:
        found["sharpe"] = _ratio(excess * root, stdev)
    if below > 0:
        found["sortino"] = _ratio(excess * root, math.sqrt(below / n))
    else:
        found["sortino"] = Figure.na("no period fell below the risk-free rate")
    return found


def _calmar(found: Mapping[str, Figure]) -> Figure:
    annual, drawdown = found["annualised_return"], found["max_drawdown"].value
    if annual.value is None:
        return Figure.na(f"no annualised return: {annual.reason}")
    if not drawdown:
        return Figure.na("no drawdown")
    return _ratio(annual.value, -drawdown)


def _gap(day: str, unknown: Mapping[str, str] | None) -> Figure:
    why = (unknown or {}).get(day, "the value is unknown")
    return Figure.na(f"no value on {day}: {why}")


def drawdowns(values: Sequence[float | None]) -> list[float | None]:
    """The drawdown at each point: its value over the running peak (the highest value up to
    and including it, the start included), less 1. A fraction <= 0, and 0 at a new peak;
    ``max_drawdown`` is the lowest of them, and the dashboard's drawdown chart draws them.

    None where the data cannot support one: from the first unknown value on (the peak after
    it is unknown, so is every fall from it), and while the peak is not above 0."""
    falls: list[float | None] = []
    peak = -math.inf
    for value in values:
        if value is None:
            break
        peak = max(peak, value)
        falls.append(value / peak - 1.0 if peak > 0 else None)
    return falls + [None] * (len(values) - len(falls))


def mean_value(points: Sequence[tuple[str, float | None]]) -> float | None:
    """The average of every point's value (the start included); None when one is unknown."""
    values = [value for _, value in points]
    if not values or None in values:
        return None
    return math.fsum(v for v in values if v is not None) / len(values)
