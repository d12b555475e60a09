"""Read a data folder into the dashboard's summary: values, QQQ, positions and trades.

The rules:

* Everything here reads and never writes (the dashboard mounts the folder read-only).
* Nothing in the folder can make it crash: the formats' owners read leniently
  (``PriceBook.load_lenient``, ``ledger.read_line``), so a line that cannot be used is
  skipped and reported, and a missing file or folder gives an empty state.
* Every figure of a book (its start and last day, how many days, the start and final
  value, the returns, the value per day and QQQ's) is the ``Valuation`` of
  ``ai_trader.valuation``, the same as the run's own summary; nothing here works one out
  again. A day whose holdings cannot all be priced has no value (a gap in the chart, and
  a notice naming the symbols and days), never a value counting them as 0.
* ``Folder`` keeps what it read: the price file is parsed again only when it changes, a
  position file that only grew is parsed from where the last read stopped, and a model's
  figures are worked out again only when its book or the prices changed. ``Source`` keeps
  the JSON on top, encoded again only when the summary's fingerprint changed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ai_trader import ledger, manifest
from ai_trader.errors import UserError
from ai_trader.jsonl import Skipped, numbered, parse_lenient
from ai_trader.layout import BookPaths, books_dir, merged_file
from ai_trader.ledger import CASH
from ai_trader.lock import holder
from ai_trader.market.base import Market
from ai_trader.market.markets import market_of_books
from ai_trader.market.pricebook import PriceBook
from ai_trader.market.us import US_DAILY
from ai_trader.usage import Totals, combined, read_usage, totals
from ai_trader.valuation import Memo, Valuation, mark_price, measure, value_book

__all__ = ["Folder", "Skipped", "Source", "summarise"]

# Days listed in a gap notice before "and N more".
GAP_DAYS_SHOWN = 3
# What a book is valued against when there is no price file: it dates the book by the
# valuation's own rules and values nothing (no figure is taken from it).
NO_PRICES = PriceBook({})
COMPACT = (",", ":")

# (mtime in ns, size, inode): a file replaced or changed has another; None when absent.
StatKey = tuple[int, int, int] | None


def stat_key(path: Path) -> StatKey:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


# --- reading files -------------------------------------------------------------------------


def read_prices(path: Path) -> tuple[PriceBook | None, list[Skipped]]:
    """The price book from ``merged.jsonl`` (None when it is missing) and the lines skipped."""
    return PriceBook.load_lenient(path)


def find_signatures(data_dir: Path) -> dict[str, Path]:
    """Each model signature with a position file under ``<data>/agent_data/``, by name."""
    try:
        books = [BookPaths(p) for p in sorted(books_dir(data_dir).iterdir()) if p.is_dir()]
    except OSError:
        return {}
    return {b.signature: b.position_file for b in books if b.position_file.is_file()}


def read_running(data_dir: Path) -> list[dict[str, str | None]]:
    """The signatures a live run holds now, each with the day it is trading when known
    (the date of its staged trades), oldest run first."""
    try:
        folders = sorted(p for p in books_dir(data_dir).iterdir() if p.is_dir())
    except OSError:
        return []
    running = []
    for folder in folders:
        try:
            held = holder(BookPaths(folder).lock_file)
        except (OSError, RecursionError):
            continue  # a lock file we cannot read says nothing about a run
        if held is None:
            continue
        running.append(
            {
                "signature": folder.name,
                "day": ledger.Ledger(folder).staged_day(),
                "since": held.since,
            }
        )
    return sorted(running, key=lambda item: (str(item["since"]), str(item["signature"])))


class BookFile:
    """One ``position.jsonl``, read leniently and again only as far as it changed.

    The ledger rewrites the whole file at each commit (atomically), but the rows before
    the new day stay byte for byte the same. So when the bytes already read are still the
    file's start (same length, same digest), only the lines after them are parsed.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.key: StatKey = None
        self.rows: list[dict[str, Any]] = []
        self.skipped: list[Skipped] = []
        # The whole lines already parsed: their length in bytes, digest, count and results.
        self._size = 0
        self._digest = b""
        self._lines = 0
        self._rows: list[dict[str, Any]] = []
        self._skipped: list[Skipped] = []

    def _forget(self, key: StatKey, skipped: list[Skipped]) -> StatKey:
        self.key, self.rows, self.skipped = key, [], skipped
        self._size, self._digest, self._lines, self._rows, self._skipped = 0, b"", 0, [], []
        return key

    def refresh(self) -> StatKey:
        """Read what changed since the last call; the stat key the rows belong to."""
        key = stat_key(self.path)
        if key is not None and key == self.key:
            return key
        name = str(self.path)
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return self._forget(key, [])
        except OSError as exc:
            return self._forget(key, [Skipped(name, None, f"cannot read the file: {exc}")])
        whole = data.rfind(b"\n") + 1  # the bytes of complete lines
        view = memoryview(data)
        digest = hashlib.blake2b(view[: self._size])
        if not (self._size and whole >= self._size and digest.digest() == self._digest):
            self._size, self._lines, self._rows, self._skipped = 0, 0, [], []
            digest = hashlib.blake2b()
        try:
            body = str(view[self._size : whole], "utf-8")
            tail = str(view[whole:], "utf-8")
        except UnicodeDecodeError as exc:
            return self._forget(key, [Skipped(name, None, f"cannot read the file: {exc}")])
        lines = self._lines
        read = ledger.ordered_reader(self._rows[-1]["date"] if self._rows else None)
        found = parse_lenient(name, ((lines + n, s) for n, s in numbered(body)), read)
        digest.update(view[self._size : whole])
        self._rows = self._rows + (found.values or [])
        self._skipped = self._skipped + found.skipped
        self._size, self._digest = whole, digest.digest()
        self._lines = lines + len(body.splitlines())
        # A last line without its newline may still be being written: read it each time.
        # ``read`` goes on from the body's last row, so the tail is held to the same order.
        last = parse_lenient(name, ((self._lines + n, s) for n, s in numbered(tail)), read)
        self.key = key
        self.rows = self._rows + (last.values or [])
        self.skipped = self._skipped + last.skipped
        return key


# --- one signature -------------------------------------------------------------------------


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
    series: list[dict[str, Any]] = field(default_factory=list)
    cash: float = 0.0
    holdings: list[dict[str, Any]] = field(default_factory=list)
    trades: list[dict[str, Any]] = field(default_factory=list)
    # valuation.measure's figures for the book and for QQQ over its days (report's too)
    metrics: dict[str, Any] | None = None
    # usage.totals: trading fees, tokens and the model's dollars (None: unreadable usage)
    accounting: Totals | None = None
    run: dict[str, Any] | None = None  # what produced the book (manifest.shown), if known
    notices: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "notices"}  # gathered on top
        data["holdings"] = [dict(h) for h in self.holdings]
        data["accounting"] = self.accounting.to_json() if self.accounting else None
        return data


def trades_by_day(
    rows: Iterable[Mapping[str, Any]], days: Sequence[str], book: PriceBook | None
) -> list[dict[str, Any]]:
    """Each trading day's buys and sells in file order, each with its fill (the day's open)."""
    found: dict[str, list[dict[str, Any]]] = {day: [] for day in days}
    for row in rows:
        action = row.get("this_action") or {}
        if action.get("action") not in ("buy", "sell") or row["date"] not in found:
            continue
        symbol = str(action.get("symbol", ""))
        found[row["date"]].append(
            {
                "action": action["action"],
                "symbol": symbol,
                "amount": action.get("amount"),
                "price": book.open(symbol, row["date"]) if book else None,
            }
        )
    return [{"date": day, "trades": trades} for day, trades in found.items()]


def last_positions(rows: Sequence[Mapping[str, Any]], last_day: str | None) -> Mapping[str, Any]:
    """The positions at the end of the last trading day (``day_ends``: the last row of that
    day recording an action); the last row's when there is no trading day yet."""
    if last_day is not None:
        for row in reversed(rows):
            if row["date"] == last_day and "this_action" in row:
                found: Mapping[str, Any] = row["positions"]
                return found
    latest: Mapping[str, Any] = rows[-1]["positions"]
    return latest


def gap_notices(signature: str, valued: Valuation) -> list[str]:
    """One notice per reason a day has no value, naming the symbols and the days."""
    days: dict[str, list[str]] = {}
    for gap in valued.gaps:
        days.setdefault(gap.reason, []).append(gap.date)
    notices = []
    for reason, dates in days.items():
        shown = ", ".join(dates[:GAP_DAYS_SHOWN])
        more = len(dates) - GAP_DAYS_SHOWN
        when = f"{shown} and {more} more day(s)" if more > 0 else shown
        notices.append(f"{signature}: {reason} on {when}; the value there is unknown (a gap)")
    return notices


def model_summary(
    signature: str,
    rows: Sequence[Mapping[str, Any]],
    book: PriceBook | None,
    memo: Memo | None = None,
    usage_file: Path | None = None,
    manifest_file: Path | None = None,
    market: Market = US_DAILY,
) -> Model:
    """One signature's values, returns, positions and trades from its usable rows
    (``memo``: the day values of the last call, see ``valuation.value_book``), and what it
    paid, from its ``usage_file`` (``usage.totals``)."""
    model = Model(signature)
    if not rows:
        model.notices.append(f"{signature}: no usable position rows yet")
        return model
    try:
        used = read_usage(usage_file) if usage_file is not None else []
        model.accounting = totals(rows, used)
    except UserError as exc:
        model.notices.append(f"{signature}: tokens and dollars unknown: {exc}")
    try:
        made = manifest.read_manifest(manifest_file) if manifest_file is not None else None
        model.run = manifest.shown(made)
    except UserError as exc:
        model.notices.append(f"{signature}: what produced the book is unknown: {exc}")
    # Without prices the book still has its days (the same rules date it), and no value:
    # against a book of no prices only the dates of the valuation are used.
    benchmark = market.benchmark
    valued = (
        value_book(rows, book, memo, benchmark=benchmark)
        if book is not None
        else value_book(rows, NO_PRICES, benchmark=benchmark)
    )
    model.days = len(valued.days)
    model.start_date = valued.start_date
    model.last_date = valued.last_day or valued.start_date
    model.trades = trades_by_day(rows, valued.days, book)
    latest = last_positions(rows, valued.last_day)
    model.cash = float(latest.get(CASH, 0.0))
    held = sorted((s, n) for s, n in latest.items() if s != CASH and n)
    if book is None:
        model.holdings = [{"symbol": s, "shares": n, "price": None, "value": None} for s, n in held]
        return model

    model.initial_value = valued.initial_value
    model.final_value = valued.final_value
    model.total_return = valued.total_return
    model.benchmark_return = valued.benchmark_return
    model.series = [
        {"date": p.date, "value": p.value, "benchmark": p.benchmark} for p in valued.series
    ]
    model.metrics = measure(
        valued, rows, book, periods_per_year=market.periods_per_year, benchmark=benchmark
    ).to_json()
    when = model.last_date or ""
    for symbol, shares in held:
        price = mark_price(book, symbol, when) if when else None
        worth = shares * price if price is not None else None
        if worth is not None and not math.isfinite(worth):
            worth = None  # too large to be a number: unknown, not infinity
        model.holdings.append({"symbol": symbol, "shares": shares, "price": price, "value": worth})
    model.notices.extend(gap_notices(signature, valued))
    return model


# --- the whole folder ------------------------------------------------------------------------


def benchmark_line(models: list[dict[str, Any]]) -> tuple[str | None, list[dict[str, Any]]]:
    """The one QQQ line the chart draws: that of the model with the most points."""
    candidates = [m for m in models if any(p["benchmark"] is not None for p in m["series"])]
    if not candidates:
        return None, []
    basis = max(candidates, key=lambda m: len(m["series"]))  # max keeps the first on a tie
    points = [{"date": p["date"], "value": p["benchmark"]} for p in basis["series"]]
    return basis["signature"], [p for p in points if p["value"] is not None]


def benchmark_missing(
    book: PriceBook | None, merged: Path, benchmark: str = US_DAILY.benchmark
) -> str | None:
    """Why the benchmark line is blank when the prices have no benchmark (the market's) at
    all; else None."""
    if book is None or benchmark in book.symbols:
        return None
    return (
        f"The benchmark {benchmark} is missing from {merged}, so its line and every return "
        f"against it are n/a: `ai-trader fetch` fetches {benchmark}, then `ai-trader merge`."
    )


def books_market(manifests: Mapping[str, Path], where: Path) -> tuple[Market, str | None]:
    """The market the books trade (their manifests say; the US when none does), and a
    notice when that cannot be told (the US is shown then)."""
    configs = []
    for path in manifests.values():
        try:
            found = manifest.read_manifest(path)
        except UserError:
            continue  # the book's own notice says so
        config = found.get("config") if found is not None else None
        configs.append(config if isinstance(config, dict) else None)
    try:
        return market_of_books(configs, f"the books in {where}"), None
    except UserError as exc:
        return US_DAILY, f"{exc}; shown as the US market."


@dataclass
class _Cached:
    key: tuple[Any, ...]
    model: dict[str, Any]
    notices: list[str]
    accounting: Totals | None


class Folder:
    """A data folder, read as little as its changes need; ``summary()`` is what the page
    and ``/api/summary`` show. Safe to call from several threads (one reads at a time)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._lock = threading.Lock()
        self._prices_key: StatKey = None
        self._prices: tuple[PriceBook | None, list[Skipped]] | None = None
        self._books: dict[str, BookFile] = {}
        self._models: dict[str, _Cached] = {}
        self._memos: dict[str, Memo] = {}
        self._summary: tuple[str, dict[str, Any]] | None = None

    def _read_prices(self) -> tuple[StatKey, PriceBook | None, list[Skipped]]:
        merged = merged_file(self.data_dir)
        key = stat_key(merged)
        if self._prices is None or key is None or key != self._prices_key:
            self._prices = read_prices(merged)
            self._prices_key = key
        return key, *self._prices

    def summary(self) -> dict[str, Any]:
        """Everything the page and ``/api/summary`` show, as plain JSON-ready data, with a
        ``fingerprint`` that changes whenever any of it does."""
        with self._lock:
            return self._summarise()

    def price_book(self) -> PriceBook | None:
        """The prices the last summary was valued against (None: none read, or no file)."""
        with self._lock:
            return self._prices[0] if self._prices is not None else None

    def _summarise(self) -> dict[str, Any]:
        # Stat keys first: a file that changes while it is read gets a new key, so the
        # next call reads it again and the fingerprint changes.
        prices_key, book, price_skips = self._read_prices()
        signatures = find_signatures(self.data_dir)
        books = {}
        usage: dict[str, tuple[Path, StatKey]] = {}
        runs: dict[str, tuple[Path, StatKey]] = {}
        for name, path in signatures.items():
            reader = self._books.get(name)
            if reader is None or reader.path != path:
                reader = self._books[name] = BookFile(path)
            books[name] = (reader.refresh(), reader)
            paths = BookPaths(path.parent.parent)
            usage[name] = (paths.usage_file, stat_key(paths.usage_file))
            runs[name] = (paths.manifest_file, stat_key(paths.manifest_file))
        for gone in set(self._books) - set(signatures):
            del self._books[gone]
            self._models.pop(gone, None)
            self._memos.pop(gone, None)
        running = read_running(self.data_dir)
        exists = self.data_dir.is_dir()
        state = (
            exists,
            prices_key,
            tuple((name, key) for name, (key, _) in books.items()),
            tuple((name, key) for name, (_, key) in usage.items()),
            tuple((name, key) for name, (_, key) in runs.items()),
            tuple(tuple(sorted(r.items())) for r in running),
        )
        fingerprint = hashlib.sha256(repr(state).encode()).hexdigest()[:16]
        if self._summary is not None and self._summary[0] == fingerprint:
            return self._summary[1]
        market, unsure = books_market(
            {name: path for name, (path, _) in runs.items()}, books_dir(self.data_dir)
        )

        skipped = list(price_skips)
        models: list[_Cached] = []
        for name, (key, reader) in books.items():
            skipped.extend(reader.skipped)
            cached = self._models.get(name)
            spent, spent_key = usage[name]
            made, made_key = runs[name]
            wanted = (prices_key, key, spent_key, made_key, id(book), market.key)
            if cached is None or cached.key != wanted:
                memo = self._memos.setdefault(name, Memo())
                model = model_summary(name, reader.rows, book, memo, spent, made, market)
                cached = self._models[name] = _Cached(
                    wanted, model.to_json(), model.notices, model.accounting
                )
            models.append(cached)
        summary = self._assemble(book, skipped, models, running, exists, market)
        if unsure:
            summary["notices"].insert(0, unsure)
        summary["fingerprint"] = fingerprint
        self._summary = (fingerprint, summary)
        return summary

    def _assemble(
        self,
        book: PriceBook | None,
        skipped: list[Skipped],
        models: list[_Cached],
        running: list[dict[str, str | None]],
        exists: bool,
        market: Market = US_DAILY,
    ) -> dict[str, Any]:
        data_dir = self.data_dir
        merged = merged_file(data_dir)
        notices: list[str] = []
        if not exists:
            notices.append(f"The data folder {data_dir} does not exist yet.")
        if not models:
            notices.append(
                f"No model runs yet: nothing under {books_dir(data_dir)}. "
                "Start a run (`docker compose up`) and this page fills in as it trades."
            )
        if book is None:
            notices.append(
                f"No prices: {merged} is missing (run `ai-trader merge`); values cannot be shown."
            )
        elif book.synthetic:
            notices.append("Prices are the offline SYNTHETIC sample, not market data.")
        missing = benchmark_missing(book, merged, market.benchmark)
        if missing:
            notices.append(missing)
        if skipped:
            notices.append(
                f"{len(skipped)} line(s) could not be used and were skipped (listed below)."
            )
        for cached in models:
            notices.extend(cached.notices)
        shown = [cached.model for cached in models]
        basis, line = benchmark_line(shown)
        paid = {c.model["signature"]: c.accounting for c in models if c.accounting is not None}
        dates = book.dates() if book else []
        return {
            "data_dir": str(data_dir),
            "empty": not models,
            "running": running,
            "prices": {
                "file": str(merged),
                "found": book is not None,
                "synthetic": bool(book and book.synthetic),
                "symbols": len(book.symbols) if book else 0,
                "first_date": dates[0] if dates else None,
                "last_date": dates[-1] if dates else None,
            },
            "benchmark": {
                "symbol": market.benchmark,
                "basis": basis,
                "points": line,
                "missing": missing,
            },
            **market_json(market),
            "signatures": shown,
            # every model's fees, tokens and dollars together (usage.combined)
            "accounting_total": combined(paid).to_json() if paid else None,
            "notices": notices,
            "skipped": [asdict(s) for s in skipped],
        }


def market_json(market: Market) -> dict[str, Any]:
    """The market the page names (its currency beside the values); nothing for the US
    default, whose page stays as it was before markets existed."""
    if not market.shows_currency:
        return {}
    return {"market": {"name": market.name, "title": market.title, "currency": market.currency}}


def summarise(data_dir: Path) -> dict[str, Any]:
    """The summary of ``data_dir`` read from scratch (``Folder`` keeps it between calls)."""
    return Folder(data_dir).summary()


# --- the JSON, kept while nothing changed ---------------------------------------------------


def _dumps(value: Any) -> str:
    # Strict JSON: a NaN or an infinity would be a bug upstream, not something to send.
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=COMPACT)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Source:
    """The data folder behind the app. ``Folder`` reads only what changed; on top, the
    JSON is kept while the fingerprint is the same, so an unchanged folder costs a few stat
    calls. Called from worker threads, never on the event loop."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.folder = Folder(data_dir)
        self._lock = threading.Lock()
        self._json: tuple[str, bytes] | None = None
        # Each model's JSON, by the model's dict (the folder keeps it while unchanged).
        self._models: dict[int, tuple[dict[str, Any], str]] = {}

    def summary(self) -> dict[str, Any]:
        """The summary with ``generated``, the time of this read."""
        summary = dict(self.folder.summary())  # a copy: the folder keeps its own
        summary["generated"] = _now()
        return summary

    def summary_json(self) -> bytes:
        summary = self.folder.summary()
        with self._lock:
            if self._json is None or self._json[0] != summary["fingerprint"]:
                self._json = (summary["fingerprint"], self._encode(summary))
            body = self._json[1]
        # The one field that changes on every request, put in front of the kept body.
        return b'{"generated":' + json.dumps(_now()).encode() + b"," + body[1:]

    def _encode(self, summary: Mapping[str, Any]) -> bytes:
        """The summary as JSON, each model's part encoded again only when it changed."""
        parts, kept = [], {}
        for model in summary["signatures"]:
            found = self._models.get(id(model))
            if found is None or found[0] is not model:
                found = (model, _dumps(model))
            kept[id(model)] = found
            parts.append(found[1])
        self._models = kept
        rest = _dumps({k: v for k, v in summary.items() if k != "signatures"})
        return f'{rest[:-1]},"signatures":[{",".join(parts)}]}}'.encode()
