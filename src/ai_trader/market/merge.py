"""Merge the per-symbol price files into ``merged.jsonl`` in the original benchmark's shape.

One line per symbol: ``{"Meta Data": ..., "Time Series (Daily)": {day: bar}}`` with "1. open"
renamed "1. buy price" and "4. close" "4. sell price". On the latest day only the buy price is
kept, because the agent trades at that day's open and must not see its close.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from ai_trader.errors import UserError
from ai_trader.fsutil import atomic_write_jsonl
from ai_trader.market.universe import MERGED_NAME, price_file
from ai_trader.progress import Progress

log = logging.getLogger(__name__)

SERIES_KEY = "Time Series (Daily)"
META_KEY = "Meta Data"
RENAMES = {"1. open": "1. buy price", "4. close": "4. sell price"}
REQUIRED = ("1. open", "4. close")
OPTIONAL = ("2. high", "3. low", "5. volume")


@dataclass
class MergeReport:
    path: Path
    merged: list[str] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)  # file name -> why its old line stayed
    skipped: dict[str, str] = field(default_factory=dict)  # file name -> reason

    @property
    def malformed(self) -> dict[str, str]:
        """Daily files that exist but are unusable (their symbol's old line may be kept)."""
        both = {**self.skipped, **self.kept}
        return {name: why for name, why in both.items() if why != "missing"}


class _Malformed(Exception):
    pass


# The fetch checks a reply with the same rules before it may replace a stored file.
MalformedPrices = _Malformed


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return False
    try:
        number = float(value)
    except ValueError:
        return False
    return math.isfinite(number)


def _check_bar(day: str, bar: Any) -> None:
    try:
        date.fromisoformat(day)
    except ValueError:
        raise _Malformed(f"{day!r} is not a YYYY-MM-DD date") from None
    if not isinstance(bar, dict):
        raise _Malformed(f"the bar for {day} is not an object")
    for key in REQUIRED:
        if not _is_number(bar.get(key)) or float(bar[key]) <= 0:
            raise _Malformed(f"the bar for {day} has no positive numeric {key!r}")
    for key in OPTIONAL:
        if key in bar and not _is_number(bar[key]):
            raise _Malformed(f"the bar for {day} has a non-numeric {key!r}")


def merged_row(symbol: str, payload: Any) -> dict[str, Any]:
    """The merged line for one symbol's TIME_SERIES_DAILY reply; raises _Malformed."""
    if not isinstance(payload, dict):
        raise _Malformed("not a JSON object")
    meta = payload.get(META_KEY)
    if not isinstance(meta, dict):
        raise _Malformed(f"no {META_KEY!r} object")
    named = meta.get("2. Symbol")
    if named != symbol:
        raise _Malformed(f"its {META_KEY!r} names symbol {named!r}, not {symbol!r}")
    series = payload.get(SERIES_KEY)
    if not isinstance(series, dict) or not series:
        raise _Malformed(f"no {SERIES_KEY!r}" if series is None else f"empty or bad {SERIES_KEY!r}")
    for day, bar in series.items():
        _check_bar(day, bar)
    latest = max(series)
    out: dict[str, dict[str, Any]] = {}
    for day, bar in series.items():
        renamed = {RENAMES.get(key, key): value for key, value in bar.items()}
        out[day] = {"1. buy price": renamed["1. buy price"]} if day == latest else renamed
    return {META_KEY: meta, SERIES_KEY: out}


def previous_rows(path: Path) -> dict[str, dict[str, Any]]:
    """The lines of an existing merged.jsonl by symbol (unreadable lines are left out)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, ValueError):
        return {}
    rows: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        try:
            row = json.loads(line)
            symbol = row[META_KEY]["2. Symbol"]
        except (ValueError, KeyError, TypeError):
            continue
        if isinstance(symbol, str) and isinstance(row.get(SERIES_KEY), dict):
            rows[symbol] = row
    return rows


def _read_daily(path: Path, symbol: str) -> dict[str, Any]:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise _Malformed(f"not valid JSON ({exc})") from None
    except OSError as exc:
        raise _Malformed(f"unreadable ({exc.strerror})") from None
    return merged_row(symbol, payload)


def merge(data_dir: Path, symbols: Iterable[str]) -> MergeReport:
    """Write ``data_dir/merged.jsonl`` from every valid ``daily_prices_<SYM>.json``.

    A symbol is never dropped silently: when its daily file is missing or unusable but the
    existing merged.jsonl has a line for it, that line is kept (and reported); otherwise it
    is reported as skipped. The output is written atomically, so an existing merged.jsonl is
    left as it was if anything goes wrong.
    """
    wanted = list(dict.fromkeys(symbols))
    report = MergeReport(path=data_dir / MERGED_NAME)
    previous = previous_rows(report.path)
    rows: list[dict[str, Any]] = []
    with Progress("merge", len(wanted)) as bar:
        for symbol in wanted:
            bar.step(symbol)
            path = price_file(data_dir, symbol)
            try:
                if not path.exists():
                    raise _Malformed("missing")
                rows.append(_read_daily(path, symbol))
            except _Malformed as exc:
                reason = str(exc)
                if symbol in previous:
                    rows.append(previous[symbol])
                    report.kept[path.name] = reason
                    log.warning("%s: %s; keeping its previous merged data", path.name, reason)
                else:
                    report.skipped[path.name] = reason
                    if reason != "missing":
                        log.warning("Skipping %s: %s", path, reason)
                continue
            report.merged.append(symbol)
    if not rows:
        raise UserError(
            f"No valid price file in {data_dir} (looked for daily_prices_<SYMBOL>.json for "
            f"{len(wanted)} symbols); fetch prices or generate the sample first"
        )
    atomic_write_jsonl(report.path, rows)
    missing = sum(1 for reason in report.skipped.values() if reason == "missing")
    log.info(
        "Merged %d symbols into %s (%d kept from before, %d missing, %d malformed)",
        len(report.merged),
        report.path,
        len(report.kept),
        missing,
        len(report.skipped) - missing,
    )
    return report
