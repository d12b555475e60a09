"""Alpha Vantage TIME_SERIES_DAILY, as https://www.alphavantage.co/query answers it."""

from __future__ import annotations

import random
import zlib
from datetime import date, timedelta
from typing import Any

from .state import State

INVALID_CALL = (
    "Invalid API call. Please retry or visit the documentation "
    "(https://www.alphavantage.co/documentation/) for TIME_SERIES_DAILY."
)
MISSING_KEY = (
    "the parameter apikey is invalid or missing. Please claim your free API key on "
    "(https://www.alphavantage.co/support/#api-key). It should take less than 20 seconds."
)
NOTE = (
    "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute "
    "and 500 calls per day. Please visit https://www.alphavantage.co/premium/ if you would like "
    "to target a higher API call frequency."
)
INFORMATION = (
    "We have detected your API key as DEMO and our standard API rate limit is 25 requests per "
    "day. Please subscribe to any of the premium plans at https://www.alphavantage.co/premium/ "
    "to instantly remove all daily rate limits."
)


def last_weekday_before(today: date) -> date:
    day = today - timedelta(days=1)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def series(symbol: str, last: date, count: int) -> dict[str, dict[str, str]]:
    """``count`` weekday bars ending at ``last``, newest first; the prices depend on the symbol."""
    days: list[date] = []
    day = last
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day -= timedelta(days=1)
    rng = random.Random(zlib.crc32(symbol.encode()))  # noqa: S311 - deterministic on purpose
    price = 20.0 + rng.random() * 480.0
    bars: dict[str, dict[str, str]] = {}
    for day in reversed(days):
        open_ = round(price * (1 + (rng.random() - 0.5) * 0.01), 4)
        close = round(open_ * (1 + (rng.random() - 0.5) * 0.04), 4)
        high = round(max(open_, close) * (1 + rng.random() * 0.01), 4)
        low = round(min(open_, close) * (1 - rng.random() * 0.01), 4)
        bars[day.isoformat()] = {
            "1. open": f"{open_:.4f}",
            "2. high": f"{high:.4f}",
            "3. low": f"{low:.4f}",
            "4. close": f"{close:.4f}",
            "5. volume": str(int(1_000_000 + rng.random() * 50_000_000)),
        }
        price = close
    return dict(reversed(bars.items()))


def handle(state: State, params: dict[str, str]) -> tuple[int, Any]:
    symbol = params.get("symbol", "")
    with state.lock:
        state.av_requests += 1
        seen = state.av_by_symbol.get(symbol, 0)
        state.av_by_symbol[symbol] = seen + 1
        scenario = state.scenario
        known = symbol in scenario.get("symbols", [])
        http_errors = int(scenario.get("http_error", {}).get(symbol, 0))
        notes = int(scenario.get("rate_limit", {}).get(symbol, 0))
        infos = int(scenario.get("information", {}).get(symbol, 0))
        last_refreshed = scenario.get("last_refreshed")
    if not params.get("apikey"):
        return 200, {"Error Message": MISSING_KEY}
    # The scripted failures come first, in a fixed order, counted per symbol.
    if seen < http_errors:
        return 503, "<html><body><h1>503 Service Unavailable</h1></body></html>"
    if seen < http_errors + notes:
        return 200, {"Note": NOTE}
    if seen < http_errors + notes + infos:
        return 200, {"Information": INFORMATION}
    if params.get("function") != "TIME_SERIES_DAILY" or not known:
        return 200, {"Error Message": INVALID_CALL}
    full = params.get("outputsize") == "full"
    last = (
        date.fromisoformat(last_refreshed) if last_refreshed else last_weekday_before(date.today())
    )
    return 200, {
        "Meta Data": {
            "1. Information": "Daily Prices (open, high, low, close) and Volumes",
            "2. Symbol": symbol,
            "3. Last Refreshed": last.isoformat(),
            "4. Output Size": "Full size" if full else "Compact",
            "5. Time Zone": "US/Eastern",
        },
        "Time Series (Daily)": series(symbol, last, 250 if full else 100),
    }
