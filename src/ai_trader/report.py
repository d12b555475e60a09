"""The leaderboard of a data folder: each book's metrics and QQQ's, in Markdown, CSV or JSON.

The rules:

* The books' market (``market.markets.market_of_books``, from their manifests; the US when
  none names one) gives the benchmark (QQQ below means the market's), the periods a year
  the metrics annualise with, and the currency the Markdown and JSON name (the US default
  names none, as before markets existed). Books of several markets are an error.
* It presents what ``valuation`` measures (``value_book``, ``measure``; the formulas are in
  docs/METRICS.md) and computes no figure of its own.
* The books are read strictly, by the run's rules: a book or a price file that breaks them
  stops the report with one line. A leaderboard with a silently skipped row would be
  wrong, not partial. The report writes nothing into the data folder (a cut last line is
  an error here, not a repair).
* Rows are sorted by cumulative return, highest first; a model whose return is n/a comes
  after every number, by signature. QQQ's row is over the days of the model with the most
  trading days (the first by signature on a tie), and every model row also carries QQQ over
  its own days in the JSON.
* An n/a figure is shown as n/a, and its reason is listed under the table (Markdown), in the
  row's ``notes`` column (CSV) or beside the value (JSON). Every gap (a day a book could not
  be valued) is named.
* Each model row also says what produced its book, from its manifest (``manifest``): the
  version, revision, config and prices hashes and the response mode; null without one.
* Each model row also carries its book's accounting (``usage``): trading fees, tokens and
  dollars, unknown (n/a, with the reason) where the book cannot say.
* The JSON has a versioned schema (``SCHEMA``); a change to its shape gets a new version.
  Nothing in any format depends on the time it was made: the same folder gives the same
  bytes.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ai_trader import manifest, repeats
from ai_trader.errors import UserError
from ai_trader.layout import BookPaths, books_dir, merged_file
from ai_trader.ledger import read_strict
from ai_trader.market.base import Market
from ai_trader.market.markets import market_of_books
from ai_trader.market.pricebook import PriceBook
from ai_trader.market.us import US_DAILY
from ai_trader.metrics import DISPLAY, Figure, Metrics, shown
from ai_trader.metrics import FORMATS as METRIC_FORMATS
from ai_trader.usage import DISPLAY as USAGE_DISPLAY
from ai_trader.usage import Totals, combined, read_usage, totals
from ai_trader.valuation import Valuation, measure, value_book

SCHEMA = "ai-trader.report/2"  # 2: accounting, the run manifest and repeats
FORMATS = ("md", "csv", "json")
COLUMNS = DISPLAY  # the figures of a row, in the order the tables show them
ACCOUNTING = USAGE_DISPLAY  # then the book's fees, tokens and dollars
CSV_ACCOUNTING = ("fees", "prompt_tokens", "completion_tokens", "cached_tokens", "cost_usd")


@dataclass(frozen=True)
class Row:
    """One line of the leaderboard: a model's book, or QQQ (``benchmark``)."""

    name: str
    benchmark: bool
    valued: Valuation
    metrics: Metrics
    qqq: Metrics | None  # QQQ over this model's own days (None on QQQ's own row)
    accounting: Totals | None = None  # fees, tokens and dollars (None on QQQ's own row)
    run: dict[str, Any] | None = None  # what produced the book (manifest.shown), if known

    @property
    def final_value(self) -> float | None:
        if self.benchmark:
            points = [p.benchmark for p in self.valued.series]
            return points[-1] if points else None
        return self.valued.final_value


@dataclass(frozen=True)
class Leaderboard:
    data_dir: Path
    rows: tuple[Row, ...]  # sorted, QQQ last
    periods_per_year: float
    risk_free_rate: float
    market: Market = US_DAILY

    @property
    def figures(self) -> dict[str, dict[str, Figure]]:
        """Each model row's metrics by name, by signature (QQQ left out)."""
        return {
            row.name: {key: getattr(row.metrics, key) for key in repeats.FIGURES}
            for row in self.rows
            if not row.benchmark
        }

    @property
    def repeat_groups(self) -> list[repeats.Group]:
        return repeats.groups(self.figures)

    @property
    def repeat_tests(self) -> list[repeats.Welch]:
        return repeats.comparisons(self.repeat_groups, self.figures)

    @property
    def total(self) -> Totals:
        """Every model's fees, tokens and dollars together."""
        return combined({r.name: r.accounting for r in self.rows if r.accounting is not None})


def _sort_key(row: Row) -> tuple[int, float, str]:
    value = row.metrics.cumulative_return.value
    return (1, 0.0, row.name) if value is None else (0, -value, row.name)


def build(
    data_dir: Path,
    books: Path | None = None,
    *,
    periods_per_year: float | None = None,
    risk_free_rate: float = 0.0,
) -> Leaderboard:
    """Measure every book under ``books`` (DATA_DIR/agent_data by default) against the
    folder's prices, annualised over ``periods_per_year`` (the books' market's when None);
    UserError when there is nothing to report or a file breaks its rules."""
    folder = books if books is not None else books_dir(data_dir)
    try:
        signatures = sorted(
            p.name for p in folder.iterdir() if BookPaths(p).position_file.is_file()
        )
    except FileNotFoundError:
        signatures = []
    except OSError as exc:
        raise UserError(f"cannot read the books in {folder}: {exc.strerror}") from None
    if not signatures:
        raise UserError(f"no books in {folder}: run `ai-trader run` first")
    prices = PriceBook.load(merged_file(data_dir))
    made_by = {s: manifest.read_manifest(BookPaths(folder / s).manifest_file) for s in signatures}
    market = market_of_books(
        (_recorded_config(found) for found in made_by.values()), f"the books in {folder}"
    )
    periods = periods_per_year if periods_per_year is not None else market.periods_per_year
    models: list[Row] = []
    for signature in signatures:
        paths = BookPaths(folder / signature)
        rows = read_strict(paths.position_file)
        valued = value_book(rows, prices, benchmark=market.benchmark)
        measured = measure(
            valued,
            rows,
            prices,
            periods_per_year=periods,
            risk_free_rate=risk_free_rate,
            benchmark=market.benchmark,
        )
        accounting = totals(rows, read_usage(paths.usage_file))
        made = manifest.shown(made_by[signature])
        models.append(
            Row(signature, False, valued, measured.model, measured.benchmark, accounting, made)
        )
    basis = min(models, key=lambda r: (-len(r.valued.days), r.name))
    assert basis.qqq is not None
    qqq = Row(market.benchmark, True, basis.valued, basis.qqq, None)
    ordered = (*sorted(models, key=_sort_key), qqq)
    return Leaderboard(data_dir, ordered, periods, risk_free_rate, market)


def _recorded_config(found: dict[str, Any] | None) -> dict[str, Any] | None:
    """The config a manifest records (None without a manifest, or one recording none)."""
    config = found.get("config") if found is not None else None
    return config if isinstance(config, dict) else None


# --- presenting ------------------------------------------------------------------------------


def _cell(figure: Figure, pattern: str) -> str:
    return shown(figure.value, pattern)


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.2f}"


def _period(row: Row) -> str:
    first, last = row.valued.first_day, row.valued.last_day
    return f"{first} to {last}" if first and last else "n/a"


def _drawdown_dates(metrics: Metrics) -> str:
    if metrics.drawdown_peak and metrics.drawdown_trough:
        return f"{metrics.drawdown_peak} to {metrics.drawdown_trough}"
    return ""


def _accounting(row: Row) -> list[tuple[str, Figure | None]]:
    """The row's fees, tokens and dollars as (heading, figure); None on QQQ's row."""
    paid = row.accounting
    return [(heading, getattr(paid, key) if paid else None) for key, heading, _ in ACCOUNTING]


def _notes(row: Row) -> list[str]:
    """Why each n/a figure of the row is n/a, and every gap of its book."""
    figures = [(h, getattr(row.metrics, key)) for key, h, _ in COLUMNS] + _accounting(row)
    notes = [
        f"{heading}: {figure.reason}"
        for heading, figure in figures
        if figure is not None and figure.value is None and figure.reason
    ]
    if not row.benchmark:
        notes += [f"no value on {gap.date}: {gap.reason}" for gap in row.valued.gaps]
    return notes


def _label(row: Row) -> str:
    return f"{row.name} (benchmark)" if row.benchmark else row.name


def markdown(board: Leaderboard) -> str:
    headings = [
        "#",
        "model",
        "period",
        "slots" if board.market.slots else "days",  # what a row of an hourly book is
        f"final value ({board.market.currency})" if board.market.shows_currency else "final value",
        *(h for _, h, _ in COLUMNS),
        *(h for _, h, _ in ACCOUNTING),
    ]
    lines = [
        f"# Leaderboard: {board.data_dir}",
        "",
        f"Annualised over {board.periods_per_year:g} periods a year; risk-free rate "
        f"{board.risk_free_rate:.2%} a year. The formulas are in docs/METRICS.md.",
        *_market_line(board),
        "",
        "| " + " | ".join(headings) + " |",
        "|" + "|".join("---" for _ in headings) + "|",
    ]
    for rank, row in enumerate(board.rows, start=1):
        cells = [
            "" if row.benchmark else str(rank),
            _label(row),
            _period(row),
            str(len(row.valued.days)),
            _money(row.final_value),
            *(_cell(getattr(row.metrics, key), pattern) for key, _, pattern in COLUMNS),
            *(
                "" if figure is None else _cell(figure, pattern)
                for (_, figure), (_, _, pattern) in zip(_accounting(row), ACCOUNTING, strict=True)
            ),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    drawdowns = [
        f"- {_label(row)}: max drawdown from {_drawdown_dates(row.metrics)}"
        for row in board.rows
        if _drawdown_dates(row.metrics)
    ]
    if drawdowns:
        lines += ["", "Drawdowns (peak to trough):", "", *drawdowns]
    together = board.total
    lines += [
        "",
        "All models together: "
        + ", ".join(
            f"{heading} {_cell(getattr(together, key), pattern)}"
            for key, heading, pattern in ACCOUNTING
        )
        + ".",
    ]
    lines += _repeats_markdown(board)
    runs = [f"- {row.name}: {manifest.described(row.run)}" for row in board.rows if row.run]
    if runs:
        lines += ["", "What produced each book (its run.json):", "", *runs]
    notes = [f"- {_label(row)}: {note}" for row in board.rows for note in _notes(row)]
    if notes:
        lines += ["", "Why a figure is n/a, and the days without a value:", "", *notes]
    return "\n".join(lines) + "\n"


def _market_line(board: Leaderboard) -> list[str]:
    """The market in words, when the report names it (every market but the US default)."""
    market = board.market
    if not market.shows_currency:
        return []
    return [
        "",
        f"Market: {market.title} ({market.name}, {market.frequency}), money in "
        f"{market.currency}, against {market.benchmark}.",
    ]


def _csv(figure: Figure) -> str:
    return "" if figure.value is None else repr(figure.value)


def _spread_cell(spread: repeats.Spread, pattern: str) -> str:
    mean, sd = _cell(spread.mean, pattern), _cell(spread.sd, pattern)
    if spread.low.value is None or spread.high.value is None:
        return f"{mean} (sd {sd}; interval n/a)"
    return f"{mean} (sd {sd}; 95% {_cell(spread.low, pattern)} to {_cell(spread.high, pattern)})"


def _repeats_markdown(board: Leaderboard) -> list[str]:
    """The repeat groups' spreads, and Welch's test of each pair (docs/METRICS.md)."""
    found = board.repeat_groups
    if not found:
        return []
    patterns = {key: METRIC_FORMATS[key] for key in repeats.FIGURES}
    headings = {key: heading for key, heading, _ in COLUMNS if key in patterns}
    lines = ["", "Repeats (mean, sample sd and 95% interval of the mean over each model's books):",
             "", "| model | books | " + " | ".join(headings[k] for k in repeats.FIGURES) + " |",
             "|---|---|" + "---|" * len(repeats.FIGURES)]  # fmt: skip
    reasons = []
    for group in found:
        cells = [_spread_cell(group.spreads[k], patterns[k]) for k in repeats.FIGURES]
        lines.append(f"| {group.name} | {len(group.members)} | " + " | ".join(cells) + " |")
        reasons += [
            f"- {group.name}: {headings[k]}: {s.low.reason}"
            for k, s in group.spreads.items()
            if s.low.reason
        ]
    lines += ["", *reasons] if reasons else []
    tests = board.repeat_tests
    if tests:
        lines += ["", "Do two models' returns differ? (Welch's t test, two-sided):", ""]
        for test in tests:
            if test.p.value is None:
                lines.append(f"- {test.a} vs {test.b}: n/a ({test.p.reason})")
            else:
                lines.append(
                    f"- {test.a} vs {test.b}: mean return {_cell(test.difference, '{:+.2%}')} "
                    f"apart, t {_cell(test.t, '{:.3f}')}, df {_cell(test.df, '{:.1f}')}, "
                    f"p {_cell(test.p, '{:.4f}')}"
                )
    return lines


def to_csv(board: Leaderboard) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        [
            "model",
            "benchmark",
            "first_day",
            "last_day",
            "days",
            "final_value",
            *(key for key, _, _ in COLUMNS),
            *CSV_ACCOUNTING,
            "drawdown_peak",
            "drawdown_trough",
            "notes",
        ]
    )
    for row in board.rows:
        writer.writerow(
            [
                row.name,
                "yes" if row.benchmark else "no",
                row.valued.first_day or "",
                row.valued.last_day or "",
                len(row.valued.days),
                "" if row.final_value is None else repr(row.final_value),
                *(_csv(getattr(row.metrics, key)) for key, _, _ in COLUMNS),
                *(
                    _csv(getattr(row.accounting, key)) if row.accounting else ""
                    for key in CSV_ACCOUNTING
                ),
                row.metrics.drawdown_peak or "",
                row.metrics.drawdown_trough or "",
                "; ".join(_notes(row)),
            ]
        )
    return out.getvalue()


def _market_json(board: Leaderboard) -> dict[str, Any]:
    """The market as the JSON names it: only when the report names it (not the US default)."""
    market = board.market
    if not market.shows_currency:
        return {}
    named = {"name": market.name, "frequency": market.frequency, "currency": market.currency}
    return {"market": {**named, "benchmark": market.benchmark}}


def to_json(board: Leaderboard) -> str:
    def row_json(row: Row) -> dict[str, Any]:
        return {
            "model": row.name,
            "benchmark": row.benchmark,
            "first_day": row.valued.first_day,
            "last_day": row.valued.last_day,
            "days": len(row.valued.days),
            "final_value": row.final_value,
            "metrics": row.metrics.to_json(),
            "qqq_same_days": row.qqq.to_json() if row.qqq is not None else None,
            "accounting": row.accounting.to_json() if row.accounting else None,
            "run": row.run,
            "gaps": (
                []
                if row.benchmark
                else [{"date": g.date, "reason": g.reason} for g in row.valued.gaps]
            ),
        }

    document = {
        "schema": SCHEMA,
        "data_dir": str(board.data_dir),
        "periods_per_year": board.periods_per_year,
        "risk_free_rate": board.risk_free_rate,
        **_market_json(board),
        "rows": [row_json(row) for row in board.rows],
        "accounting_total": board.total.to_json(),
        "repeats": {
            "groups": [group.to_json() for group in board.repeat_groups],
            "welch": [test.to_json() for test in board.repeat_tests],
        },
    }
    return json.dumps(document, indent=2, allow_nan=False) + "\n"


RENDERERS: dict[str, Callable[[Leaderboard], str]] = {
    "md": markdown,
    "csv": to_csv,
    "json": to_json,
}


def render(board: Leaderboard, fmt: str) -> str:
    return RENDERERS[fmt](board)
