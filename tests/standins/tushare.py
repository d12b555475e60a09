"""Tushare Pro's HTTP API, as http://api.tushare.pro answers it: ``POST`` a JSON body
``{"api_name", "token", "params", "fields"}``, get ``{"request_id", "code", "msg", "data"}``
back, ``data`` being ``{"fields": [...], "items": [[...]], "has_more": false}`` and ``code``
0 on success. Serves ``daily`` (A-share stocks) and ``index_daily`` (indexes) on SSE sessions
(weekdays less the exchange's holidays), newest first, with the real error replies: 40101 for
a token it does not know, 40203 for too few points or too many calls.

Minute bars: ``stk_mins`` (stocks) and ``idx_mins`` (indexes) take ``ts_code``, ``freq`` and
``start_date`` / ``end_date`` as ``YYYY-MM-DD HH:MM:SS`` (no dates: the last 10 calendar
days), and answer rows of ``ts_code, trade_time, close, open, high, low, vol, amount``,
newest first, at most 8000, ``vol`` in shares and ``amount`` in yuan, as Tushare documents
them. Each bar is named by its end, Beijing time: at ``60min`` an SSE session has the bars
10:30, 11:30, 14:00 and 15:00. They are a separately bought permission, not points: the
scenario's ``"minutes": true`` grants it; without it both get the 40203 permission reply
(Tushare's exact wording for this case is not documented; the daily one is used). The
stand-in serves ``freq`` ``60min`` only (another gets an error reply of its own). Scenario
keys for the fetch's rules: ``"minute_times"`` TS_CODE -> the bar times served for it
(another time, such as an opening-auction 09:30:00, or none of the four); ``"answer_for"``
TS_CODE -> the code whose rows are answered instead (a mixed-up reply)."""

from __future__ import annotations

import json
import random
import re
import uuid
import zlib
from datetime import date, datetime, timedelta
from typing import Any

from .state import State

DOC = "https://tushare.pro/document/1?doc_id=108"
TOKEN_ERROR = {"code": 40101, "msg": "您的token不对，请确认。"}
NO_PERMISSION = {"code": 40203, "msg": f"抱歉，您没有接口访问权限，权限的具体详情访问：{DOC}。"}
RATE_LIMITED = {
    "code": 40203,
    "msg": f"抱歉，您每分钟最多访问该接口500次，权限的具体详情访问：{DOC}。",
}
BAD_API = {"code": -2001, "msg": "请指定正确的接口名"}
POINTS_NEEDED = {"daily": 120, "index_daily": 2000}
MINUTE_APIS = ("stk_mins", "idx_mins")
MINUTE_FIELDS = ("ts_code", "trade_time", "close", "open", "high", "low", "vol", "amount")
ALL_FIELDS = {
    "daily": ("ts_code", "trade_date", "open", "high", "low", "close", "pre_close", "change",
              "pct_chg", "vol", "amount"),
    "index_daily": ("ts_code", "trade_date", "close", "open", "high", "low", "pre_close",
                    "change", "pct_chg", "vol", "amount"),
    "stk_mins": MINUTE_FIELDS,
    "idx_mins": MINUTE_FIELDS,
}  # fmt: skip
SESSION_BARS = ("10:30:00", "11:30:00", "14:00:00", "15:00:00")  # an SSE session at 60min
MAX_ROWS = 8000  # a minute API's rows a request, documented
TS_CODE = re.compile(r"^\d{6}\.(SH|SZ|BJ)$")


def sessions(first: date, last: date) -> list[date]:
    """SSE sessions from ``first`` to ``last``: weekdays less the exchange's holidays."""
    import holidays  # the product's own dependency, in the image the stand-ins run in

    closed = holidays.financial_holidays("XSHG", years=range(first.year, last.year + 1))
    days = []
    day = first
    while day <= last:
        if day.weekday() < 5 and day not in closed:
            days.append(day)
        day += timedelta(days=1)
    return days


def _rows(
    api_name: str, ts_code: str, days: list[date], times: tuple[str, ...] = ("",)
) -> list[dict[str, Any]]:
    """Deterministic bars for ``ts_code`` on ``days`` (a minute API's: at each of ``times``),
    oldest first: the same code gives the same prices whatever the window asked for (drawn
    from a fixed start)."""
    rng = random.Random(zlib.crc32(f"tushare:{ts_code}".encode()))  # noqa: S311 - on purpose
    index = api_name in ("index_daily", "idx_mins")
    minute = api_name in MINUTE_APIS
    price = 2900.0 if index else round(3.0 + rng.random() * 197.0, 2)
    places = 4 if index else 2
    day = date(2015, 1, 5)
    wanted = set(days)
    rows = []
    while day <= days[-1]:
        for at in times if day.weekday() < 5 else ():
            open_ = round(price * (1 + (rng.random() - 0.5) * 0.01), places)
            close = round(open_ * (1 + (rng.random() - 0.5) * 0.04), places)
            high = round(max(open_, close) * (1 + rng.random() * 0.01), places)
            low = round(min(open_, close) * (1 - rng.random() * 0.01), places)
            vol = round(10_000 + rng.random() * 900_000, 2)
            if day in wanted and minute:
                shares = float(round(vol) * 100)  # shares, in round lots, as a float
                rows.append({
                    "ts_code": ts_code, "trade_time": f"{day.isoformat()} {at}",
                    "close": close, "open": open_, "high": high, "low": low, "vol": shares,
                    "amount": round(shares * close, 1),
                })  # fmt: skip
            elif day in wanted:
                rows.append({
                    "ts_code": ts_code, "trade_date": day.strftime("%Y%m%d"), "open": open_,
                    "high": high, "low": low, "close": close, "pre_close": price,
                    "change": round(close - price, places),
                    "pct_chg": round((close - price) / price * 100, 4), "vol": vol,
                    "amount": round(vol * close / 10, 3),
                })  # fmt: skip
            price = close
        day += timedelta(days=1)
    return rows


def _reply(body: dict[str, Any]) -> dict[str, Any]:
    return {"request_id": uuid.uuid4().hex, "data": None, **body}


def _when(params: dict[str, Any], name: str, minute: bool) -> datetime | None:
    """A date parameter: ``YYYYMMDD`` for the daily APIs, ``YYYY-MM-DD HH:MM:SS`` for the
    minute ones."""
    raw = params.get(name)
    if raw in (None, ""):
        return None
    return datetime.strptime(str(raw), "%Y-%m-%d %H:%M:%S" if minute else "%Y%m%d")


def handle(state: State, raw: bytes) -> tuple[int, Any]:
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return 200, _reply({"code": 40001, "msg": "参数格式错误"})
    params = body.get("params") or {}
    ts_code = str(params.get("ts_code", "")) if isinstance(params, dict) else ""
    with state.lock:
        state.tushare_requests += 1
        seen = state.tushare_by_code.get(ts_code, 0)
        state.tushare_by_code[ts_code] = seen + 1
        asked = {k: v for k, v in body.items() if k != "token"}
        state.tushare_bodies.append({**asked, "token_given": bool(body.get("token"))})
        section = dict(state.scenario["tushare"])
    tokens = section.get("tokens")
    token = body.get("token")
    if not isinstance(token, str) or not token or (tokens is not None and token not in tokens):
        return 200, _reply(TOKEN_ERROR)
    api_name = body.get("api_name")
    if api_name not in ALL_FIELDS or not isinstance(params, dict):
        return 200, _reply(BAD_API)
    minute = api_name in MINUTE_APIS
    if minute:
        allowed = bool(section.get("minutes"))  # the minute permission, bought apart
    else:
        allowed = int(section.get("points", 0)) >= POINTS_NEEDED[api_name]
    if not allowed:
        return 200, _reply(NO_PERMISSION)
    http_errors = int(section.get("http_error", {}).get(ts_code, 0))
    if seen < http_errors:
        return 503, "<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"
    if seen < http_errors + int(section.get("rate_limit", {}).get(ts_code, 0)):
        return 200, _reply(RATE_LIMITED)
    if minute and params.get("freq") != "60min":
        return 200, _reply({"code": 40001, "msg": "the stand-in serves freq=60min only"})
    try:
        start, end = _when(params, "start_date", minute), _when(params, "end_date", minute)
    except ValueError:
        return 200, _reply({"code": 40001, "msg": "日期格式错误"})
    newest = section.get("last_trade_date")
    last = (
        date.fromisoformat(newest)
        if newest
        else sessions(date.today() - timedelta(days=30), date.today() - timedelta(days=1))[-1]
    )
    last = min(last, end.date()) if end else last
    first = start.date() if start else last - timedelta(days=9 if minute else 365)
    fields = [f for f in str(body.get("fields") or "").split(",") if f] or list(
        ALL_FIELDS[api_name]
    )
    fields = [f for f in fields if f in ALL_FIELDS[api_name]]
    days = sessions(first, last) if TS_CODE.match(ts_code) and first <= last else []
    if minute:
        times = tuple(sorted(section.get("minute_times", {}).get(ts_code, SESSION_BARS)))
        source = section.get("answer_for", {}).get(ts_code, ts_code)
        rows = _rows(api_name, source, days, times) if days and times else []
        low, high = str(start or ""), str(end or "9999")
        rows = [row for row in rows if low <= row["trade_time"] <= high][-MAX_ROWS:]
    else:
        rows = _rows(api_name, ts_code, days) if days else []
    items = [[row[f] for f in fields] for row in reversed(rows)]  # newest first
    return 200, _reply(
        {"code": 0, "msg": "", "data": {"fields": fields, "items": items, "has_more": False}}
    )
