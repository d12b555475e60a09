"""Read ``merged.jsonl`` once and answer price questions from memory.

The services and the agent ask per request, so everything is parsed into plain floats up front.
"""

from __future__ import annotations

import bisect
import json
import math
from pathlib import Path
from typing import Any

from ai_trader.errors import UserError

# The merged file's field names (and the raw Alpha Vantage ones, so either shape loads).
FIELDS = {
    "1. buy price": "open",
    "1. open": "open",
    "2. high": "high",
    "3. low": "low",
    "4. sell price": "close",
    "4. close": "close",
    "5. volume": "volume",
}


class _BadLine(Exception):
    pass


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool):
        raise _BadLine(f"{what} is not a number: {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _BadLine(f"{what} is not a number: {value!r}") from None
    if not math.isfinite(number):
        raise _BadLine(f"{what} is not a finite number: {value!r}")
    return number


def _parse_line(text: str) -> tuple[str, dict[str, dict[str, float]]]:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise _BadLine(f"not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise _BadLine("not a JSON object")
    meta = doc.get("Meta Data")
    symbol = meta.get("2. Symbol") if isinstance(meta, dict) else None
    if not isinstance(symbol, str) or not symbol:
        raise _BadLine('no "Meta Data" / "2. Symbol"')
    series = doc.get("Time Series (Daily)")
    if not isinstance(series, dict):
        raise _BadLine(f'{symbol}: no "Time Series (Daily)" object')
    bars: dict[str, dict[str, float]] = {}
    for day, raw in series.items():
        if not isinstance(raw, dict):
            raise _BadLine(f"{symbol} {day}: the bar is not an object")
        bar = {
            FIELDS[key]: _number(value, f"{symbol} {day} {key!r}")
            for key, value in raw.items()
            if key in FIELDS
        }
        if "open" not in bar:
            raise _BadLine(f"{symbol} {day}: no open price")
        bars[day] = bar
    return symbol, bars


class PriceBook:
    """Daily bars per symbol; on the latest day a symbol may have only its open."""

    def __init__(self, bars: dict[str, dict[str, dict[str, float]]]) -> None:
        self._bars = bars
        self._symbols = frozenset(bars)
        self._dates = sorted({day for series in bars.values() for day in series})

    @classmethod
    def load(cls, path: Path) -> PriceBook:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UserError(
                f"Price file {path} not found: run `ai-trader merge` to create it"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"Cannot read price file {path}: {exc}") from None
        bars: dict[str, dict[str, dict[str, float]]] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                symbol, series = _parse_line(line)
            except _BadLine as exc:
                raise UserError(f"{path}, line {number}: {exc}") from None
            bars.setdefault(symbol, {}).update(series)
        return cls(bars)

    @property
    def symbols(self) -> frozenset[str]:
        return self._symbols

    def dates(self) -> list[str]:
        """Every trading day any symbol has, sorted, as ISO strings."""
        return list(self._dates)

    def bar(self, symbol: str, day: str) -> dict[str, float] | None:
        """open/high/low/close/volume of ``symbol`` on ``day``; keys absent when unknown."""
        found = self._bars.get(symbol, {}).get(day)
        return dict(found) if found is not None else None

    def open(self, symbol: str, day: str) -> float | None:
        return self._bars.get(symbol, {}).get(day, {}).get("open")

    def close(self, symbol: str, day: str) -> float | None:
        return self._bars.get(symbol, {}).get(day, {}).get("close")

    def previous_day(self, day: str) -> str | None:
        """The last trading day strictly before ``day`` (which need not be a trading day)."""
        index = bisect.bisect_left(self._dates, day)
        return self._dates[index - 1] if index > 0 else None
