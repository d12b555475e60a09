"""A deterministic, offline, clearly SYNTHETIC price sample in Alpha Vantage's own shape.

It lets the whole pipeline run with no key and no network. Same inputs give byte-identical files
on any machine and Python version: each symbol's generator is seeded from ``zlib.crc32`` (not
``hash()``, which is salted per process), only ``Random.random()`` is used (its Mersenne Twister
stream is stable across versions), and the arithmetic is limited to + - * / and ``round``, which
IEEE 754 makes exact everywhere (no libm functions such as log or exp whose last bit may vary).
"""

from __future__ import annotations

import json
import logging
import random
import zlib
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

from ai_trader.fsutil import atomic_write_json
from ai_trader.layout import price_file
from ai_trader.market.base import Market
from ai_trader.market.merge import MalformedPrices, check_reply
from ai_trader.market.us import SAMPLE_NOTE, US_DAILY

log = logging.getLogger(__name__)

SYNTHETIC_NOTE = SAMPLE_NOTE  # the US sample's
# Every market's sample note begins so (``Market.sample``); real data never does.
SAMPLE_PREFIX = "SYNTHETIC offline sample"


def _normal(rng: random.Random) -> float:
    # Irwin-Hall: the sum of 12 uniforms minus 6 is close to a standard normal, with additions
    # only. A plain loop, not sum(): Python 3.12 made sum() of floats compensated, which would
    # change the last bits between versions.
    total = 0.0
    for _ in range(12):
        total += rng.random()
    return total - 6.0


def _series(
    symbol: str, days: list[date], seed: int, market: Market = US_DAILY
) -> dict[str, dict[str, str]]:
    """Bars of ``days`` (of each of their slots, for an hourly market), newest first."""
    # Reproducibility is the point here, not unpredictability.
    rng = random.Random(zlib.crc32(f"{seed}:{symbol}".encode()))  # noqa: S311
    spec = market.sample
    if symbol == market.benchmark:
        price, sigma, volume_base = (
            spec.benchmark_price,
            spec.benchmark_sigma,
            spec.benchmark_volume,
        )
    else:
        # Distinct, plausible levels and volatilities for the market's universe.
        price = round(spec.low + rng.random() * spec.span, 2)
        sigma = (0.012 + rng.random() * 0.023) * spec.scale
        volume_base = int(1_000_000 + rng.random() * 59_000_000)
    drift = 0.0004 * spec.scale
    bars: dict[str, dict[str, str]] = {}
    for moment in market.moments(days):
        gap = sigma * 0.3 * _normal(rng)
        move = max(-0.2, min(0.2, drift + sigma * _normal(rng)))
        open_ = round(price * (1.0 + gap), 4)
        close = round(open_ * (1.0 + move), 4)
        # round() is monotonic, so high >= max(open, close) and low <= min(open, close) survive it.
        high = round(max(open_, close) * (1.0 + sigma * 0.6 * rng.random()), 4)
        low = round(min(open_, close) * (1.0 - sigma * 0.6 * rng.random()), 4)
        volume = int(volume_base * (0.5 + rng.random()))
        bars[moment] = {
            "1. open": f"{open_:.4f}",
            "2. high": f"{high:.4f}",
            "3. low": f"{low:.4f}",
            "4. close": f"{close:.4f}",
            "5. volume": str(volume),
        }
        price = close
    # Alpha Vantage lists the newest day first.
    return dict(reversed(bars.items()))


def sample_payload(
    symbol: str, days: list[date], seed: int, market: Market = US_DAILY
) -> dict[str, Any]:
    """One symbol's sample, shaped exactly like a TIME_SERIES_DAILY reply plus a "6. Note"
    (an hourly market's: like a TIME_SERIES_INTRADAY reply at 60min)."""
    if market.slots:
        meta = {
            "1. Information": "Intraday (60min) open, high, low, close prices and volume",
            "2. Symbol": symbol,
            "3. Last Refreshed": market.moments(days[-1:])[-1],
            "4. Interval": "60min",
            "5. Output Size": "Compact",
            "6. Time Zone": market.sample.time_zone,
        }
    else:
        meta = {
            "1. Information": "Daily Prices (open, high, low, close) and Volumes",
            "2. Symbol": symbol,
            "3. Last Refreshed": days[-1].isoformat(),
            "4. Output Size": "Compact",
            "5. Time Zone": market.sample.time_zone,
        }
    meta["6. Note"] = market.sample.note
    return {"Meta Data": meta, market.series_key: _series(symbol, days, seed, market)}


def keep_existing(path: Path, symbol: str, wanted: dict[str, Any]) -> bool:
    """Whether the file at ``path`` stays: usable real data, or exactly this sample."""
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        log.warning("%s is unreadable; writing the sample in its place", path)
        return False
    try:
        check_reply(symbol, stored)
    except MalformedPrices as exc:
        log.warning("%s is unusable (%s); writing the sample in its place", path, exc)
        return False
    note = stored.get("Meta Data", {}).get("6. Note")
    if isinstance(note, str) and note.startswith(SAMPLE_PREFIX):
        return bool(stored == wanted)  # an older sample (another calendar, say) is redone
    return True


def generate_sample(
    symbols: Iterable[str],
    data_dir: Path,
    *,
    end: date = date(2025, 10, 31),
    days: int | None = None,
    seed: int = 20251031,
    market: Market = US_DAILY,
) -> list[str]:
    """Write ``days`` trading days (the market's ``sample.days`` by default) of ``market``
    (its calendar, its slots, its price levels) of bars ending at ``end`` for each symbol
    whose file is missing, unusable (corrupt, or another symbol's), or an older synthetic
    sample.

    A usable file with real data is never touched. Returns the symbols written.
    """
    days = market.sample.days if days is None else days
    if days < 1:
        raise ValueError("days must be at least 1")
    calendar = market.calendar.days_ending(end, days)
    written: list[str] = []
    for symbol in dict.fromkeys(symbols):
        path = price_file(data_dir, symbol)
        payload = sample_payload(symbol, calendar, seed, market)
        if keep_existing(path, symbol, payload):
            continue
        atomic_write_json(path, payload)
        written.append(symbol)
    if written:
        log.warning(
            "Wrote SYNTHETIC sample prices for %d symbols (%s to %s) in %s: not market data",
            len(written),
            calendar[0].isoformat(),
            calendar[-1].isoformat(),
            data_dir,
        )
    return written
