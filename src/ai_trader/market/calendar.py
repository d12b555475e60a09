"""The NYSE trading calendar: which days the market is open.

The holidays come from the ``holidays`` package's NYSE calendar (maintained, pure Python,
special closures such as national days of mourning included) rather than a list of our
own. Early closes (the day after Thanksgiving, Christmas Eve) are trading days: a daily
bar exists for them, so for daily prices they are ordinary days.
"""

from __future__ import annotations

import functools
from datetime import date, timedelta


@functools.cache
def _closed(year: int) -> frozenset[date]:
    import holidays  # about 60 ms to import: only when a calendar question is asked

    return frozenset(holidays.financial_holidays("NYSE", years=year))


def is_trading_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _closed(day.year)


def trading_days_ending(end: date, count: int) -> list[date]:
    """The last ``count`` trading days on or before ``end``, oldest first."""
    days: list[date] = []
    day = end
    while len(days) < count:
        if is_trading_day(day):
            days.append(day)
        day -= timedelta(days=1)
    days.reverse()
    return days


def last_trading_day_before(today: date) -> date:
    day = today - timedelta(days=1)
    while not is_trading_day(day):
        day -= timedelta(days=1)
    return day
