"""Fetch TIME_SERIES_DAILY from Alpha Vantage into ``daily_prices_<SYM>.json``, gently.

The free tier allows a few requests a minute and about 25 a day, so requests are spaced out,
rate-limit replies are retried with backoff, symbols whose file is already current are not asked
for again (a restart costs no quota), and a bad reply never replaces a good file.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from ai_trader.fsutil import atomic_write_json
from ai_trader.layout import price_file
from ai_trader.market.calendar import last_trading_day_before
from ai_trader.market.merge import MalformedPrices, check_payload, check_reply
from ai_trader.market.pricebook import META_KEY
from ai_trader.progress import Progress
from ai_trader.retrying import retrying

log = logging.getLogger(__name__)

LAST_REFRESHED_KEY = "3. Last Refreshed"
# A file written this recently is current whatever its dates say (covers holidays and restarts).
FRESH_SECONDS = 12 * 3600
MAX_BACKOFF = 60.0
# Seconds for a whole reply. httpx's timeouts are per network read, so a server that
# drip-feeds bytes would otherwise hold a request open for as long as it likes; a read
# may stall for at most READ_TIMEOUT, so a request ends within about both summed.
REQUEST_DEADLINE = 30.0
READ_TIMEOUT = 10.0
TIMEOUT = httpx.Timeout(READ_TIMEOUT)


@dataclass
class FetchReport:
    fetched: list[str] = field(default_factory=list)
    current: list[str] = field(default_factory=list)  # skipped: already current
    errors: dict[str, str] = field(default_factory=dict)


class _Retryable(Exception):
    """A reply worth asking again for: rate limit, transport failure, server error."""


class _Failed(Exception):
    """A reply that will not get better by asking again for this symbol."""


def is_current(payload: dict[str, Any], mtime: float, today: date, now: float, symbol: str) -> bool:
    """Whether a stored reply needs no refresh.

    Current means: it is a usable reply for ``symbol`` (the merge's own rules: a corrupt or
    another symbol's file is not), and either it was refreshed on or after the last NYSE
    trading day before ``today``, or the file was written in the last 12 hours (``now`` and
    ``mtime`` are epoch seconds).
    """
    try:
        check_reply(symbol, payload)
    except MalformedPrices:
        return False
    if 0 <= now - mtime < FRESH_SECONDS:
        return True
    refreshed = str(payload[META_KEY].get(LAST_REFRESHED_KEY, ""))[:10]
    try:
        refreshed_day = date.fromisoformat(refreshed)
    except ValueError:
        return False
    return refreshed_day >= last_trading_day_before(today)


def _file_is_current(path: Path, today: date, now: float, symbol: str) -> bool:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        mtime = path.stat().st_mtime
    except (OSError, ValueError):
        return False
    return is_current(payload, mtime, today, now, symbol)


def stored_refresh(path: Path) -> str:
    """The stored file's last refreshed day ("" when missing or unusable)."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    try:
        check_payload(payload)
    except MalformedPrices:
        return ""
    return str(payload[META_KEY].get(LAST_REFRESHED_KEY, ""))[:10]


def fetch_order(symbols: Iterable[str], refreshed: dict[str, str]) -> list[str]:
    """Missing files first, then the stalest: a small daily quota (about 25 requests on the
    free tier) then fills the gaps over a few days instead of refreshing the same symbols."""
    wanted = list(dict.fromkeys(symbols))
    position = {symbol: index for index, symbol in enumerate(wanted)}
    return sorted(wanted, key=lambda s: (refreshed.get(s, ""), position[s]))


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


class _Throttle:
    """Keep consecutive requests at least ``interval`` seconds apart."""

    def __init__(self, interval: float, sleep: Callable[[float], None]) -> None:
        self.interval = interval
        self.sleep = sleep
        self._last: float | None = None

    def wait(self) -> None:
        if self.interval > 0 and self._last is not None:
            remaining = self._last + self.interval - time.monotonic()
            if remaining > 0:
                self.sleep(remaining)
        self._last = time.monotonic()


def _get_within(
    client: httpx.Client, url: str, params: dict[str, str], deadline: float
) -> tuple[int, bytes]:
    """Status and body of a GET, or _Retryable when the whole reply takes over ``deadline``."""
    started = time.monotonic()
    try:
        with client.stream("GET", url, params=params) as response:
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if time.monotonic() - started > deadline:
                    raise _Retryable(f"no complete reply within {deadline:g} s")
            return response.status_code, bytes(body)
    except httpx.TransportError as exc:
        # str(exc) of a transport error carries no URL, so no key.
        raise _Retryable(f"{type(exc).__name__}: {exc}") from None


def _request(
    client: httpx.Client,
    base_url: str,
    symbol: str,
    api_key: str,
    deadline: float = REQUEST_DEADLINE,
) -> dict[str, Any]:
    """One request; returns a valid payload or raises _Retryable / _Failed."""
    params = {
        "function": "TIME_SERIES_DAILY",
        "symbol": symbol,
        "outputsize": "compact",
        "apikey": api_key,
    }
    status, body = _get_within(client, base_url, params, deadline)
    # Not raise_for_status(): its message contains the URL, and with it the key.
    if status == 429 or status >= 500:
        raise _Retryable(f"HTTP {status}")
    if status >= 400:
        raise _Failed(f"HTTP {status}")
    try:
        payload = json.loads(body)
    except ValueError:
        raise _Failed("reply is not JSON") from None
    if not isinstance(payload, dict):
        raise _Failed("reply is not a JSON object")
    if "Error Message" in payload:
        raise _Failed(str(payload["Error Message"]))
    for key in ("Note", "Information"):
        if key in payload:
            raise _Retryable(f"rate limited: {payload[key]}")
    try:
        # The merge's own rules (the shape, numeric positive prices, the right symbol):
        # a reply the merge would reject must never replace a good file.
        check_reply(symbol, payload)
    except MalformedPrices as exc:
        raise _Failed(f"unusable reply: {exc}") from None
    return payload


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
) -> FetchReport:
    """Fetch every symbol whose file is not current; one symbol's failure never stops the rest.

    The exception: when a symbol exhausts its attempts on retryable replies (rate limit, network,
    server error), the service is treated as unavailable for this run and the remaining symbols
    are recorded as errors without being requested. Waiting minutes per symbol against an
    exhausted daily quota would only stall the start-up for hours.
    """
    _install_redaction()
    today = today or date.today()
    unique = list(dict.fromkeys(symbols))
    wanted = fetch_order(unique, {s: stored_refresh(price_file(data_dir, s)) for s in unique})
    report = FetchReport()
    throttle = _Throttle(min_interval, sleep)
    own_client = client is None
    http = client or httpx.Client(timeout=TIMEOUT)

    def redact(text: str) -> str:
        return text.replace(api_key, "***") if api_key else text

    given_up: str | None = None
    try:
        with Progress("fetch", len(wanted), enabled=progress) as bar:
            for symbol in wanted:
                bar.step(symbol)
                path = price_file(data_dir, symbol)
                if _file_is_current(path, today, time.time(), symbol):
                    report.current.append(symbol)
                    continue
                if given_up is not None:
                    report.errors[symbol] = f"not attempted: {given_up}"
                    continue
                try:
                    payload = _fetch_one(
                        http,
                        base_url,
                        symbol,
                        api_key,
                        throttle,
                        max_attempts,
                        backoff,
                        sleep,
                        deadline,
                    )
                except _Failed as exc:
                    report.errors[symbol] = redact(str(exc))
                    log.warning("%s: %s", symbol, report.errors[symbol])
                    continue
                except _Retryable as exc:
                    report.errors[symbol] = redact(f"gave up after {max_attempts} attempts: {exc}")
                    given_up = f"Alpha Vantage unavailable ({redact(str(exc))})"
                    log.warning(
                        "%s: %s; not requesting the remaining symbols",
                        symbol,
                        report.errors[symbol],
                    )
                    continue
                atomic_write_json(path, payload)
                report.fetched.append(symbol)
    finally:
        if own_client:
            http.close()
    log.info(
        "Alpha Vantage: %d fetched, %d already current, %d errors",
        len(report.fetched),
        len(report.current),
        len(report.errors),
    )
    return report


def _fetch_one(
    http: httpx.Client,
    base_url: str,
    symbol: str,
    api_key: str,
    throttle: _Throttle,
    max_attempts: int,
    backoff: float,
    sleep: Callable[[float], None],
    deadline: float,
) -> dict[str, Any]:
    for attempt in retrying(
        symbol,
        attempts=max_attempts,
        base=backoff,
        cap=MAX_BACKOFF,
        retry_on=(_Retryable,),
        sleep=sleep,
    ):
        with attempt:
            throttle.wait()
            return _request(http, base_url, symbol, api_key, deadline)
    raise AssertionError("unreachable")  # the policy returns or re-raises
