"""Trading calendars: which days a market is open.

The rules:

* NYSE (the US market): weekdays, less the holidays of the ``holidays`` package's NYSE
  calendar (maintained, pure Python, special closures such as national days of mourning
  included) rather than a list of our own. Early closes (the day after Thanksgiving,
  Christmas Eve) are trading days: a daily bar exists for them.
* SSE (the Shanghai Stock Exchange, China A-shares): weekdays, less the holidays of the
  same package's ``XSHG`` calendar, which follows the exchange's published closures
  (Spring Festival, National Day golden week and the other public holidays, and the
  weekdays the State Council moves into them). A weekend is always closed, also the
  Saturdays and Sundays China works to make up a long holiday: the exchange does not
  open on those days.
* Every day (crypto): the market never closes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, timedelta


@functools.cache
def _holidays(market: str, year: int) -> frozenset[date]:
    import holidays  # about 60 ms to import: only when a calendar question is asked

    return frozenset(holidays.financial_holidays(market, years=year))


@dataclass(frozen=True)
class Calendar:
    """A market's sessions: ``holidays`` names the ``holidays`` package's financial
    calendar ("" for none), ``weekends`` whether Saturday and Sunday are closed."""

    name: str
    holidays: str = ""
    weekends: bool = True

    def is_trading_day(self, day: date) -> bool:
        if self.weekends and day.weekday() >= 5:
            return False
        return not self.holidays or day not in _holidays(self.holidays, day.year)

    def days_ending(self, end: date, count: int) -> list[date]:
        """The last ``count`` trading days on or before ``end``, oldest first."""
        days: list[date] = []
        day = end
        while len(days) < count:
            if self.is_trading_day(day):
                days.append(day)
            day -= timedelta(days=1)
        days.reverse()
        return days

    def last_day_before(self, today: date) -> date:
        day = today - timedelta(days=1)
        while not self.is_trading_day(day):
            day -= timedelta(days=1)
        return day


NYSE = Calendar("NYSE", holidays="NYSE")
SSE = Calendar("SSE", holidays="XSHG")
EVERY_DAY = Calendar("every day", weekends=False)


def is_trading_day(day: date) -> bool:
    """Whether the NYSE is open on ``day``."""
    return NYSE.is_trading_day(day)


def trading_days_ending(end: date, count: int) -> list[date]:
    """The last ``count`` NYSE trading days on or before ``end``, oldest first."""
    return NYSE.days_ending(end, count)


def last_trading_day_before(today: date) -> date:
    return NYSE.last_day_before(today)
