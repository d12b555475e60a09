"""Fetch China A-share prices from Tushare Pro's HTTP API into ``daily_prices_<SYM>.json``:
daily bars for the ``cn`` market, 60-minute bars for ``cn-hourly``.

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

Minute bars are a separately paid permission. ``stk_mins`` (stocks) and ``idx_mins``
(exchange indexes, the SSE-50 among them) are not unlocked by points: Tushare's pages for
both say the permission is opened separately ("需单独开权限"), bought online. Without it
the hourly fetch fails. What was not verified: the price of that permission, whether one
purchase covers both APIs, and the exact reply without it (taken to be the same 40203
permission error the daily APIs give; any other code is reported the same way).

The wire format: ``POST TUSHARE_BASE_URL`` with the JSON ``{"api_name", "token", "params",
"fields"}``; the reply is ``{"code", "msg", "data": {"fields": [...], "items": [[...]]}}``,
``code`` 0 on success, rows newest first. A ``Feed`` says what one market asks:

* ``DAILY`` (the ``cn`` market): ``daily`` for the stocks, ``index_daily`` for the index;
  ``ts_code`` (``600519.SH``), ``start_date`` and ``end_date`` as ``YYYYMMDD``; each row's
  ``trade_date`` ``20251031`` -> the bar ``2025-10-31``. ``vol`` counts lots of 100 shares
  (手): ``"5. volume"`` is it x100, in shares.
* ``minutes(slots)`` (``cn-hourly``): ``stk_mins`` for the stocks, ``idx_mins`` for the
  index, with ``freq`` ``60min`` and ``start_date`` / ``end_date`` as ``YYYY-MM-DD
  HH:MM:SS`` (the whole first and last day); each row's ``trade_time`` is the bar's end,
  Beijing time (``2025-10-31 10:30:00``: the bar of 09:30 to 10:30), the name our slots
  use. Tushare documents ``vol`` of both minute APIs in shares (成交量(股)), so
  ``"5. volume"`` is it unchanged. Only bars at the market's slots (10:30, 11:30, 14:00,
  15:00) are kept: a bar at any other time is dropped, not moved. Tushare documents those
  four 60-minute bars a session; whether a reply can hold another (an opening-auction bar,
  say) was not verified, hence the rule. A reply with no bar at any slot is not written.
  A request returns at most 8000 rows (documented); the window below holds at most about
  2100 bars.

Both: ``open``, ``high``, ``low``, ``close`` (yuan, unadjusted, as the US series is; index
points for the index) -> ``"1. open"`` ... ``"4. close"`` as strings with 4 decimals;
``amount`` is not kept. The ``"Meta Data"`` names the symbol, the newest bar as ``"3. Last
Refreshed"``, Asia/Shanghai and, in ``"6. Source"`` (``"7. Source"`` for the hourly file,
whose ``"4. Interval"`` and ``"6. Time Zone"`` follow Alpha Vantage's intraday shape), Tushare
and the API. Each request asks for the last ``HISTORY_DAYS`` calendar days, one per symbol.

Errors (``code`` != 0), each one line:

* 40101, a token Tushare does not know: the whole fetch stops at once (``TokenRefused``,
  exit 1); nothing is written.
* 40203 with "最多访问" in the message ("at most N calls a minute/hour/day"): a rate limit,
  retried with backoff like any other (``fetching``'s rules).
* 40203 otherwise, or any other code: the API refused (points too few for ``index_daily``,
  no minute permission, say). Daily: that symbol fails, and the rest of that API's symbols
  are not asked for (they would get the same answer); the other API goes on. Minutes: the
  whole fetch stops at once (``PermissionRefused``, exit 1), as a market with no minute
  permission can fetch nothing useful; files already fetched stay, nothing is overwritten.

Throttling, retries, the incremental skip of current files (on the SSE calendar; a
SYNTHETIC sample is never current), atomic writes and never replacing a good file with a
bad reply are ``fetching``'s. Tushare adds a day's minute bars in the evening (19:00 to
20:00 Beijing time, by its pages), so a file is current once it holds the last session
before today.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
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
from ai_trader.market.pricebook import HOURLY_KEY, META_KEY, SERIES_KEY

SERVICE = "Tushare"
STOCK_API = "daily"
INDEX_API = "index_daily"
FIELDS = ("ts_code", "trade_date", "open", "high", "low", "close", "vol")
TOKEN_ERROR = 40101
PERMISSION_ERROR = 40203
RATE_MARK = "最多访问"  # "at most N calls ...": the one 40203 worth retrying
HISTORY_DAYS = 730  # about 485 SSE sessions, in one request per symbol
SHARES_PER_LOT = 100  # Tushare's daily vol counts lots (手)
INTERVAL = "60min"
TIME_ZONE = "Asia/Shanghai"
# China keeps one time zone all year, with no daylight saving: what "today" is at the SSE.
CHINA = timezone(timedelta(hours=8))


@dataclass(frozen=True)
class Feed:
    """What one market asks of Tushare: its two APIs, how their rows name a bar, what their
    ``vol`` counts, and (hourly) the only bar times kept. See the module's mapping."""

    stock_api: str
    index_api: str
    time_field: str  # "trade_date" (YYYYMMDD) or "trade_time" (YYYY-MM-DD HH:MM:SS)
    shares_per_vol: int  # 100: vol counts lots; 1: vol counts shares
    start_format: str  # strftime of the window's first day, as the API takes it
    end_format: str
    params: Mapping[str, str] = field(default_factory=dict)  # besides ts_code and the window
    slots: tuple[str, ...] = ()  # an hourly market's bar times ("HH:MM:SS"); () daily

    @property
    def fields(self) -> tuple[str, ...]:
        return ("ts_code", self.time_field, "open", "high", "low", "close", "vol")


DAILY = Feed(STOCK_API, INDEX_API, "trade_date", SHARES_PER_LOT, "%Y%m%d", "%Y%m%d")


def minutes(slots: tuple[str, ...]) -> Feed:
    """``stk_mins`` and ``idx_mins`` at 60min for a market acting at ``slots``."""
    return Feed(
        "stk_mins",
        "idx_mins",
        "trade_time",
        1,
        "%Y-%m-%d 00:00:00",
        "%Y-%m-%d 23:59:59",
        {"freq": INTERVAL},
        slots,
    )


class Refused(RunFailed):
    """A refusal no request of this fetch can get past: the fetch stops."""


class TokenRefused(Refused):
    """Tushare does not know the token: no request can succeed, so the fetch stops."""


class PermissionRefused(Refused):
    """Tushare refused a minute API (no minute permission): the hourly market cannot be
    fetched, so the fetch stops."""


class _ApiRefused(Failed):
    """Tushare answered an API with an error code other than a rate limit: its other
    symbols would get the same answer."""

    def __init__(self, message: str, code: Any) -> None:
        super().__init__(message)
        self.code = code


def _iso(trade_date: Any) -> str:
    text = str(trade_date)
    if len(text) != 8 or not text.isdigit():
        raise Failed(f"unusable reply: trade_date {text!r} is not YYYYMMDD")
    return f"{text[:4]}-{text[4:6]}-{text[6:]}"


def _moment(trade_time: Any) -> str:
    text = str(trade_time)
    try:
        valid = datetime.strptime(text, "%Y-%m-%d %H:%M:%S").strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        valid = ""
    if valid != text:
        raise Failed(f"unusable reply: trade_time {text!r} is not YYYY-MM-DD HH:MM:SS")
    return text


def _price(value: Any, what: str, day: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Failed(f"unusable reply: {what} on {day} is {value!r}, not a number")
    return f"{value:.4f}"


def _meta(feed: Feed, symbol: str, api_name: str, newest: str) -> dict[str, str]:
    if not feed.slots:
        return {
            "1. Information": "Daily Prices (open, high, low, close) and Volumes",
            "2. Symbol": symbol,
            LAST_REFRESHED_KEY: newest,
            "4. Output Size": f"the last {HISTORY_DAYS} days",
            "5. Time Zone": TIME_ZONE,
            "6. Source": f"Tushare Pro {api_name} (unadjusted; volume in shares)",
        }
    return {
        "1. Information": f"Intraday ({INTERVAL}) open, high, low, close prices and volume",
        "2. Symbol": symbol,
        LAST_REFRESHED_KEY: newest,
        "4. Interval": INTERVAL,
        "5. Output Size": f"the last {HISTORY_DAYS} days",
        "6. Time Zone": TIME_ZONE,
        "7. Source": f"Tushare Pro {api_name}, freq={INTERVAL} (unadjusted; volume in "
        f"shares; the bars at {', '.join(feed.slots)} only)",
    }


def series_file(feed: Feed, symbol: str, api_name: str, data: Any) -> dict[str, Any]:
    """Tushare's ``data`` (``fields`` and ``items``) for ``symbol`` as our price file, by the
    module's mapping; Failed when it has not that shape, holds another symbol or (hourly)
    has no bar at the slots."""
    if not isinstance(data, dict):
        raise Failed("unusable reply: no 'data' object")
    fields, items = data.get("fields"), data.get("items")
    if not isinstance(fields, list) or not isinstance(items, list):
        raise Failed("unusable reply: 'data' has no 'fields' and 'items' lists")
    missing = [name for name in feed.fields if name not in fields]
    if missing:
        raise Failed(f"unusable reply: no {', '.join(missing)} among its fields")
    where = {name: fields.index(name) for name in feed.fields}
    bars: dict[str, dict[str, str]] = {}
    for item in items:
        if not isinstance(item, list) or len(item) != len(fields):
            raise Failed("unusable reply: an item is not a row of its fields")
        row = {name: item[index] for name, index in where.items()}
        if row["ts_code"] != symbol:
            raise Failed(f"unusable reply: it holds {row['ts_code']!r}, not {symbol!r}")
        if feed.slots:
            day = _moment(row[feed.time_field])
            if day[11:] not in feed.slots:
                continue  # not a time the market acts at: dropped, not moved
        else:
            day = _iso(row[feed.time_field])
        volume = row["vol"]
        if isinstance(volume, bool) or not isinstance(volume, int | float):
            raise Failed(f"unusable reply: vol on {day} is {volume!r}, not a number")
        bars[day] = {
            "1. open": _price(row["open"], "open", day),
            "2. high": _price(row["high"], "high", day),
            "3. low": _price(row["low"], "low", day),
            "4. close": _price(row["close"], "close", day),
            "5. volume": str(round(volume * feed.shares_per_vol)),
        }
    if feed.slots and items and not bars:
        raise Failed(f"unusable reply: no bar at the market's slots ({', '.join(feed.slots)})")
    newest_first = dict(sorted(bars.items(), reverse=True))
    return {
        META_KEY: _meta(feed, symbol, api_name, next(iter(newest_first), "")),
        HOURLY_KEY if feed.slots else SERIES_KEY: newest_first,
    }


def daily_file(symbol: str, api_name: str, data: Any) -> dict[str, Any]:
    """``series_file`` of the daily feed."""
    return series_file(DAILY, symbol, api_name, data)


def _request(
    client: httpx.Client,
    base_url: str,
    token: str,
    api_name: str,
    symbol: str,
    today: date,
    deadline: float,
    feed: Feed = DAILY,
) -> dict[str, Any]:
    """One request; a valid payload in our shape, or Retryable / Failed / TokenRefused."""
    body = {
        "api_name": api_name,
        "token": token,
        "params": {
            "ts_code": symbol,
            **feed.params,
            "start_date": (today - timedelta(days=HISTORY_DAYS)).strftime(feed.start_format),
            "end_date": today.strftime(feed.end_format),
        },
        "fields": ",".join(feed.fields),
    }
    status, raw = send_within(client, "POST", base_url, deadline, json_body=body)
    reply = json_object(status, raw)
    code, message = reply.get("code"), str(reply.get("msg") or "").strip()
    if code == TOKEN_ERROR:
        raise TokenRefused(f"Tushare refused the token (TUSHARE_TOKEN): {message} (code {code})")
    if code != 0:
        if RATE_MARK in message:
            raise Retryable(f"rate limited: {message} (code {code})")
        raise _ApiRefused(f"Tushare refused {api_name}: {message} (code {code})", code)
    return checked(symbol, series_file(feed, symbol, api_name, reply.get("data")))


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
    feed: Feed = DAILY,
) -> FetchReport:
    """Fetch every symbol whose file is not current: ``index`` from the feed's index API,
    the others from its stock API. TokenRefused ends the fetch, and so does
    PermissionRefused (a minute API refused); the rest is ``fetching``'s rules."""
    day = today or datetime.now(CHINA).date()
    refused: dict[str, str] = {}  # api_name -> why it was refused this run

    def request(http: httpx.Client, symbol: str) -> dict[str, Any]:
        api_name = feed.index_api if symbol == index else feed.stock_api
        if api_name in refused:
            raise Failed(f"not attempted: {refused[api_name]}")
        try:
            return _request(http, base_url, token, api_name, symbol, day, deadline, feed)
        except _ApiRefused as exc:
            if feed.slots:
                hint = "; minute bars need Tushare's separately paid minute permission"
                why = f"{exc}{hint if exc.code == PERMISSION_ERROR else ''}"
                raise PermissionRefused(why) from None
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
    except Refused as exc:
        # The token may be echoed in a message; it never reaches a log.
        raise type(exc)(str(exc).replace(token, "***") if token else str(exc)) from None
