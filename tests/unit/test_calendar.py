"""The NYSE trading calendar, from a maintained holiday library."""

from __future__ import annotations

from datetime import date

import pytest

from ai_trader.market.calendar import (
    is_trading_day,
    last_trading_day_before,
    trading_days_ending,
)


@pytest.mark.parametrize(
    "closed",
    [
        date(2025, 1, 1),  # New Year's Day
        date(2025, 1, 9),  # National Day of Mourning (President Carter)
        date(2025, 4, 18),  # Good Friday
        date(2025, 7, 4),  # Independence Day
        date(2025, 9, 1),  # Labor Day
        date(2025, 11, 27),  # Thanksgiving
        date(2025, 10, 25),  # a Saturday
    ],
)
def test_the_market_is_closed_on_holidays_and_weekends(closed: date):
    assert not is_trading_day(closed)


@pytest.mark.parametrize("early_close", [date(2025, 7, 3), date(2025, 11, 28), date(2025, 12, 24)])
def test_an_early_close_is_a_trading_day(early_close: date):
    assert is_trading_day(early_close)


def test_trading_days_ending_skips_closed_days():
    assert trading_days_ending(date(2025, 9, 2), 3) == [
        date(2025, 8, 28),
        date(2025, 8, 29),
        date(2025, 9, 2),
    ]


def test_the_last_trading_day_before_a_tuesday_after_labor_day_is_the_friday():
    assert last_trading_day_before(date(2025, 9, 2)) == date(2025, 8, 29)
