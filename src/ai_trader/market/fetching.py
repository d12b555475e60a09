"""Fetch one price file per symbol from a metered web API, gently; the machinery every source
shares (Alpha Vantage's series, Tushare's).

The rules, the same for every source:

* Throttle: consecutive requests are at least ``min_interval`` seconds apart.
* Retries: a reply that may get better by asking again (a rate limit, a dropped connection, a
  server error, a reply that takes longer than the deadline) is retried with exponential
  backoff, capped at a minute. When one symbol exhausts its attempts that way, the service is
  treated as unavailable for this run: the remaining symbols are recorded as errors without
  a request.
* A reply that will not get better (an error message, a shape the merge would reject) is an
  error for that symbol only; the others go on.
* Incremental: a symbol whose stored file is current (``is_current``, on the market's own
  calendar) is not asked for again, so a restart costs no quota; missing files come first,
  then the stalest. A SYNTHETIC sample file is never current: once a key is set, real
  prices replace it on the next fetch (however recently the sample was written).
* A file is only ever replaced by a reply that passes the merge's rules, written atomically
  (temp file + rename): a bad reply never replaces a good file.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from ai_trader.fsutil import atomic_write_json
from ai_trader.layout import price_file
from ai_trader.market.calendar import NYSE, Calendar
from ai_trader.market.merge import MalformedPrices, check_payload, check_reply
from ai_trader.market.pricebook import META_KEY
from ai_trader.market.sample import SAMPLE_PREFIX
from ai_trader.progress import Progress
from ai_trader.retrying import retrying

log = logging.getLogger(__name__)

LAST_REFRESHED_KEY = "3. Last Refreshed"
SAMPLE_NOTE_KEY = "6. Note"
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


class Retryable(Exception):
    """A reply worth asking again for: rate limit, transport failure, server error."""


class Failed(Exception):
    """A reply that will not get better by asking again for this symbol."""


# A request for one symbol: a payload that passes the merge's rules, or Retryable / Failed.
Request = Callable[[httpx.Client, str], dict[str, Any]]


def is_current(
    payload: dict[str, Any],
    mtime: float,
    today: date,
    now: float,
    symbol: str,
    calendar: Calendar = NYSE,
) -> bool:
    """Whether a stored reply needs no refresh.

    Current means: it is a usable reply for ``symbol`` (the merge's own rules: a corrupt or
    another symbol's file is not), and either it was refreshed on or after the last trading
    day of ``calendar`` before ``today``, or the file was written in the last 12 hours
    (``now`` and ``mtime`` are epoch seconds).
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
    return refreshed_day >= calendar.last_day_before(today)


def is_sample(payload: dict[str, Any]) -> bool:
    """Whether a stored file is an offline SYNTHETIC sample (``sample``'s note says so)."""
    meta = payload.get(META_KEY)
    note = meta.get(SAMPLE_NOTE_KEY) if isinstance(meta, dict) else None
    return isinstance(note, str) and note.startswith(SAMPLE_PREFIX)


def file_is_current(
    path: Path,
    today: date,
    now: float,
    symbol: str,
    calendar: Calendar = NYSE,
) -> bool:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        mtime = path.stat().st_mtime
    except (OSError, ValueError):
        return False
    if isinstance(payload, dict) and is_sample(payload):
        return False
    return is_current(payload, mtime, today, now, symbol, calendar)


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


class Throttle:
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


def send_within(
    client: httpx.Client,
    method: str,
    url: str,
    deadline: float,
    *,
    params: dict[str, str] | None = None,
    json_body: Any = None,
) -> tuple[int, bytes]:
    """Status and body of a request, or Retryable when the whole reply takes over
    ``deadline`` or the transport fails."""
    started = time.monotonic()
    try:
        with client.stream(method, url, params=params, json=json_body) as response:
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if time.monotonic() - started > deadline:
                    raise Retryable(f"no complete reply within {deadline:g} s")
            return response.status_code, bytes(body)
    except httpx.TransportError as exc:
        # str(exc) of a transport error carries no URL, so no key.
        raise Retryable(f"{type(exc).__name__}: {exc}") from None


def json_object(status: int, body: bytes) -> dict[str, Any]:
    """A reply's JSON object; Retryable for a rate-limit or server status, Failed for any
    other error status or a body that is no JSON object. Never raise_for_status(): its
    message holds the URL, and with it a key given in the query."""
    if status == 429 or status >= 500:
        raise Retryable(f"HTTP {status}")
    if status >= 400:
        raise Failed(f"HTTP {status}")
    try:
        payload = json.loads(body)
    except ValueError:
        raise Failed("reply is not JSON") from None
    if not isinstance(payload, dict):
        raise Failed("reply is not a JSON object")
    return payload


def checked(symbol: str, payload: dict[str, Any]) -> dict[str, Any]:
    """``payload`` once it passes the merge's rules (the shape, numeric positive prices, the
    right symbol): a reply the merge would reject must never replace a good file."""
    try:
        check_reply(symbol, payload)
    except MalformedPrices as exc:
        raise Failed(f"unusable reply: {exc}") from None
    return payload


def fetch_symbols(
    symbols: Iterable[str],
    data_dir: Path,
    request: Request,
    *,
    service: str,
    min_interval: float,
    calendar: Calendar = NYSE,
    secret: str = "",
    today: date | None = None,
    client: httpx.Client | None = None,
    max_attempts: int = 5,
    backoff: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
    progress: bool = True,
) -> FetchReport:
    """Fetch every symbol whose file is not current with ``request``, by the module's rules.

    ``service`` names the source in the log lines; ``secret`` (the key or token) is masked
    in every error recorded.
    """
    today = today or date.today()
    unique = list(dict.fromkeys(symbols))
    wanted = fetch_order(unique, {s: stored_refresh(price_file(data_dir, s)) for s in unique})
    report = FetchReport()
    throttle = Throttle(min_interval, sleep)
    own_client = client is None
    http = client or httpx.Client(timeout=TIMEOUT)

    def redact(text: str) -> str:
        return text.replace(secret, "***") if secret else text

    given_up: str | None = None
    try:
        with Progress("fetch", len(wanted), enabled=progress) as bar:
            for symbol in wanted:
                bar.step(symbol)
                path = price_file(data_dir, symbol)
                if file_is_current(path, today, time.time(), symbol, calendar):
                    report.current.append(symbol)
                    continue
                if given_up is not None:
                    report.errors[symbol] = f"not attempted: {given_up}"
                    continue
                try:
                    payload = _fetch_one(
                        http, request, symbol, throttle, max_attempts, backoff, sleep
                    )
                except Failed as exc:
                    report.errors[symbol] = redact(str(exc))
                    log.warning("%s: %s", symbol, report.errors[symbol])
                    continue
                except Retryable as exc:
                    report.errors[symbol] = redact(f"gave up after {max_attempts} attempts: {exc}")
                    given_up = f"{service} unavailable ({redact(str(exc))})"
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
        "%s: %d fetched, %d already current, %d errors",
        service,
        len(report.fetched),
        len(report.current),
        len(report.errors),
    )
    return report


def _fetch_one(
    http: httpx.Client,
    request: Request,
    symbol: str,
    throttle: Throttle,
    max_attempts: int,
    backoff: float,
    sleep: Callable[[float], None],
) -> dict[str, Any]:
    for attempt in retrying(
        symbol,
        attempts=max_attempts,
        base=backoff,
        cap=MAX_BACKOFF,
        retry_on=(Retryable,),
        sleep=sleep,
    ):
        with attempt:
            throttle.wait()
            return request(http, symbol)
    raise AssertionError("unreachable")  # the policy returns or re-raises
