"""Fetch Alpha Vantage's daily series into ``daily_prices_<SYM>.json``, gently.

The free tier allows a few requests a minute and about 25 a day, so requests are spaced out,
rate-limit replies ("Note", "Information") are retried with backoff, symbols whose file is
already current are not asked for again (a restart costs no quota), and a bad reply never
replaces a good file: the rules of ``fetching``, which this module feeds.

A series (``Series``) is one Alpha Vantage function: its name, its extra query parameters,
the calendar its freshness is judged on and, when its reply is not already in our daily
shape, the transform into it. Two are defined:

* ``TIME_SERIES_DAILY`` (the US market): the reply is stored as it comes.
* ``DIGITAL_CURRENCY_DAILY`` (crypto): see ``crypto_daily_file`` for the mapping.
* ``TIME_SERIES_INTRADAY`` at 60min, regular hours (the US hourly market, ``us_hourly``):
  see ``hourly_file``.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from ai_trader.market.calendar import EVERY_DAY, NYSE, Calendar
from ai_trader.market.fetching import (
    LAST_REFRESHED_KEY,
    REQUEST_DEADLINE,
    Failed,
    FetchReport,
    Retryable,
    checked,
    fetch_order,
    fetch_symbols,
    is_current,
    json_object,
    send_within,
    stored_refresh,
)
from ai_trader.market.pricebook import HOURLY_KEY, META_KEY, SERIES_KEY

__all__ = [
    "DIGITAL_CURRENCY_DAILY",
    "LAST_REFRESHED_KEY",
    "TIME_SERIES_DAILY",
    "FetchReport",
    "Series",
    "crypto_daily_file",
    "fetch_all",
    "fetch_order",
    "is_current",
    "stored_refresh",
]

log = logging.getLogger(__name__)

SERVICE = "Alpha Vantage"

# A reply's JSON object -> our daily file for ``symbol``; Failed when it has not the shape.
Transform = Callable[[str, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Series:
    function: str  # the query's ``function``
    params: Mapping[str, str] = field(default_factory=dict)  # between symbol and apikey
    calendar: Calendar = NYSE  # the days its data has: freshness is judged on them
    transform: Transform | None = None  # None: the reply is our daily shape already


TIME_SERIES_DAILY = Series("TIME_SERIES_DAILY", {"outputsize": "compact"})

# The quote currency asked of DIGITAL_CURRENCY_DAILY: US dollars (see crypto_daily_file).
CRYPTO_MARKET = "USD"
CRYPTO_SERIES_KEY = "Time Series (Digital Currency Daily)"
CRYPTO_CODE_KEY = "2. Digital Currency Code"
CRYPTO_MARKET_KEY = "4. Market Code"
CRYPTO_REFRESHED_KEY = "6. Last Refreshed"
CRYPTO_SOURCE = (
    f"Alpha Vantage DIGITAL_CURRENCY_DAILY, market={CRYPTO_MARKET}: prices in US dollars, "
    "standing in for USDT"
)
_BAR_KEYS = ("1. open", "2. high", "3. low", "4. close", "5. volume")


def crypto_daily_file(symbol: str, reply: dict[str, Any]) -> dict[str, Any]:
    """A DIGITAL_CURRENCY_DAILY reply as our daily file (TIME_SERIES_DAILY's shape).

    The mapping:

    * The reply (Alpha Vantage's current shape): ``"Meta Data"`` with ``"2. Digital Currency
      Code"`` (the coin), ``"4. Market Code"`` (the quote currency asked for),
      ``"6. Last Refreshed"`` and ``"7. Time Zone"`` (UTC), and ``"Time Series (Digital
      Currency Daily)"``: ``YYYY-MM-DD`` -> ``"1. open"``, ``"2. high"``, ``"3. low"``,
      ``"4. close"``, ``"5. volume"``, strings, newest first. A day runs from 00:00 UTC.
    * Prices are quoted in US dollars (``market=USD``). The crypto market trades and counts
      money in USDT; Alpha Vantage has no USDT market, so USD stands in for USDT, one for one.
      That is the only approximation: a USDT price differs from the USD one by the stablecoin's
      deviation from its peg (a fraction of a percent in normal times).
    * The file: ``"Meta Data"`` with ``"2. Symbol"`` the coin, ``"3. Last Refreshed"`` the
      reply's own, ``"5. Time Zone"`` UTC and ``"6. Source"`` saying all this; ``"Time Series
      (Daily)"`` with the reply's bars, their strings unchanged, volume in coins.

    Failed when the reply is for another coin or another quote currency, or has not this shape
    (an older shape, with ``"1a. open (USD)"`` keys, included: a bar without ``"1. open"``).
    """
    meta = reply.get(META_KEY)
    series = reply.get(CRYPTO_SERIES_KEY)
    if not isinstance(meta, dict) or not isinstance(series, dict):
        raise Failed(f"unusable reply: no {META_KEY!r} and {CRYPTO_SERIES_KEY!r} objects")
    if meta.get(CRYPTO_CODE_KEY) != symbol:
        raise Failed(f"unusable reply: it names coin {meta.get(CRYPTO_CODE_KEY)!r}, not {symbol!r}")
    if meta.get(CRYPTO_MARKET_KEY) != CRYPTO_MARKET:
        raise Failed(
            f"unusable reply: its market is {meta.get(CRYPTO_MARKET_KEY)!r}, not {CRYPTO_MARKET!r}"
        )
    bars: dict[str, dict[str, Any]] = {}
    for day, bar in series.items():
        if not isinstance(bar, dict):
            raise Failed(f"unusable reply: the bar for {day} is not an object")
        bars[day] = {key: bar[key] for key in _BAR_KEYS if key in bar}
    return {
        META_KEY: {
            "1. Information": "Daily Prices (open, high, low, close) and Volumes",
            "2. Symbol": symbol,
            LAST_REFRESHED_KEY: meta.get(CRYPTO_REFRESHED_KEY, ""),
            "4. Output Size": "Full size",
            "5. Time Zone": "UTC",
            "6. Source": CRYPTO_SOURCE,
        },
        SERIES_KEY: bars,
    }


DIGITAL_CURRENCY_DAILY = Series(
    "DIGITAL_CURRENCY_DAILY", {"market": CRYPTO_MARKET}, EVERY_DAY, crypto_daily_file
)


INTERVAL = "60min"
HOURLY_SOURCE = "Alpha Vantage TIME_SERIES_INTRADAY, interval=60min, regular hours"


def hourly_file(slots: tuple[str, ...], symbol: str, reply: dict[str, Any]) -> dict[str, Any]:
    """A TIME_SERIES_INTRADAY reply (60min, ``extended_hours=false``) as an hourly market's
    file: the reply's own shape (``"Time Series (60min)"``, bars keyed
    ``YYYY-MM-DD HH:MM:SS`` in US/Eastern time, newest first), with only the bars at the
    market's ``slots`` kept (the times its agent acts at; a bar at another time, such as the
    16:00 one, is dropped, not moved) and ``"7. Source"`` added to its metadata.

    Failed when the reply is for another symbol or another interval, has not this shape, or
    has no bar at any of the slots."""
    meta = reply.get(META_KEY)
    series = reply.get(HOURLY_KEY)
    if not isinstance(meta, dict) or not isinstance(series, dict):
        raise Failed(f"unusable reply: no {META_KEY!r} and {HOURLY_KEY!r} objects")
    if meta.get("2. Symbol") != symbol:
        raise Failed(f"unusable reply: it names symbol {meta.get('2. Symbol')!r}, not {symbol!r}")
    interval = meta.get("4. Interval")
    if interval != INTERVAL:
        raise Failed(f"unusable reply: its interval is {interval!r}, not {INTERVAL!r}")
    bars = {moment: bar for moment, bar in series.items() if moment[11:] in slots}
    if not bars:
        raise Failed(f"unusable reply: no bar at the market's slots ({', '.join(slots)})")
    return {META_KEY: {**meta, "7. Source": HOURLY_SOURCE}, HOURLY_KEY: bars}


def intraday(slots: tuple[str, ...]) -> Series:
    """TIME_SERIES_INTRADAY at 60min for a market acting at ``slots`` (NYSE days)."""
    params = {"interval": INTERVAL, "outputsize": "full", "extended_hours": "false"}
    return Series("TIME_SERIES_INTRADAY", params, NYSE, partial(hourly_file, slots))


class _RedactApiKey(logging.Filter):
    """httpx logs every request URL at INFO, and Alpha Vantage takes the key in the query."""

    _pattern = re.compile(r"(apikey=)[^&\s\"']*", re.IGNORECASE)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "apikey=" in message.lower():
            record.msg = self._pattern.sub(r"\1***", message)
            record.args = ()
        return True


def _install_redaction() -> None:
    httpx_log = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactApiKey) for f in httpx_log.filters):
        httpx_log.addFilter(_RedactApiKey())


def _request(
    client: httpx.Client,
    base_url: str,
    symbol: str,
    api_key: str,
    deadline: float = REQUEST_DEADLINE,
    series: Series = TIME_SERIES_DAILY,
) -> dict[str, Any]:
    """One request; returns a valid payload in our daily shape or raises Retryable / Failed."""
    params = {"function": series.function, "symbol": symbol, **series.params, "apikey": api_key}
    status, body = send_within(client, "GET", base_url, deadline, params=params)
    payload = json_object(status, body)
    if "Error Message" in payload:
        raise Failed(str(payload["Error Message"]))
    for key in ("Note", "Information"):
        if key in payload:
            raise Retryable(f"rate limited: {payload[key]}")
    if series.transform is not None:
        payload = series.transform(symbol, payload)
    return checked(symbol, payload)


def fetch_all(
    symbols: Iterable[str],
    data_dir: Path,
    *,
    api_key: str,
    base_url: str,
    min_interval: float,
    today: date | None = None,
    client: httpx.Client | None = None,
    max_attempts: int = 5,
    backoff: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
    progress: bool = True,
    deadline: float = REQUEST_DEADLINE,
    series: Series = TIME_SERIES_DAILY,
) -> FetchReport:
    """Fetch ``series`` for every symbol whose file is not current; one symbol's failure
    never stops the rest.

    The exception: when a symbol exhausts its attempts on retryable replies (rate limit, network,
    server error), the service is treated as unavailable for this run and the remaining symbols
    are recorded as errors without being requested. Waiting minutes per symbol against an
    exhausted daily quota would only stall the start-up for hours.
    """
    _install_redaction()

    def request(http: httpx.Client, symbol: str) -> dict[str, Any]:
        return _request(http, base_url, symbol, api_key, deadline, series)

    return fetch_symbols(
        symbols,
        data_dir,
        request,
        service=SERVICE,
        min_interval=min_interval,
        calendar=series.calendar,
        secret=api_key,
        today=today,
        client=client,
        max_attempts=max_attempts,
        backoff=backoff,
        sleep=sleep,
        progress=progress,
    )
