"""The one valuation: mark to market, the value per day, QQQ over the same days, returns,
and the strict rule for a holding with no price (the day's value is unknown and named)."""

from __future__ import annotations

import itertools
import json
import math
import statistics
from fractions import Fraction

import pytest

from ai_trader.market.pricebook import PriceBook
from ai_trader.valuation import Gap, mark_price, measure, value_book, worth

D0, D1, D2, D3 = "2025-10-01", "2025-10-02", "2025-10-03", "2025-10-06"


def bars(**series: dict[str, tuple[float, float | None]]) -> PriceBook:
    """A book from ``SYMBOL={day: (open, close or None)}``."""
    return PriceBook(
        {
            symbol: {
                day: {"open": o} | ({"close": c} if c is not None else {})
                for day, (o, c) in days.items()
            }
            for symbol, days in series.items()
        }
    )


QQQ = {D0: (99.0, 100.0), D1: (100.0, 110.0), D2: (110.0, 105.0), D3: (120.0, None)}


def opening(cash: float, **held: float) -> dict:
    return {"date": D0, "id": 0, "positions": {**held, "CASH": cash}}


def day(date: str, cash: float, action: str = "no_trade", **held: float) -> dict:
    return {
        "date": date,
        "id": 1,
        "this_action": {"action": action, "symbol": "", "amount": 0},
        "positions": {**held, "CASH": cash},
    }


def test_the_mark_is_the_close_else_the_open_of_the_newest_day():
    book = bars(AAA={D1: (10.0, 12.0), D3: (13.0, None)})
    assert mark_price(book, "AAA", D1) == 12.0
    assert mark_price(book, "AAA", D3) == 13.0
    assert mark_price(book, "AAA", D2) is None  # no older price stands in


def test_worth_is_cash_plus_each_holding_at_its_price():
    value, missing = worth({"A": 2, "B": 0, "CASH": 10.0}, {"A": 5.0})
    assert (value, missing) == (20.0, ())


def test_worth_of_a_holding_without_a_price_is_unknown_and_names_it():
    assert worth({"B": 1, "A": 2, "CASH": 10.0}, {}) == (None, ("A", "B"))


def test_worth_that_overflows_is_unknown_not_infinite():
    assert worth({"A": 1e15, "CASH": 0.0}, {"A": 1e300}) == (None, ())


def test_the_start_is_the_opening_row_at_the_first_days_open():
    book = bars(AAA={D1: (10.0, 12.0)}, QQQ=QQQ)
    valued = value_book([opening(100.0, AAA=2), day(D1, 100.0, AAA=2)], book)
    assert valued.initial_value == 120.0  # 100 + 2 * the open 10
    assert [(p.date, p.value) for p in valued.series] == [(D0, 120.0), (D1, 124.0)]


def test_each_day_is_valued_at_its_close_and_qqq_is_scaled_to_the_start():
    book = bars(AAA={D1: (10.0, 12.0), D2: (12.0, 11.0), D3: (13.0, None)}, QQQ=QQQ)
    rows = [opening(1000.0), day(D1, 900.0, "buy", AAA=10), day(D2, 900.0, AAA=10)]
    rows.append(day(D3, 1030.0, "sell", AAA=0))
    valued = value_book(rows, book)
    assert [(p.value, p.benchmark) for p in valued.series] == [
        (1000.0, 1000.0),
        (1020.0, 1100.0),
        (1010.0, 1050.0),
        (1030.0, 1200.0),
    ]
    assert valued.days == (D1, D2, D3)
    assert valued.total_return == pytest.approx(0.03)
    assert valued.benchmark_return == pytest.approx(0.2)  # QQQ 120 over its D1 open 100


def test_a_day_with_a_holding_that_has_no_price_is_unknown_and_named():
    book = bars(AAA={D1: (10.0, 12.0), D3: (13.0, None)}, QQQ=QQQ)  # no AAA bar on D2
    rows = [opening(100.0), day(D1, 90.0, "buy", AAA=1), day(D2, 90.0, AAA=1)]
    rows.append(day(D3, 90.0, AAA=1))
    valued = value_book(rows, book)
    assert [p.value for p in valued.series] == [100.0, 102.0, None, 103.0]
    assert valued.series[2].benchmark == 105.0  # QQQ itself is priced that day
    assert valued.gaps == (Gap(D2, ("AAA",)),)
    assert valued.gaps[0].reason == "no price for AAA"
    # The last day is priced, so the run has a final value and a return.
    assert (valued.final_value, valued.unpriced) == (103.0, ())


def test_an_unpriced_last_day_leaves_the_final_value_and_return_unknown():
    book = bars(AAA={D1: (10.0, 12.0)}, QQQ=QQQ)
    valued = value_book([opening(100.0), day(D1, 90.0, "buy", AAA=1), day(D2, 90.0, AAA=1)], book)
    assert (valued.final_value, valued.total_return) == (None, None)
    assert valued.unpriced == ("AAA",)
    assert valued.benchmark_return == pytest.approx(0.05)  # QQQ is priced: 105 / 100


def test_the_positions_of_a_day_are_those_of_its_last_row():
    book = bars(AAA={D1: (10.0, 12.0)}, QQQ=QQQ)
    rows = [opening(100.0), day(D1, 90.0, "buy", AAA=1), day(D1, 80.0, "buy", AAA=2)]
    assert value_book(rows, book).final_value == 104.0


def test_a_book_with_only_its_opening_row_is_one_point_and_no_benchmark_return():
    valued = value_book([opening(250.0)], bars(QQQ=QQQ))
    assert [(p.date, p.value, p.benchmark) for p in valued.series] == [(D0, 250.0, 250.0)]
    assert (valued.days, valued.total_return, valued.benchmark_return) == ((), 0.0, None)


def test_without_an_opening_row_the_first_day_is_the_start():
    book = bars(AAA={D1: (10.0, 12.0), D2: (12.0, 15.0)}, QQQ=QQQ)
    valued = value_book([day(D1, 90.0, "buy", AAA=1), day(D2, 90.0, AAA=1)], book)
    assert valued.start_date == D1
    assert valued.initial_value == 102.0
    assert [p.benchmark for p in valued.series] == [102.0, pytest.approx(102.0 * 105 / 110)]


def test_no_rows_is_no_valuation():
    valued = value_book([], bars(QQQ=QQQ))
    assert (valued.series, valued.final_value, valued.total_return) == ((), None, None)


def test_the_open_stands_in_for_the_close_only_on_the_newest_day_of_the_data():
    book = PriceBook({"AAA": {"2025-10-30": {"open": 1.0}, "2025-10-31": {"open": 2.0}}})
    assert mark_price(book, "AAA", "2025-10-31") == 2.0
    assert mark_price(book, "AAA", "2025-10-30") is None  # a past day's open is no close


# --- the metrics of a valued book, and of QQQ over the same days ---------------------------


def returns_of(values: list[float]) -> list[Fraction]:
    return [Fraction(b) / Fraction(a) - 1 for a, b in itertools.pairwise(values)]


def test_a_book_valued_end_to_end_has_its_metrics_and_qqqs_over_the_same_days():
    # The book of test_each_day_is_valued_at_its_close...: buy 10 AAA at D1's open 10, sell
    # them at D3's open 13. Values 1000, 1020, 1010, 1030; QQQ 1000, 1100, 1050, 1200.
    book = bars(AAA={D1: (10.0, 12.0), D2: (12.0, 11.0), D3: (13.0, None)}, QQQ=QQQ)
    rows = [opening(1000.0), traded(D1, 900.0, "buy", "AAA", 10, AAA=10)]
    rows += [day(D2, 900.0, AAA=10), traded(D3, 1030.0, "sell", "AAA", 10, AAA=0)]
    got = measure(value_book(rows, book), rows, book)

    for metrics, values in (
        (got.model, [1000.0, 1020.0, 1010.0, 1030.0]),
        (got.benchmark, [1000.0, 1100.0, 1050.0, 1200.0]),
    ):
        r = returns_of(values)
        mean, sd = statistics.fmean(map(float, r)), math.sqrt(statistics.variance(r))
        assert metrics.periods == 3
        assert metrics.cumulative_return.value == pytest.approx(values[-1] / 1000 - 1, abs=1e-12)
        annual = (values[-1] / 1000) ** (252 / 3) - 1
        assert metrics.annualised_return.value == pytest.approx(annual, rel=1e-9)
        assert metrics.volatility.value == pytest.approx(sd * math.sqrt(252), rel=1e-9)
        assert metrics.sharpe.value == pytest.approx(mean / sd * math.sqrt(252), rel=1e-9)
        downside = math.sqrt(float(r[1]) ** 2 / 3)  # one falling day, D2
        assert metrics.sortino.value == pytest.approx(mean / downside * math.sqrt(252), rel=1e-9)
        assert metrics.max_drawdown.value == pytest.approx(float(r[1]), abs=1e-12)
        assert (metrics.drawdown_peak, metrics.drawdown_trough) == (D1, D2)
        assert metrics.calmar.value == pytest.approx(annual / -float(r[1]), rel=1e-9)
        assert metrics.win_rate.value == pytest.approx(2 / 3, abs=1e-12)
        assert metrics.average_loss.value == pytest.approx(float(r[1]), abs=1e-12)
    assert got.model.trades.value == 2
    # Bought 10 * 10 and sold 10 * 13, over the average value of the four points.
    assert got.model.turnover.value == pytest.approx(230 / 1015, rel=1e-12)
    assert got.benchmark.trades.to_json() == {"value": None, "na": "QQQ is held, not traded"}
    assert got.benchmark.turnover.reason == "QQQ is held, not traded"
    json.dumps(got.to_json(), allow_nan=False)


def traded(date: str, cash: float, action: str, symbol: str, amount: int, **held: float) -> dict:
    row = day(date, cash, action, **held)
    row["this_action"] = {"action": action, "symbol": symbol, "amount": amount}
    return row


def test_a_trade_fills_at_the_price_its_row_records_else_the_days_open():
    book = bars(AAA={D1: (10.0, 12.0), D2: (12.0, 11.0)}, QQQ=QQQ)
    rows = [opening(1000.0), traded(D1, 900.0, "buy", "AAA", 10, AAA=10)]
    rows.append(traded(D2, 1011.0, "sell", "AAA", 10, AAA=0))
    rows[-1]["this_action"]["price"] = 11.1  # a recorded fill, not D2's open of 12
    got = measure(value_book(rows, book), rows, book).model
    average = (1000.0 + 1020.0 + 1011.0) / 3
    assert got.turnover.value == pytest.approx((100 + 111) / average, rel=1e-12)


def test_a_trade_with_no_price_leaves_the_turnover_na_and_is_still_counted():
    book = bars(AAA={D1: (10.0, 12.0), D2: (12.0, 11.0)}, QQQ=QQQ)
    rows = [opening(1000.0), traded(D1, 900.0, "buy", "AAA", 10, AAA=10)]
    rows.append(traded(D2, 900.0, "buy", "ZZZ", 1, AAA=10))  # no ZZZ in the book at all
    got = measure(value_book(rows, book), rows, book).model
    assert got.trades.value == 2
    assert got.turnover.reason == f"no price for the trade in ZZZ on {D2}"


def test_a_gap_in_the_book_names_its_day_and_qqq_still_has_every_figure():
    book = bars(AAA={D1: (10.0, 12.0), D3: (13.0, None)}, QQQ=QQQ)  # no AAA bar on D2
    rows = [opening(100.0), traded(D1, 90.0, "buy", "AAA", 1, AAA=1), day(D2, 90.0, AAA=1)]
    rows.append(day(D3, 90.0, AAA=1))
    got = measure(value_book(rows, book), rows, book)
    why = f"no value on {D2}: no price for AAA"
    assert (got.model.volatility.reason, got.model.turnover.reason) == (why, why)
    assert got.model.cumulative_return.value == pytest.approx(0.03, abs=1e-12)
    assert got.benchmark.volatility.value is not None  # QQQ is priced every day
    assert got.model.trades.value == 1


def test_a_book_with_only_its_opening_row_has_no_period_and_no_trades():
    got = measure(value_book([opening(250.0)], bars(QQQ=QQQ)), [opening(250.0)], bars(QQQ=QQQ))
    assert got.model.periods == 0
    assert got.model.cumulative_return.reason == "no period: the series has fewer than 2 points"
    assert got.model.trades.value == 0  # a true 0: the book traded nothing
    assert got.model.turnover.value == 0.0


def test_the_risk_free_rate_and_the_year_are_passed_through():
    book = bars(AAA={D1: (10.0, 12.0), D2: (12.0, 11.0), D3: (13.0, None)}, QQQ=QQQ)
    rows = [opening(1000.0), traded(D1, 900.0, "buy", "AAA", 10, AAA=10)]
    rows += [day(D2, 900.0, AAA=10), day(D3, 900.0, AAA=10)]
    got = measure(value_book(rows, book), rows, book, periods_per_year=365, risk_free_rate=0.04)
    values = [1000.0, 1020.0, 1010.0, 1030.0]
    r = [float(x) for x in returns_of(values)]
    rf = 1.04 ** (1 / 365) - 1
    sharpe = (statistics.fmean(r) - rf) / statistics.stdev(r) * math.sqrt(365)
    assert got.model.sharpe.value == pytest.approx(sharpe, rel=1e-9)
    assert (got.model.periods_per_year, got.benchmark.risk_free_rate) == (365, 0.04)


def test_an_unknown_start_is_named_with_its_reason():
    book = bars(AAA={D2: (10.0, 12.0)}, QQQ=QQQ)  # AAA has no bar on D1, the first day
    rows = [opening(0.0, AAA=1), day(D1, 0.0, AAA=1), day(D2, 0.0, AAA=1)]
    got = measure(value_book(rows, book), rows, book).model
    assert got.cumulative_return.reason == f"no value on {D0}: no price for AAA"
    assert got.turnover.reason == f"no value on {D0}: no price for AAA"


def test_traded_value_too_large_for_a_float_is_na():
    book = bars(AAA={D1: (1e300, 1e300)}, QQQ=QQQ)
    rows = [opening(0.0), traded(D1, 0.0, "buy", "AAA", 1), traded(D1, 0.0, "buy", "AAA", 1)]
    for row in rows[1:]:
        row["this_action"]["price"] = 1.7e308
    got = measure(value_book(rows, book), rows, book).model
    assert (got.trades.value, got.turnover.reason) == (2, "the result is too large to be a number")


def test_a_value_is_the_exactly_rounded_sum_on_every_python():
    # 0.1 ten times: sum() gives 0.9999999999999999 on 3.11 and 1.0 on 3.12+; the value
    # of a book must not depend on the Python that values it.
    positions = {f"S{i}": 1 for i in range(10)} | {"CASH": 0.0}
    value, missing = worth(positions, {f"S{i}": 0.1 for i in range(10)})
    assert (value, missing) == (1.0, ())
