"""A market: everything the runner, the services, the valuation and the report ask about
the market a run trades. One frozen object per market and frequency; a market is added by
one module under ``market/`` that builds one (``markets`` lists them).

The rules a market states (each enforced where named):

* ``symbols`` trade, ``benchmark`` is held (never traded) and is what returns are compared
  with (the runner, the valuation, the report);
* ``calendar`` says which days the market is open (the sample, the fetch's freshness);
  ``slots`` the times of day an hourly market acts at, each the time of a bar
  (``YYYY-MM-DD HH:MM:SS``, the exchange's local time, as upstream's hourly books write
  it); a daily market has none and acts once a day. A slot sees its own bar's open only,
  and earlier slots' whole bars: never a later slot's (the prices service);
* ``currency`` labels every money figure; ``initial_cash`` is the starting cash a config
  that sets none gets;
* ``lot_size``: a buy is a whole number of lots, a sell too unless it sells the whole
  holding (the odd remainder goes in one sale) (the trade service, through the ledger);
* ``settlement_days``: 0 (T+0) lets a holding bought today be sold today; 1 (T+1) does not;
* ``decimals``: 0 for whole shares, else the number of decimal places an amount may have
  (fractional coins);
* ``periods_per_year`` annualises the metrics (``metrics``);
* ``data_source`` says where real prices come from; ``sample`` how the offline, clearly
  SYNTHETIC sample is made when there is no key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from ai_trader.market.calendar import Calendar

FREQUENCIES = ("daily", "hourly")
# The price series' key in a price file and in merged.jsonl, by frequency: Alpha Vantage's
# own (TIME_SERIES_DAILY, TIME_SERIES_INTRADAY at 60min), as upstream's files keep them.
SERIES_KEYS = {"daily": "Time Series (Daily)", "hourly": "Time Series (60min)"}


@dataclass(frozen=True)
class SampleSpec:
    """How a market's offline sample is drawn (``sample``): price levels, spreads and
    volumes of its symbols, and how its metadata labels the series."""

    note: str  # "6. Note": says SYNTHETIC and what to set for real prices
    time_zone: str  # "5. Time Zone"
    benchmark_price: float
    benchmark_sigma: float
    benchmark_volume: int
    low: float  # a symbol's first price is drawn between low and low + span
    span: float
    days: int = 90  # trading days the sample covers (ending 2025-10-31)
    scale: float = 1.0  # the symbols' moves a bar, against a day's (smaller for a slot)


@dataclass(frozen=True)
class Words:
    """What a market's services, tools and prompt call its things. A market that sets none
    gets them made from its fields (``Market.words``); the US daily market keeps the words
    its tools had before there were markets, on which recorded runs are keyed."""

    tradable: str  # what trades, in "only ... trade": "the SSE-50"
    symbol: str  # the symbol argument's description
    amount: str  # the amount argument's description
    trade_service: str  # the trade service's description
    prices_service: str  # the prices service's description
    buy: str  # the buy tool's description
    sell: str  # the sell tool's description
    trading: str  # the prompt's sentence on what the agent trades, and how


@dataclass(frozen=True)
class Market:
    name: str  # as a config names it: "us", "cn", "crypto"
    frequency: str  # "daily" or "hourly"
    title: str  # the universe in words: "NASDAQ-100"
    symbols: tuple[str, ...]
    benchmark: str
    calendar: Calendar
    currency: str
    initial_cash: float
    periods_per_year: float
    data_source: str
    sample: SampleSpec
    symbol_pattern: str  # a symbol as the tools accept it (a regular expression)
    symbol_example: str
    slots: tuple[str, ...] = ()  # an hourly market's times of day, "HH:MM:SS"
    lot_size: int = 1
    settlement_days: int = 0
    decimals: int = 0
    unit: str = "shares"  # what an amount counts: "shares", "coins"
    # The fetcher of real prices ("alphavantage"); None: the offline sample only.
    source: str | None = None
    # Whether the report and the dashboard name the currency; the US default's output
    # predates markets and stays as it was (dollars, unnamed).
    shows_currency: bool = True
    wording: Words | None = None  # None: ``words`` makes them from the fields above

    @property
    def words(self) -> Words:
        if self.wording is not None:
            return self.wording
        rules, now = self.rules_in_words(), "this slot" if self.slots else "today"
        costs = "the run's slippage and commission, if it has any"
        return Words(
            tradable=f"the {self.title}",
            symbol=f"Symbol, e.g. {self.symbol_example} ({self.title} and {self.benchmark})",
            amount=f"{'Amount' if self.fractional else 'Number'} of {self.unit}: {rules}",
            trade_service=f"Buy and sell {self.title} at {now}'s open price, plus the run's "
            f"costs ({rules}); cash in {self.currency}.",
            prices_service=f"{self.frequency.capitalize()} prices of the {self.title} and "
            f"{self.benchmark} from local data, in {self.currency}.",
            buy=f"Buy `amount` {self.unit} of `symbol` at {now}'s open, in {self.currency} "
            f"({rules}; plus {costs}). Returns the fill price, any fee and the new positions.",
            sell=f"Sell `amount` {self.unit} of `symbol` at {now}'s open, in {self.currency} "
            f"({rules}; plus {costs}). Returns the fill price, any fee and the new positions.",
            trading=f"You trade the {self.title} through the tools, in {self.currency}: buy "
            f"and sell ({rules})",
        )

    @property
    def all_symbols(self) -> tuple[str, ...]:
        """The traded symbols and the benchmark: every price file the market needs."""
        return (*self.symbols, self.benchmark)

    @property
    def slots_per_day(self) -> int:
        return len(self.slots) or 1

    @property
    def series_key(self) -> str:
        return SERIES_KEYS[self.frequency]

    def moments(self, days: list[date]) -> list[str]:
        """The keys of the bars of ``days``: each day (daily), or each of its slots."""
        if not self.slots:
            return [day.isoformat() for day in days]
        return [f"{day.isoformat()} {slot}" for day in days for slot in self.slots]

    @property
    def fractional(self) -> bool:
        return self.decimals > 0

    @property
    def key(self) -> str:
        """How a run context and ``serve --market`` name it: the name for a daily market
        (``us``, ``cn``), ``name-frequency`` otherwise (``us-hourly``)."""
        return self.name if self.frequency == "daily" else f"{self.name}-{self.frequency}"

    def rules_in_words(self) -> str:
        """The trading rules in one line, for a tool's description and the docs."""
        parts = []
        if self.fractional:
            parts.append(f"fractional amounts up to {self.decimals} decimal places")
        else:
            parts.append(f"whole {self.unit}")
        if self.lot_size > 1:
            parts.append(f"buys in lots of {self.lot_size}")
        if self.settlement_days:
            parts.append(f"T+{self.settlement_days}: what is bought today cannot be sold today")
        return "; ".join(parts)
