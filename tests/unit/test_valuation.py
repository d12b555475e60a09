"""The one valuation: mark to market, the value per day, QQQ over the same days, returns,
and the strict rule for a holding with no price (the day's value is unknown and named)."""

from __future__ import annotations

import pytest

from ai_trader.market.pricebook import PriceBook
from ai_trader.valuation import Gap, mark_price, value_book, worth

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
