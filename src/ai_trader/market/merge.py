"""Merge the per-symbol price files into ``merged.jsonl`` in the original benchmark's shape.

One line per symbol: ``{"Meta Data": ..., "Time Series (Daily)": {day: bar}}`` with "1. open"
renamed "1. buy price" and "4. close" "4. sell price" (an hourly market's: ``"Time Series
(60min)": {slot: bar}``, and what is said of a day below is said of a slot; a file of the
other frequency is unusable for the market merged). On the newest day of the data (the
latest day of any symbol) only the buy price is kept, because the agent trades at that
day's open and must not see its close. Every earlier day keeps its close, also the last day
of a symbol whose data ends early (a failed fetch, a delisting): the valuation marks that
day at its close, and the days after it are gaps.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, NotRequired

from pydantic import AfterValidator, Field, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from ai_trader.errors import UserError, first_problem
from ai_trader.fsutil import atomic_write_jsonl
from ai_trader.jsonl import BadLine, numbered
from ai_trader.layout import merged_file, price_file
from ai_trader.market.pricebook import (
    HOURLY_KEY,
    META_KEY,
    SERIES_KEY,
    IsoDay,
    IsoSlot,
    Price,
    parse_line,
)
from ai_trader.progress import Progress

log = logging.getLogger(__name__)

RENAMES = {"1. open": "1. buy price", "4. close": "4. sell price"}
REQUIRED = ("1. open", "4. close")


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


def _real_day(day: str) -> str:
    date.fromisoformat(day)  # a ValueError for 2025-13-45
    return day


def _real_slot(slot: str) -> str:
    datetime.fromisoformat(slot)  # a ValueError for 2025-10-01 25:00:00
    return slot


Positive = Annotated[Price, Field(gt=0)]
# One day of a TIME_SERIES_DAILY reply. The required prices come first: pydantic reports
# problems in field order, and a missing open or close is the one to name.
DailyBar = TypedDict(
    "DailyBar",
    {
        "1. open": Positive,
        "4. close": Positive,
        "2. high": NotRequired[Price],
        "3. low": NotRequired[Price],
        "5. volume": NotRequired[Price],
    },
)
# The reply itself (and a stored daily_prices_<SYM>.json): what the merge accepts.
DailyPayload = TypedDict(
    "DailyPayload",
    {
        "Meta Data": dict[str, Any],
        "Time Series (Daily)": Annotated[
            dict[Annotated[IsoDay, AfterValidator(_real_day)], DailyBar], Field(min_length=1)
        ],
    },
)
_PAYLOAD = TypeAdapter(DailyPayload)
# An hourly market's file: TIME_SERIES_INTRADAY's shape at 60min, its bars named by slot.
HourlyPayload = TypedDict(
    "HourlyPayload",
    {
        "Meta Data": dict[str, Any],
        "Time Series (60min)": Annotated[
            dict[Annotated[IsoSlot, AfterValidator(_real_slot)], DailyBar], Field(min_length=1)
        ],
    },
)
_HOURLY_PAYLOAD = TypeAdapter(HourlyPayload)


def series_key(payload: Any) -> str:
    """The series a price file holds: hourly when it names TIME_SERIES_INTRADAY's, else
    daily (whose absence the check then names)."""
    return HOURLY_KEY if isinstance(payload, dict) and HOURLY_KEY in payload else SERIES_KEY


def _why(payload: Any, error: ValidationError) -> str:
    loc, kind, _ = first_problem(error)
    series = series_key(payload)
    if not loc:
        return "not a JSON object"
    if loc[0] == META_KEY:
        return f"no {META_KEY!r} object"
    if len(loc) == 1:
        return f"no {series!r}" if kind == "missing" else f"empty or bad {series!r}"
    day = loc[1]
    if len(loc) == 2:
        return f"the bar for {day} is not an object"
    key = loc[2]
    if key == "[key]":
        shape = "YYYY-MM-DD HH:MM:SS slot" if series == HOURLY_KEY else "YYYY-MM-DD date"
        return f"{day!r} is not a {shape}"
    if key in REQUIRED:
        return f"the bar for {day} has no positive numeric {key!r}"
    return f"the bar for {day} has a non-numeric {key!r}"


def check_payload(payload: Any) -> DailyPayload | HourlyPayload:
    """A TIME_SERIES_DAILY reply (an hourly market's file: TIME_SERIES_INTRADAY's) checked
    against the merge's rules; raises MalformedPrices."""
    try:
        if series_key(payload) == HOURLY_KEY:
            return _HOURLY_PAYLOAD.validate_python(payload)
        return _PAYLOAD.validate_python(payload)
    except ValidationError as error:
        raise _Malformed(_why(payload, error)) from None


def check_reply(symbol: str, payload: Any) -> dict[str, Any]:
    """One symbol's TIME_SERIES_DAILY reply once it passes the merge's rules; _Malformed."""
    check_payload(payload)
    named = payload[META_KEY].get("2. Symbol")
    if named != symbol:
        raise _Malformed(f"its {META_KEY!r} names symbol {named!r}, not {symbol!r}")
    return dict(payload)


def merged_row(payload: dict[str, Any], newest: str) -> dict[str, Any]:
    """The merged line for a checked reply; on ``newest``, the data's newest day, the bar
    keeps only the buy price."""
    # The reply's own strings, renamed: the check only vouches for them.
    out: dict[str, dict[str, Any]] = {}
    series = series_key(payload)
    for day, bar in payload[series].items():
        renamed = {RENAMES.get(key, key): value for key, value in bar.items()}
        out[day] = {"1. buy price": renamed["1. buy price"]} if day == newest else renamed
    return {META_KEY: payload[META_KEY], series: out}


def previous_rows(path: Path) -> dict[str, dict[str, Any]]:
    """The lines of an existing merged.jsonl by symbol; only lines the price book would
    load are kept (the others are left out)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, ValueError):
        return {}
    rows: dict[str, dict[str, Any]] = {}
    for _, line in numbered(text):
        try:
            symbol = parse_line(line)[META_KEY]["2. Symbol"]
        except BadLine:
            continue
        rows[symbol] = json.loads(line)
    return rows


def _read_daily(path: Path, symbol: str, series: str = SERIES_KEY) -> dict[str, Any]:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise _Malformed(f"not valid JSON ({exc})") from None
    except OSError as exc:
        raise _Malformed(f"unreadable ({exc.strerror})") from None
    held = series_key(payload)
    if held != series:
        raise _Malformed(f"it holds {held!r}, not the {series!r} this market trades on")
    return check_reply(symbol, payload)


def merge(data_dir: Path, symbols: Iterable[str], series: str = SERIES_KEY) -> MergeReport:
    """Write ``data_dir/merged.jsonl`` from every valid ``daily_prices_<SYM>.json``.

    A symbol is never dropped silently: when its daily file is missing or unusable but the
    existing merged.jsonl has a line for it, that line is kept (and reported); otherwise it
    is reported as skipped. The output is written atomically, so an existing merged.jsonl is
    left as it was if anything goes wrong.
    """
    wanted = list(dict.fromkeys(symbols))
    report = MergeReport(path=merged_file(data_dir))
    previous = previous_rows(report.path)
    # symbol -> ("fresh", checked reply) or ("kept", its previous merged line), in order
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    with Progress("merge", len(wanted)) as bar:
        for symbol in wanted:
            bar.step(symbol)
            path = price_file(data_dir, symbol)
            try:
                if not path.exists():
                    raise _Malformed("missing")
                found[symbol] = ("fresh", _read_daily(path, symbol, series))
            except _Malformed as exc:
                reason = str(exc)
                if symbol in previous:
                    found[symbol] = ("kept", previous[symbol])
                    report.kept[path.name] = reason
                    log.warning("%s: %s; keeping its previous merged data", path.name, reason)
                else:
                    report.skipped[path.name] = reason
                    if reason != "missing":
                        log.warning("Skipping %s: %s", path, reason)
                continue
            report.merged.append(symbol)
    # The data's newest day: the one day whose close is not known yet.
    newest = max((max(item[series_key(item)]) for _, item in found.values()), default="")
    rows = [item if kind == "kept" else merged_row(item, newest) for kind, item in found.values()]
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
