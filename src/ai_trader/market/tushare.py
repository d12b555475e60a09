"""Fetch China A-share daily prices from Tushare Pro's HTTP API into ``daily_prices_<SYM>.json``.

Why Tushare, with a token: a source that needs no key exists only inside libraries that do
not fit here. AKShare (no key, well maintained) scrapes web endpoints of Eastmoney, Sina and
others that it hard-codes and that change without notice, and it pulls pandas and a dozen
more packages into the image; baostock (no key) speaks its own protocol to one hard-coded
server and needs pandas too. Neither can be pointed at a local stand-in through a setting,
which is how every source of ours is tested. Tushare Pro documents a plain HTTP JSON API:
httpx, already in the image, speaks it, and ``TUSHARE_BASE_URL`` points it anywhere. The
token is free on registration (tushare.pro); ``daily`` (the stocks) needs 120 points,
what a new account gets, while ``index_daily`` (the SSE-50 index, 000016.SH) needs 2000
points, which Tushare grants for a donation or for contributions: a token with fewer gets
Tushare's permission error for the index, reported as such. The documented address is plain
HTTP, so the token travels unencrypted unless ``TUSHARE_BASE_URL`` says otherwise.

The wire format: ``POST TUSHARE_BASE_URL`` with the JSON ``{"api_name", "token", "params",
"fields"}``; the reply is ``{"code", "msg", "data": {"fields": [...], "items": [[...]]}}``,
``code`` 0 on success. ``daily`` serves the stocks, ``index_daily`` the index; both take
``ts_code`` (``600519.SH``), ``start_date`` and ``end_date`` (``YYYYMMDD``) and list the
newest day first.

The mapping into our daily shape (Alpha Vantage TIME_SERIES_DAILY's): ``trade_date``
``20251031`` -> ``2025-10-31``; ``open``, ``high``, ``low``, ``close`` (yuan, unadjusted,
as the US series is; index points for the index) -> ``"1. open"`` ... ``"4. close"`` as
strings with 4 decimals; ``vol`` is in lots of 100 shares (手) -> ``"5. volume"`` in shares
(x100); ``amount`` (thousands of yuan) is not kept. The ``"Meta Data"`` names the symbol, the
newest day as ``"3. Last Refreshed"``, Asia/Shanghai and, in ``"6. Source"``, Tushare and the
API. Each request asks for the last ``HISTORY_DAYS`` calendar days.

Errors (``code`` != 0), each one line:

* 40101, a token Tushare does not know: the whole fetch stops at once (``TokenRefused``,
  exit 1); nothing is written.
* 40203 with "最多访问" in the message ("at most N calls a minute/hour/day"): a rate limit,
  retried with backoff like any other (``fetching``'s rules).
* 40203 otherwise, or any other code: the API refused (points too few for ``index_daily``,
  say). That symbol fails, and the rest of that API's symbols are not asked for (they would
  get the same answer); the other API goes on.

Throttling, retries, the incremental skip of current files (on the SSE calendar; a
SYNTHETIC sample is never current), atomic writes and never replacing a good file with a
bad reply are ``fetching``'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx

from ai_trader.errors import RunFailed
from ai_trader.market.calendar import SSE
from ai_trader.market.fetching import (
    LAST_REFRESHED_KEY,
    REQUEST_DEADLINE,
    Failed,
    FetchReport,
    Retryable,
    checked,
    fetch_symbols,
    json_object,
    send_within,
)
from ai_trader.market.pricebook import META_KEY, SERIES_KEY

SERVICE = "Tushare"
STOCK_API = "daily"
INDEX_API = "index_daily"
FIELDS = ("ts_code", "trade_date", "open", "high", "low", "close", "vol")
TOKEN_ERROR = 40101
RATE_MARK = "最多访问"  # "at most N calls ...": the one 40203 worth retrying
HISTORY_DAYS = 730  # about 485 SSE sessions, in one request per symbol
SHARES_PER_LOT = 100  # Tushare's vol counts lots (手)
# China keeps one time zone all year, with no daylight saving: what "today" is at the SSE.
CHINA = timezone(timedelta(hours=8))


class TokenRefused(RunFailed):
    """Tushare does not know the token: no request can succeed, so the fetch stops."""


class _ApiRefused(Failed):
    """Tushare answered an API with an error code other than a rate limit: its other
    symbols would get the same answer."""


def _iso(trade_date: Any) -> str:
    text = str(trade_date)
    if len(text) != 8 or not text.isdigit():
        raise Failed(f"unusable reply: trade_date {text!r} is not YYYYMMDD")
    return f"{text[:4]}-{text[4:6]}-{text[6:]}"


def _price(value: Any, what: str, day: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Failed(f"unusable reply: {what} on {day} is {value!r}, not a number")
    return f"{value:.4f}"


def daily_file(symbol: str, api_name: str, data: Any) -> dict[str, Any]:
    """Tushare's ``data`` (``fields`` and ``items``) for ``symbol`` as our daily file, by the
    module's mapping; Failed when it has not that shape or holds another symbol."""
    if not isinstance(data, dict):
        raise Failed("unusable reply: no 'data' object")
    fields, items = data.get("fields"), data.get("items")
    if not isinstance(fields, list) or not isinstance(items, list):
        raise Failed("unusable reply: 'data' has no 'fields' and 'items' lists")
    missing = [name for name in FIELDS if name not in fields]
    if missing:
        raise Failed(f"unusable reply: no {', '.join(missing)} among its fields")
    where = {name: fields.index(name) for name in FIELDS}
    bars: dict[str, dict[str, str]] = {}
    for item in items:
        if not isinstance(item, list) or len(item) != len(fields):
            raise Failed("unusable reply: an item is not a row of its fields")
        row = {name: item[index] for name, index in where.items()}
        if row["ts_code"] != symbol:
            raise Failed(f"unusable reply: it holds {row['ts_code']!r}, not {symbol!r}")
        day = _iso(row["trade_date"])
        volume = row["vol"]
        if isinstance(volume, bool) or not isinstance(volume, int | float):
            raise Failed(f"unusable reply: vol on {day} is {volume!r}, not a number")
        bars[day] = {
            "1. open": _price(row["open"], "open", day),
            "2. high": _price(row["high"], "high", day),
            "3. low": _price(row["low"], "low", day),
            "4. close": _price(row["close"], "close", day),
            "5. volume": str(round(volume * SHARES_PER_LOT)),
        }
    newest_first = dict(sorted(bars.items(), reverse=True))
    return {
        META_KEY: {
            "1. Information": "Daily Prices (open, high, low, close) and Volumes",
            "2. Symbol": symbol,
            LAST_REFRESHED_KEY: next(iter(newest_first), ""),
            "4. Output Size": f"the last {HISTORY_DAYS} days",
            "5. Time Zone": "Asia/Shanghai",
            "6. Source": f"Tushare Pro {api_name} (unadjusted; volume in shares)",
        },
        SERIES_KEY: newest_first,
    }


def _request(
    client: httpx.Client,
    base_url: str,
    token: str,
    api_name: str,
    symbol: str,
    today: date,
    deadline: float,
) -> dict[str, Any]:
    """One request; a valid payload in our daily shape, or Retryable / Failed / TokenRefused."""
    body = {
        "api_name": api_name,
        "token": token,
        "params": {
            "ts_code": symbol,
            "start_date": (today - timedelta(days=HISTORY_DAYS)).strftime("%Y%m%d"),
            "end_date": today.strftime("%Y%m%d"),
        },
        "fields": ",".join(FIELDS),
    }
    status, raw = send_within(client, "POST", base_url, deadline, json_body=body)
    reply = json_object(status, raw)
    code, message = reply.get("code"), str(reply.get("msg") or "").strip()
    if code == TOKEN_ERROR:
        raise TokenRefused(f"Tushare refused the token (TUSHARE_TOKEN): {message} (code {code})")
    if code != 0:
        if RATE_MARK in message:
            raise Retryable(f"rate limited: {message} (code {code})")
        raise _ApiRefused(f"Tushare refused {api_name}: {message} (code {code})")
    return checked(symbol, daily_file(symbol, api_name, reply.get("data")))


def fetch_all(
    symbols: Iterable[str],
    data_dir: Path,
    *,
    index: str,
    token: str,
    base_url: str,
    min_interval: float,
    today: date | None = None,
    client: httpx.Client | None = None,
    max_attempts: int = 5,
    backoff: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
    progress: bool = True,
    deadline: float = REQUEST_DEADLINE,
) -> FetchReport:
    """Fetch every symbol whose file is not current: ``index`` from ``index_daily``, the
    others from ``daily``. TokenRefused ends the fetch; the rest is ``fetching``'s rules."""
    day = today or datetime.now(CHINA).date()
    refused: dict[str, str] = {}  # api_name -> why it was refused this run

    def request(http: httpx.Client, symbol: str) -> dict[str, Any]:
        api_name = INDEX_API if symbol == index else STOCK_API
        if api_name in refused:
            raise Failed(f"not attempted: {refused[api_name]}")
        try:
            return _request(http, base_url, token, api_name, symbol, day, deadline)
        except _ApiRefused as exc:
            refused[api_name] = str(exc)
            raise

    try:
        return fetch_symbols(
            symbols,
            data_dir,
            request,
            service=SERVICE,
            min_interval=min_interval,
            calendar=SSE,
            secret=token,
            today=day,
            client=client,
            max_attempts=max_attempts,
            backoff=backoff,
            sleep=sleep,
            progress=progress,
        )
    except TokenRefused as exc:
        # The token may be echoed in a message; it never reaches a log.
        raise TokenRefused(str(exc).replace(token, "***") if token else str(exc)) from None
