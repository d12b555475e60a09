"""Read a data folder into the dashboard's summary: values, QQQ, positions and trades.

Everything here reads and never writes (the dashboard mounts the folder read-only), and
nothing in the folder can make it crash: a line that cannot be used is skipped and
reported, a missing file or folder gives an empty state.

How a model's line is valued (the same rules as the run's own summary, ``runner.summarise``):

* The first point is the start of the run: the opening row of ``position.jsonl`` (cash
  only) valued at the open of the first trading day, when the agent starts trading.
* Then one point per committed trading day: cash plus every holding at that day's close;
  on the newest day of the data only the open is known, and the open is used.
* QQQ is drawn over the same days, scaled to the model's starting value: the start is
  QQQ's open on the first trading day, each day after its close (or open on the newest
  day). Its last point over the start is the QQQ return the run prints.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ai_trader.ledger import CASH, portfolio_value
from ai_trader.lock import LOCK_NAME, holder
from ai_trader.market.pricebook import PriceBook, _BadLine, _parse_line
from ai_trader.market.universe import BENCHMARK, MERGED_NAME

AGENT_DATA = "agent_data"
POSITION_FILE = Path("position") / "position.jsonl"
# How far back to look for a price when a symbol has no bar on the day itself.
LOOKBACK_DAYS = 10


@dataclass(frozen=True)
class Skipped:
    """A line (or a whole file, ``line`` None) the dashboard could not use, and why."""

    file: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.reason}"


# --- reading files -------------------------------------------------------------------------


def _read_lines(path: Path) -> tuple[list[str] | None, Skipped | None]:
    try:
        return path.read_text(encoding="utf-8").splitlines(), None
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError) as exc:
        return None, Skipped(str(path), None, f"cannot read the file: {exc}")


def read_prices(path: Path) -> tuple[PriceBook | None, list[Skipped], bool]:
    """The price book from ``merged.jsonl`` (None when the file is missing), the lines
    skipped, and whether the data is the offline SYNTHETIC sample."""
    lines, problem = _read_lines(path)
    if lines is None:
        return None, [problem] if problem else [], False
    bars: dict[str, dict[str, dict[str, float]]] = {}
    skipped: list[Skipped] = []
    synthetic = False
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            symbol, series = _parse_line(line)
        except _BadLine as exc:
            skipped.append(Skipped(str(path), number, str(exc)))
            continue
        bars.setdefault(symbol, {}).update(series)
        # The sample says so in its metadata note; real Alpha Vantage data never does.
        synthetic = synthetic or "SYNTHETIC" in line
    return PriceBook(bars), skipped, synthetic


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_row(row: object) -> str | None:
    """Why a position row cannot be used, or None when it can."""
    if not isinstance(row, dict):
        return "not a JSON object"
    day = row.get("date")
    if not isinstance(day, str) or len(day) != 10 or day[4] != "-" or day[7] != "-":
        return "missing or invalid 'date'"
    positions = row.get("positions")
    if not isinstance(positions, dict):
        return "missing or invalid 'positions'"
    if not _finite(positions.get(CASH)):
        return f"positions has no numeric {CASH!r}"
    for symbol, shares in positions.items():
        if not _finite(shares):
            return f"positions[{symbol!r}] is not a number"
    action = row.get("this_action")
    if action is not None and (
        not isinstance(action, dict) or not isinstance(action.get("action"), str)
    ):
        return "invalid 'this_action'"
    return None


def read_positions(path: Path) -> tuple[list[dict[str, Any]], list[Skipped]]:
    """The usable rows of one ``position.jsonl`` and the lines skipped."""
    lines, problem = _read_lines(path)
    if lines is None:
        return [], [problem] if problem else []
    rows: list[dict[str, Any]] = []
    skipped: list[Skipped] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            skipped.append(Skipped(str(path), number, "not valid JSON"))
            continue
        reason = _check_row(row)
        if reason:
            skipped.append(Skipped(str(path), number, reason))
            continue
        rows.append(row)
    return rows, skipped


def find_signatures(data_dir: Path) -> dict[str, Path]:
    """Each model signature with a position file under ``<data>/agent_data/``, by name."""
    root = data_dir / AGENT_DATA
    try:
        folders = sorted(p for p in root.iterdir() if p.is_dir())
    except OSError:
        return {}
    return {p.name: p / POSITION_FILE for p in folders if (p / POSITION_FILE).is_file()}


def read_running(data_dir: Path) -> list[dict[str, str | None]]:
    """The signatures a live run holds now, each with the day it is trading when known
    (the date of its staged trades), oldest run first."""
    root = data_dir / AGENT_DATA
    try:
        folders = sorted(p for p in root.iterdir() if p.is_dir())
    except OSError:
        return []
    running = []
    for folder in folders:
        held = holder(folder / LOCK_NAME)
        if held is None:
            continue
        day = None
        try:
            staged = json.loads((folder / "position" / "pending.json").read_text("utf-8"))
            day = staged.get("date") if isinstance(staged, dict) else None
        except (OSError, ValueError):
            pass
        running.append(
            {
                "signature": folder.name,
                "day": day if isinstance(day, str) else None,
                "since": held.since,
            }
        )
    return sorted(running, key=lambda item: (str(item["since"]), str(item["signature"])))


# --- prices ----------------------------------------------------------------------------------


def mark(book: PriceBook, symbol: str, day: str) -> float | None:
    """The price a holding is worth on ``day``: the close, the open on the newest day (whose
    close is unknown), else the last close before ``day``."""
    close = book.close(symbol, day)
    if close is not None:
        return close
    opened = book.open(symbol, day)
    if opened is not None:
        return opened
    earlier = day
    for _ in range(LOOKBACK_DAYS):
        earlier = book.previous_day(earlier)
        if earlier is None:
            return None
        close = book.close(symbol, earlier)
        if close is not None:
            return close
    return None


def opening(book: PriceBook, symbol: str, day: str) -> float | None:
    """The open on ``day`` (what a trade that day is filled at), else the mark."""
    price = book.open(symbol, day)
    return price if price is not None else mark(book, symbol, day)


def value(
    positions: Mapping[str, float], prices: Mapping[str, float | None]
) -> tuple[float, list[str]]:
    """Cash plus the holdings at ``prices``; and the held symbols that have no price."""
    held = [s for s, shares in positions.items() if s != CASH and shares]
    missing = [s for s in held if prices.get(s) is None]
    known = {s: p for s in held if (p := prices.get(s)) is not None}
    return portfolio_value(positions, known), missing


# --- one signature -------------------------------------------------------------------------


@dataclass
class Point:
    date: str
    value: float
    benchmark: float | None


@dataclass
class Model:
    signature: str
    start_date: str | None = None
    last_date: str | None = None
    days: int = 0
    initial_value: float | None = None
    final_value: float | None = None
    total_return: float | None = None
    benchmark_return: float | None = None
    series: list[Point] = field(default_factory=list)
    cash: float = 0.0
    holdings: list[dict[str, Any]] = field(default_factory=list)
    trades: list[dict[str, Any]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


def _by_day(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The last row of each traded day (the positions at that day's end), by date."""
    days: dict[str, dict[str, Any]] = {}
    for row in rows:
        if "this_action" in row:
            days[row["date"]] = row
    return dict(sorted(days.items()))


def _start_day(book: PriceBook, days: list[str], start: str | None) -> str | None:
    """The first trading day: where the start is valued (its open) and QQQ's base is taken."""
    if days:
        return days[0]
    later = [d for d in book.dates() if start is None or d > start]
    return later[0] if later else None


def model_summary(signature: str, rows: list[dict[str, Any]], book: PriceBook | None) -> Model:
    """One signature's values, returns, positions and trades from its usable rows."""
    model = Model(signature)
    if not rows:
        model.notices.append(f"{signature}: no usable position rows yet")
        return model
    ends = _by_day(rows)
    days = list(ends)
    opening_row = rows[0] if "this_action" not in rows[0] else None
    if opening_row is not None and days and opening_row["date"] >= days[0]:
        opening_row = None  # not an opening row: it does not precede the trading
    model.days = len(days)
    model.start_date = opening_row["date"] if opening_row else (days[0] if days else None)
    model.last_date = days[-1] if days else model.start_date
    latest = rows[-1]["positions"] if not days else ends[days[-1]]["positions"]
    model.cash = float(latest.get(CASH, 0.0))

    for day in days:
        trades = []
        for row in rows:
            action = row.get("this_action") or {}
            if row["date"] != day or action.get("action") not in ("buy", "sell"):
                continue
            symbol = str(action.get("symbol", ""))
            trades.append(
                {
                    "action": action["action"],
                    "symbol": symbol,
                    "amount": action.get("amount"),
                    "price": book.open(symbol, day) if book else None,
                }
            )
        model.trades.append({"date": day, "trades": trades})

    if book is None:
        model.holdings = [
            {"symbol": s, "shares": n, "price": None, "value": None}
            for s, n in sorted(latest.items())
            if s != CASH and n
        ]
        return model

    unpriced: set[tuple[str, str]] = set()
    first = _start_day(book, days, model.start_date)
    base = opening(book, BENCHMARK, first) if first else None
    start_value: float | None = None
    if opening_row is not None:
        held = opening_row["positions"]
        prices = {s: opening(book, s, first) if first else None for s in held}
        start_value, missing = value(held, prices)
        unpriced.update((s, first or opening_row["date"]) for s in missing)
        model.series.append(Point(opening_row["date"], start_value, start_value if base else None))
    elif days:
        # No opening row (skipped as corrupt, say): scale from the first day's end instead.
        base = mark(book, BENCHMARK, days[0])
    for day in days:
        held = ends[day]["positions"]
        worth, missing = value(held, {s: mark(book, s, day) for s in held})
        unpriced.update((s, day) for s in missing)
        if start_value is None:
            start_value = worth
        qqq = mark(book, BENCHMARK, day)
        bench = start_value * qqq / base if qqq is not None and base else None
        model.series.append(Point(day, worth, bench))
    for point in model.series:
        point.value = round(point.value, 4)
        point.benchmark = round(point.benchmark, 4) if point.benchmark is not None else None

    model.initial_value = start_value
    if model.series and start_value:
        model.final_value = model.series[-1].value
        model.total_return = round(model.final_value / start_value - 1, 6)
        last_bench = model.series[-1].benchmark
        if last_bench is not None and len(model.series) > 1:
            model.benchmark_return = round(last_bench / start_value - 1, 6)
    when = model.last_date or ""
    for symbol, shares in sorted(latest.items()):
        if symbol == CASH or not shares:
            continue
        price = mark(book, symbol, when) if when else None
        model.holdings.append(
            {
                "symbol": symbol,
                "shares": shares,
                "price": price,
                "value": round(shares * price, 4) if price is not None else None,
            }
        )
    for symbol, day in sorted(unpriced, key=lambda pair: (pair[1], pair[0])):
        model.notices.append(f"{signature}: no price for {symbol} on {day}; counted as 0")
    return model


# --- the whole folder ------------------------------------------------------------------------


def benchmark_line(models: list[Model]) -> tuple[str | None, list[dict[str, Any]]]:
    """The one QQQ line the chart draws: that of the model with the most points."""
    candidates = [m for m in models if any(p.benchmark is not None for p in m.series)]
    if not candidates:
        return None, []
    basis = max(candidates, key=lambda m: len(m.series))  # max keeps the first on a tie
    points = [{"date": p.date, "value": p.benchmark} for p in basis.series]
    return basis.signature, [p for p in points if p["value"] is not None]


def summarise(
    data_dir: Path, prices: tuple[PriceBook | None, list[Skipped], bool] | None = None
) -> dict[str, Any]:
    """Everything the page and ``/api/summary`` show, as plain JSON-ready data.

    ``prices`` is ``read_prices``' answer when the caller keeps it cached.
    """
    merged = data_dir / MERGED_NAME
    book, skipped, synthetic = prices if prices is not None else read_prices(merged)
    skipped = list(skipped)
    notices: list[str] = []
    signatures = find_signatures(data_dir)
    models: list[Model] = []
    for name, path in signatures.items():
        rows, bad = read_positions(path)
        skipped.extend(bad)
        models.append(model_summary(name, rows, book))
    if not data_dir.is_dir():
        notices.append(f"The data folder {data_dir} does not exist yet.")
    if not signatures:
        notices.append(
            f"No model runs yet: nothing under {data_dir / AGENT_DATA}. "
            "Start a run (`docker compose up`) and this page fills in as it trades."
        )
    if book is None:
        notices.append(
            f"No prices: {merged} is missing (run `ai-trader merge`); values cannot be shown."
        )
    elif synthetic:
        notices.append("Prices are the offline SYNTHETIC sample, not market data.")
    if skipped:
        notices.append(f"{len(skipped)} line(s) could not be used and were skipped (listed below).")
    for model in models:
        notices.extend(model.notices)
    basis, line = benchmark_line(models)
    return {
        "data_dir": str(data_dir),
        "empty": not models,
        "running": read_running(data_dir),
        "prices": {
            "file": str(merged),
            "found": book is not None,
            "synthetic": synthetic,
            "symbols": len(book.symbols) if book else 0,
            "first_date": book.dates()[0] if book and book.dates() else None,
            "last_date": book.dates()[-1] if book and book.dates() else None,
        },
        "benchmark": {"symbol": BENCHMARK, "basis": basis, "points": line},
        "signatures": [_model_json(m) for m in models],
        "notices": notices,
        "skipped": [asdict(s) for s in skipped],
    }


def _model_json(model: Model) -> dict[str, Any]:
    data = asdict(model)
    del data["notices"]  # gathered at the top level
    return data


class PriceCache:
    """``read_prices`` again only when ``merged.jsonl`` changed (mtime, size or inode)."""

    def __init__(self) -> None:
        self._key: tuple[int, int, int] | None = None
        self._value: tuple[PriceBook | None, list[Skipped], bool] | None = None

    def get(self, path: Path) -> tuple[PriceBook | None, list[Skipped], bool]:
        try:
            stat = os.stat(path)
            key: tuple[int, int, int] | None = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        except OSError:
            key = None
        if self._value is None or key is None or key != self._key:
            self._value = read_prices(path)
            self._key = key
        return self._value
