"""What a book is worth: mark to market, the value per trading day, QQQ over the same days,
and the returns. The run's summary (``agent.runner``) and the dashboard both ask here, so
they cannot disagree.

The rules:

* The trading days are the dates of the rows that record an action (a trade or
  ``no_trade``); a day's positions are those of its last such row.
* The start is the opening row (the first row, with no action, dated before the first
  trading day), valued at the open of the first trading day, when the agent starts
  trading. A book whose opening row is missing starts at its first day's value instead.
* A holding is marked at the day's close; on the newest day of the data only the open is
  known, and the open is used (``mark_price``). On any earlier day a bar without a close
  has no mark: the open of a past day never stands in for its close.
* A holding with no price on a day makes that day's value unknown (None), and the day and
  the symbols are named (a ``Gap``). It is never counted as 0, and no older price stands
  in for it: a value shown is always one the data supports.
* QQQ is the benchmark over the same days: its open on the first trading day is the base
  (its mark on that day when the opening row is missing), its mark on each day after
  that gives the point, scaled to the start value. Its return is the last mark over the
  base.
* The metrics (``measure``) are those of the points' values, and QQQ's are those of the
  points' benchmark values, over the same days, by one set of formulas (``metrics``, written
  out in docs/METRICS.md). A trade is a row whose action is buy or sell; it fills at the
  price its row records (``this_action.price``), else at the day's open. QQQ is held, not
  traded: its trades and turnover are n/a.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import mul
from typing import Any

from ai_trader.ledger import CASH
from ai_trader.market.pricebook import PriceBook
from ai_trader.market.universe import BENCHMARK
from ai_trader.metrics import (
    PERIODS_PER_YEAR,
    TOO_LARGE,
    Figure,
    Metrics,
    mean_value,
    series_metrics,
)


def mark_price(book: PriceBook, symbol: str, day: str) -> float | None:
    """A day's value price: the close, or the open on the newest day (whose close is unknown)."""
    close = book.close(symbol, day)
    if close is not None or day != book.newest:
        return close
    return book.open(symbol, day)


class Marks:
    """The marks (``mark_price``) of one price book, one table per day, built once for
    every symbol: valuing thousands of days of many books is then a lookup per holding."""

    def __init__(self, book: PriceBook) -> None:
        self.book = book
        self._days: dict[str, dict[str, float]] | None = None

    def on(self, day: str) -> dict[str, float]:
        if self._days is None:
            # Every day at once, one pass over each symbol's series.
            days: dict[str, dict[str, float]] = {}
            newest = self.book.newest
            for symbol in sorted(self.book.symbols):
                for when, bar in self.book.series(symbol).items():
                    price = bar.get("close", bar.get("open") if when == newest else None)
                    if price is not None:
                        days.setdefault(when, {})[symbol] = price
            self._days = days
        return self._days.get(day, {})


# One table per price book, shared by every book valued against it, gone with it.
_MARKS: weakref.WeakKeyDictionary[PriceBook, Marks] = weakref.WeakKeyDictionary()
_MARKS_LOCK = threading.Lock()


def marks_of(book: PriceBook) -> Marks:
    with _MARKS_LOCK:
        found = _MARKS.get(book)
        if found is None:
            found = _MARKS[book] = Marks(book)
        return found


@dataclass
class Memo:
    """Day values already worked out against one price book, by the day's end row (the
    same row object): a book that only grew is valued again for its new days only."""

    book: PriceBook | None = None
    values: dict[int, tuple[Mapping[str, Any], str, float | None, tuple[str, ...]]] = field(
        default_factory=dict
    )

    def use(self, book: PriceBook) -> Marks:
        if self.book is not book:
            self.book, self.values = book, {}
        return marks_of(book)


@dataclass(frozen=True)
class Gap:
    """A day whose value is unknown, and why."""

    date: str
    symbols: tuple[str, ...]  # the holdings with no price that day (empty: an overflow)

    @property
    def reason(self) -> str:
        if not self.symbols:
            return "the value is too large to be a number"
        return f"no price for {', '.join(self.symbols)}"


@dataclass(frozen=True)
class Point:
    date: str
    value: float | None  # None: unknown (see the Gap of that day)
    benchmark: float | None  # QQQ scaled to the start value; None when unknown


@dataclass(frozen=True)
class Valuation:
    start_date: str | None  # the opening row's date, else the first trading day
    days: tuple[str, ...]  # the trading days, in order
    initial_value: float | None
    series: tuple[Point, ...]  # the start (when there is an opening row), then each day
    benchmark_return: float | None
    gaps: tuple[Gap, ...]

    @property
    def first_day(self) -> str | None:
        return self.days[0] if self.days else None

    @property
    def last_day(self) -> str | None:
        return self.days[-1] if self.days else None

    @property
    def final_value(self) -> float | None:
        return self.series[-1].value if self.series else None

    @property
    def total_return(self) -> float | None:
        final, start = self.final_value, self.initial_value
        return _finite(final / start - 1) if final is not None and start else None

    @property
    def unpriced(self) -> tuple[str, ...]:
        """The holdings with no price on the last point's day (why the final value is None)."""
        if not self.series or self.series[-1].value is not None:
            return ()
        last = self.series[-1].date
        return next((g.symbols for g in reversed(self.gaps) if g.date == last), ())


def worth(
    positions: Mapping[str, float], prices: Mapping[str, float]
) -> tuple[float | None, tuple[str, ...]]:
    """Cash plus every holding at ``prices``; (None, the unpriced symbols) when one has no
    price, (None, ()) when the sum is too large to be a number."""
    # The loops run in C (map, filter, fsum): a long book has days times holdings of them.
    # math.fsum, not sum(): it rounds the exact sum once, so a value is the same on every
    # Python (3.12 made sum() of floats compensated, and 3.11's differs in the last bits).
    held = list(filter(positions.__getitem__, positions))  # the symbols with shares
    if CASH in held:
        held.remove(CASH)
    cash = float(positions.get(CASH, 0.0))
    try:
        holdings = map(mul, map(positions.__getitem__, held), map(prices.__getitem__, held))
        total = math.fsum(chain((cash,), holdings))
    except KeyError:
        return None, tuple(sorted(symbol for symbol in held if symbol not in prices))
    return (total, ()) if math.isfinite(total) else (None, ())


def day_ends(rows: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """The last row of each trading day (the positions at that day's end), by date, in order."""
    ends: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        if "this_action" in row:
            ends[row["date"]] = row
    return dict(sorted(ends.items()))


def opening_row(rows: Sequence[Mapping[str, Any]], days: Sequence[str]) -> Mapping[str, Any] | None:
    """The row the book starts from: the first, when it records no action and precedes
    the trading days (a corrupt opening row skipped by a lenient read leaves none)."""
    if not rows or "this_action" in rows[0]:
        return None
    return rows[0] if not days or rows[0]["date"] < days[0] else None


def _finite(number: float) -> float | None:
    return number if math.isfinite(number) else None


def value_book(
    rows: Sequence[Mapping[str, Any]],
    book: PriceBook,
    memo: Memo | None = None,
    *,
    benchmark: str = BENCHMARK,
) -> Valuation:
    """The valuation of one book's usable rows (``ledger`` row shape) against ``book``, and
    of ``benchmark`` (the market's; QQQ for the US) over the same days.

    ``memo`` keeps the day values between calls (the dashboard keeps one per model)."""
    memo = memo if memo is not None else Memo()
    marks = memo.use(book)
    known, memo.values = memo.values, {}
    ends = day_ends(rows)
    days = tuple(ends)
    opening = opening_row(rows, days)
    if opening is None and not days:
        return Valuation(None, (), None, (), None, ())
    gaps: list[Gap] = []
    points: list[Point] = []
    start_value: float | None = None
    base: float | None = None
    if opening is not None:
        # Valued when the agent starts trading: the first trading day's open.
        later = [d for d in book.dates() if d > opening["date"]] if not days else [days[0]]
        first = later[0] if later else None
        opens = {
            s: p for s in opening["positions"] if first and (p := book.open(s, first)) is not None
        }
        start_value, missing = worth(opening["positions"], opens)
        if start_value is None:
            gaps.append(Gap(first or opening["date"], missing))
        base = book.open(benchmark, first) if first else None
        points.append(Point(opening["date"], start_value, start_value if base else None))
    else:
        base = mark_price(book, benchmark, days[0])
    last_mark: float | None = None
    for day in days:
        end = ends[day]
        hit = known.get(id(end))
        if hit is not None and hit[0] is end and hit[1] == day:
            value, missing = hit[2], hit[3]
        else:
            value, missing = worth(end["positions"], marks.on(day))
        memo.values[id(end)] = (end, day, value, missing)
        if value is None:
            gaps.append(Gap(day, missing))
        if opening is None and day == days[0]:
            start_value = value
        last_mark = marks.on(day).get(benchmark)
        scaled = None
        if last_mark is not None and base and start_value is not None:
            scaled = _finite(start_value * last_mark / base)
        points.append(Point(day, value, scaled))
    # Over at least one day past the start: a lone first day has no return to show.
    benchmark_return = None
    if len(points) > 1 and last_mark is not None and base:
        benchmark_return = _finite(last_mark / base - 1)
    start_date = opening["date"] if opening is not None else days[0]
    return Valuation(start_date, days, start_value, tuple(points), benchmark_return, tuple(gaps))


# --- metrics -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Performance:
    """The metric set of a model's book and of QQQ over the same days."""

    model: Metrics
    benchmark: Metrics

    def to_json(self) -> dict[str, object]:
        return {"model": self.model.to_json(), "benchmark": self.benchmark.to_json()}


def traded(rows: Sequence[Mapping[str, Any]], book: PriceBook) -> tuple[int, Figure]:
    """The number of trades in ``rows`` and the value they traded (buys and sells, each at
    its row's price, else the day's open); n/a naming the first trade with no price."""
    count, total = 0, []
    unpriced: str | None = None
    for row in rows:
        action = row.get("this_action")
        if not action or action.get("action") not in ("buy", "sell"):
            continue
        count += 1
        symbol, amount = action.get("symbol", ""), action.get("amount", 0)
        price = action.get("price")
        if not isinstance(price, int | float) or isinstance(price, bool):
            price = book.open(symbol, row["date"])
        if price is None or not math.isfinite(price):
            unpriced = unpriced or f"no price for the trade in {symbol} on {row['date']}"
            continue
        total.append(abs(amount) * price)
    if unpriced is not None:
        return count, Figure.na(unpriced)
    try:
        return count, Figure.of(math.fsum(total))
    except OverflowError:  # finite trades whose sum is not
        return count, Figure.na(TOO_LARGE)


def measure(
    valued: Valuation,
    rows: Sequence[Mapping[str, Any]],
    book: PriceBook,
    *,
    periods_per_year: float = PERIODS_PER_YEAR,
    risk_free_rate: float = 0.0,
    benchmark: str = BENCHMARK,
) -> Performance:
    """The metrics of the book ``valued`` from ``rows`` against ``book``, and the
    benchmark's (``benchmark``, the market's) over the same days: periods per year (the
    market's) and an annual risk-free rate (default 0, as upstream)."""
    points = [(p.date, p.value) for p in valued.series]
    unknown: dict[str, str] = {}
    for gap in valued.gaps:
        unknown.setdefault(gap.date, gap.reason)
    if valued.series and valued.series[0].value is None and valued.gaps:
        # The start's gap comes first, dated the day it is valued, not the opening row's day.
        unknown[valued.series[0].date] = valued.gaps[0].reason
    count, value = traded(rows, book)
    average = mean_value(points)
    if value.value is None:
        turnover = value
    elif average is None:
        day = next((d for d, v in points if v is None), None)
        why = f"no value on {day}: {unknown.get(day or '', 'the value is unknown')}"
        turnover = Figure.na(why if day else "no value: the book has no points")
    elif average <= 0:
        turnover = Figure.na("the average value is 0")
    else:
        turnover = Figure.of(value.value / average)
    model = series_metrics(
        points,
        periods_per_year=periods_per_year,
        risk_free_rate=risk_free_rate,
        unknown=unknown,
        trades=Figure(count),
        turnover=turnover,
    )
    held = Figure.na(f"{benchmark} is held, not traded")
    held_metrics = series_metrics(
        [(p.date, p.benchmark) for p in valued.series],
        periods_per_year=periods_per_year,
        risk_free_rate=risk_free_rate,
        unknown=dict.fromkeys(
            (p.date for p in valued.series if p.benchmark is None), f"no {benchmark} value"
        ),
        trades=held,
        turnover=held,
    )
    return Performance(model, held_metrics)
