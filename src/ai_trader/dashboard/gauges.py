"""The dashboard's ``/metrics``: each model's progress and figures as Prometheus gauges.

The rules:

* The figures are the dashboard's own (``data.Folder``: the same ``Valuation`` and
  ``measure`` as the report), by ``signature``; nothing is worked out again here but the
  number of days the config asks for.
* A figure that is unknown is absent, never 0: no value without prices, no drawdown
  without two values, no tokens or dollars the usage file does not record, no days total
  without the run's manifest (its config's date range) and the prices (its trading days).
* Cheap: the text is kept while the summary's fingerprint is the same, so a scrape of an
  unchanged folder costs the few ``stat`` calls of ``Folder.summary``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest

from ai_trader import manifest
from ai_trader.dashboard.data import Folder, find_signatures
from ai_trader.errors import UserError
from ai_trader.layout import BookPaths
from ai_trader.market.pricebook import PriceBook

__all__ = ["CONTENT_TYPE", "GAUGES", "Gauges", "days_total"]

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

# name: help. Each has one label, signature.
GAUGES = {
    "ai_trader_model_days_done": "Trading days the model's book has committed.",
    "ai_trader_model_days_total": (
        "Trading days its run's config asks for (init_date to end_date, in the prices)."
    ),
    "ai_trader_model_portfolio_value_usd": "The book's value on its last trading day.",
    "ai_trader_model_return_ratio": "Total return since the start, as a fraction (0.05 = 5%).",
    "ai_trader_model_max_drawdown_ratio": "Deepest fall from a running peak, a fraction <= 0.",
    "ai_trader_model_tokens": "Prompt and completion tokens the model used.",
    "ai_trader_model_llm_cost_usd": "What the model's API calls cost, in dollars.",
}


def days_total(manifest_file: Path, book: PriceBook | None) -> int | None:
    """The trading days of the last run's config range (after init_date, up to end_date, as
    the runner counts them), or None when the manifest or the prices say nothing."""
    if book is None:
        return None
    try:
        made = manifest.read_manifest(manifest_file)
    except UserError:
        return None
    dates = ((made or {}).get("config") or {}).get("date_range") or {}
    start, end = dates.get("init_date"), dates.get("end_date")
    if not isinstance(start, str) or not isinstance(end, str):
        return None
    return sum(1 for day in book.dates() if start < day <= end)


def _figure(value: Any) -> float | None:
    """A figure's value (``{"value": x}`` or a bare number); None when it is n/a."""
    if isinstance(value, Mapping):
        value = value.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def model_figures(model: Mapping[str, Any], total: int | None) -> dict[str, float | None]:
    """One model of the summary as gauge values by name (None: unknown, left out)."""
    metrics = (model.get("metrics") or {}).get("model") or {}
    paid = model.get("accounting") or {}
    return {
        "ai_trader_model_days_done": _figure(model.get("days")),
        "ai_trader_model_days_total": None if total is None else float(total),
        "ai_trader_model_portfolio_value_usd": _figure(model.get("final_value")),
        "ai_trader_model_return_ratio": _figure(model.get("total_return")),
        "ai_trader_model_max_drawdown_ratio": _figure(metrics.get("max_drawdown")),
        "ai_trader_model_tokens": _figure(paid.get("tokens")),
        "ai_trader_model_llm_cost_usd": _figure(paid.get("cost_usd")),
    }


class _Snapshot:
    """A prometheus-client collector over figures already worked out."""

    def __init__(self, figures: Mapping[str, Mapping[str, float | None]]) -> None:
        self.figures = figures

    def collect(self) -> Iterator[Metric]:
        for name, text in GAUGES.items():
            family = GaugeMetricFamily(name, text, labels=["signature"])
            for signature, values in self.figures.items():
                value = values[name]
                if value is not None:
                    family.add_metric([signature], value)
            yield family


class Gauges:
    """The folder's gauges as exposition text, kept while the summary is unchanged."""

    def __init__(self, folder: Folder) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._kept: tuple[str, bytes] | None = None

    def exposition(self) -> bytes:
        summary = self.folder.summary()
        fingerprint = summary["fingerprint"]
        with self._lock:
            if self._kept is None or self._kept[0] != fingerprint:
                self._kept = (fingerprint, self._render(summary))
            return self._kept[1]

    def _render(self, summary: Mapping[str, Any]) -> bytes:
        book = self.folder.price_book()
        books = find_signatures(self.folder.data_dir)
        figures = {}
        for model in summary["signatures"]:
            signature = model["signature"]
            found = books.get(signature)
            # <books>/<signature>/position/position.jsonl: the book's root is two up
            total = (
                days_total(BookPaths(found.parent.parent).manifest_file, book) if found else None
            )
            figures[signature] = model_figures(model, total)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Snapshot(figures))
        return generate_latest(registry)
