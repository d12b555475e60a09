"""Alpha Vantage TIME_SERIES_DAILY, TIME_SERIES_INTRADAY (60min), DIGITAL_CURRENCY_DAILY and
NEWS_SENTIMENT, as https://www.alphavantage.co/query answers them."""

from __future__ import annotations

import copy
import random
import zlib
from datetime import UTC, date, datetime, timedelta
from typing import Any

from .state import State

INVALID_CALL = (
    "Invalid API call. Please retry or visit the documentation "
    "(https://www.alphavantage.co/documentation/) for TIME_SERIES_DAILY."
)
INVALID_CRYPTO_CALL = INVALID_CALL.replace("TIME_SERIES_DAILY", "DIGITAL_CURRENCY_DAILY")
INVALID_INTRADAY_CALL = INVALID_CALL.replace("TIME_SERIES_DAILY", "TIME_SERIES_INTRADAY")
# The intraday intervals the real API takes.
INTERVALS = ("1min", "5min", "15min", "30min", "60min")
# DIGITAL_CURRENCY_DAILY's markets (physical currencies) the stand-in knows, by code.
MARKET_NAMES = {"USD": "United States Dollar", "EUR": "Euro", "CNY": "Chinese Yuan"}
COIN_NAMES = {
    "BTC": "Bitcoin", "ETH": "Ethereum", "XRP": "Ripple", "SOL": "Solana", "BNB": "Binance Coin",
    "DOGE": "Dogecoin", "ADA": "Cardano", "LINK": "ChainLink", "LTC": "Litecoin", "DOT": "Polkadot",
}  # fmt: skip
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


NEWS_API = "https://www.alphavantage.co/documentation#newsapi"
NO_ARTICLES = (
    f"No articles found. Please adjust the time range or refer to the API documentation "
    f"{NEWS_API} and try again."
)
INVALID_INPUTS = f"Invalid inputs. Please refer to the API documentation {NEWS_API} and try again."
SENTIMENT_DEFINITION = (
    "x <= -0.35: Bearish; -0.35 < x <= -0.15: Somewhat-Bearish; -0.15 < x < 0.15: Neutral; "
    "0.15 <= x < 0.35: Somewhat_Bullish; x >= 0.35: Bullish"
)
RELEVANCE_DEFINITION = "0 < x <= 1, with a higher score indicating higher relevance."
# The topics parameter's names, and how the feed's articles name them.
TOPIC_NAMES = {
    "blockchain": "Blockchain",
    "earnings": "Earnings",
    "ipo": "IPO",
    "mergers_and_acquisitions": "Mergers & Acquisitions",
    "financial_markets": "Financial Markets",
    "economy_fiscal": "Economy - Fiscal",
    "economy_monetary": "Economy - Monetary",
    "economy_macro": "Economy - Macro",
    "energy_transportation": "Energy & Transportation",
    "finance": "Finance",
    "life_sciences": "Life Sciences",
    "manufacturing": "Manufacturing",
    "real_estate": "Real Estate & Construction",
    "retail_wholesale": "Retail & Wholesale",
    "technology": "Technology",
}
WINDOW_FORMAT = "%Y%m%dT%H%M"


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


def hourly_series(symbol: str, last: date, days: int, extended: bool) -> dict[str, dict[str, str]]:
    """60min bars of ``days`` weekdays ending at ``last``, newest first, keyed by the hour in
    US/Eastern time: 10:00 to 16:00 in regular hours, 04:00 to 20:00 with extended hours."""
    hours = range(4, 21) if extended else range(10, 17)
    rng = random.Random(zlib.crc32(f"hourly:{symbol}".encode()))  # noqa: S311 - deterministic
    price = 20.0 + rng.random() * 480.0
    bars: dict[str, dict[str, str]] = {}
    for day in reversed(list(series(symbol, last, days))):
        for hour in hours:
            open_ = round(price * (1 + (rng.random() - 0.5) * 0.004), 4)
            close = round(open_ * (1 + (rng.random() - 0.5) * 0.01), 4)
            bars[f"{day} {hour:02d}:00:00"] = {
                "1. open": f"{open_:.4f}",
                "2. high": f"{max(open_, close) * 1.002:.4f}",
                "3. low": f"{min(open_, close) * 0.998:.4f}",
                "4. close": f"{close:.4f}",
                "5. volume": str(int(100_000 + rng.random() * 5_000_000)),
            }
            price = close
    return dict(reversed(bars.items()))


def time_series_intraday(symbol: str, last: date, params: dict[str, str]) -> dict[str, Any]:
    """TIME_SERIES_INTRADAY of a known symbol: the last 20 weekdays of bars at ``interval``
    (only 60min is drawn; the other real intervals are refused here as unknown)."""
    interval = params.get("interval", "")
    if interval != "60min":
        return {"Error Message": INVALID_INTRADAY_CALL}
    extended = params.get("extended_hours", "true") != "false"
    bars = hourly_series(symbol, last, 20, extended)
    return {
        "Meta Data": {
            "1. Information": "Intraday (60min) open, high, low, close prices and volume",
            "2. Symbol": symbol,
            "3. Last Refreshed": max(bars),
            "4. Interval": interval,
            "5. Output Size": "Full size" if params.get("outputsize") == "full" else "Compact",
            "6. Time Zone": "US/Eastern",
        },
        "Time Series (60min)": bars,
    }


def crypto_series(symbol: str, last: date, first: date) -> dict[str, dict[str, str]]:
    """One bar for every day from ``first`` to ``last``, newest first, in the current reply's
    shape (plain ``"1. open"`` keys in the market's currency, strings with 8 decimals)."""
    rng = random.Random(zlib.crc32(f"coin:{symbol}".encode()))  # noqa: S311 - deterministic
    price = 0.2 + rng.random() * 60_000.0
    bars: dict[str, dict[str, str]] = {}
    day = first
    while day <= last:
        open_ = price * (1 + (rng.random() - 0.5) * 0.002)
        close = open_ * (1 + (rng.random() - 0.5) * 0.06)
        high = max(open_, close) * (1 + rng.random() * 0.02)
        low = min(open_, close) * (1 - rng.random() * 0.02)
        bars[day.isoformat()] = {
            "1. open": f"{open_:.8f}",
            "2. high": f"{high:.8f}",
            "3. low": f"{low:.8f}",
            "4. close": f"{close:.8f}",
            "5. volume": f"{1000 + rng.random() * 90_000:.8f}",
        }
        price = close
        day += timedelta(days=1)
    return dict(reversed(bars.items()))


def digital_currency_daily(scenario: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
    """DIGITAL_CURRENCY_DAILY: the full daily history of a coin the scenario lists (every day,
    UTC, today's bar included: the real series is refreshed at midnight UTC and carries the
    day in progress), or the "Invalid API call" error for any other coin or market."""
    symbol = params.get("symbol", "")
    market = params.get("market", "")
    if symbol not in scenario.get("coins", []) or market not in MARKET_NAMES:
        return {"Error Message": INVALID_CRYPTO_CALL}
    refreshed = scenario.get("last_refreshed")
    last = date.fromisoformat(refreshed) if refreshed else datetime.now(UTC).date()
    first_days = scenario.get("coin_first_day", {})
    first = (
        date.fromisoformat(first_days[symbol])
        if symbol in first_days
        else last - timedelta(days=int(scenario.get("crypto_days", 400)) - 1)
    )
    return {
        "Meta Data": {
            "1. Information": "Daily Prices and Volumes for Digital Currency",
            "2. Digital Currency Code": symbol,
            "3. Digital Currency Name": COIN_NAMES.get(symbol, symbol),
            "4. Market Code": market,
            "5. Market Name": MARKET_NAMES[market],
            "6. Last Refreshed": f"{last.isoformat()} 00:00:00",
            "7. Time Zone": "UTC",
        },
        "Time Series (Digital Currency Daily)": crypto_series(symbol, last, first),
    }


def _window_edge(params: dict[str, str], name: str) -> str | None:
    """A window parameter as its YYYYMMDDTHHMM text (None when absent); ValueError if bad."""
    raw = params.get(name)
    if raw is None:
        return None
    datetime.strptime(raw, WINDOW_FORMAT)
    if len(raw) != len("20220410T0130"):
        raise ValueError(raw)
    return raw


def _mentions(article: dict[str, Any], tickers: list[str], topics: list[str]) -> bool:
    named = {entry.get("ticker") for entry in article.get("ticker_sentiment") or []}
    covered = {entry.get("topic") for entry in article.get("topics") or []}
    return all(t in named for t in tickers) and all(TOPIC_NAMES[t] in covered for t in topics)


def news(state: State, params: dict[str, str]) -> tuple[int, Any]:
    """NEWS_SENTIMENT: the scenario's ``news`` feed, filtered as the real API filters it."""
    with state.lock:
        state.av_requests += 1
        asked = {k: v for k, v in params.items() if k != "apikey"}
        state.news_requests.append({**asked, "apikey_given": bool(params.get("apikey"))})
        section = copy.deepcopy(state.scenario["news"])
    if not params.get("apikey"):
        return 200, {"Error Message": MISSING_KEY}
    mode = section.get("mode", "window")
    if mode == "note":
        return 200, {"Note": NOTE}
    if mode == "information":
        return 200, {"Information": INFORMATION}
    if mode == "http_error":
        return 503, "<html><body><h1>503 Service Unavailable</h1></body></html>"
    tickers = [t for t in params.get("tickers", "").split(",") if t]
    topics = [t for t in params.get("topics", "").split(",") if t]
    sort = params.get("sort", "LATEST")
    try:
        time_from = _window_edge(params, "time_from")
        time_to = _window_edge(params, "time_to")
        limit = int(params.get("limit", "50"))
    except ValueError:
        return 200, {"Information": INVALID_INPUTS}
    if sort not in ("LATEST", "EARLIEST", "RELEVANCE") or not 1 <= limit <= 1000:
        return 200, {"Information": INVALID_INPUTS}
    if any(t not in TOPIC_NAMES for t in topics):
        return 200, {"Information": INVALID_INPUTS}
    feed = [a for a in section.get("feed", []) if _mentions(a, tickers, topics)]
    if mode != "ignore_window":
        # Compared to the minute, both edges included, as the window is written.
        def inside(article: dict[str, Any]) -> bool:
            stamp = str(article.get("time_published", ""))[:13]
            return (time_from is None or stamp >= time_from) and (
                time_to is None or stamp <= time_to
            )

        feed = [a for a in feed if inside(a)]
    if sort != "RELEVANCE":
        feed.sort(key=lambda a: str(a.get("time_published", "")), reverse=sort == "LATEST")
    feed = feed[:limit]
    if not feed:
        return 200, {"Information": NO_ARTICLES}
    return 200, {
        "items": str(len(feed)),
        "sentiment_score_definition": SENTIMENT_DEFINITION,
        "relevance_score_definition": RELEVANCE_DEFINITION,
        "feed": feed,
    }


def handle(state: State, params: dict[str, str]) -> tuple[int, Any]:
    if params.get("function") == "NEWS_SENTIMENT":
        return news(state, params)
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
    if params.get("function") == "DIGITAL_CURRENCY_DAILY":
        return 200, digital_currency_daily(scenario, params)
    last = (
        date.fromisoformat(last_refreshed) if last_refreshed else last_weekday_before(date.today())
    )
    if params.get("function") == "TIME_SERIES_INTRADAY" and known:
        return 200, time_series_intraday(symbol, last, params)
    if params.get("function") != "TIME_SERIES_DAILY" or not known:
        return 200, {"Error Message": INVALID_CALL}
    full = params.get("outputsize") == "full"
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
