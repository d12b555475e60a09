"""Figures and the report: one table on stdout, the same figures as JSON.

A figure is a median with its spread and, where issue 6 set one, an aim. The report never
passes or fails on a time: "met?" is information for the reader.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MB = 1_000_000  # sizes in MB (10^6 bytes), as docker prints them

AIMS: dict[str, float] = {
    "added_over_base": 120.0,
    "rebuild": 10.0,
    "start_ready_full": 1.5,
    "start_ready_services": 1.5,
    "stop_full": 1.0,
    "stop_services": 1.0,
    "latency_price_p50": 5.0,
    "latency_buy_p50": 5.0,
    "fetch_second_requests": 0.0,
}

# The table's order; figures not named here come last.
ORDER = [
    "image_size", "added_over_base", "layers", "layers_added", "context_size",
    "context_files", "cold_build", "rebuild", "start_ready_full", "start_ready_services",
    "stop_full", "stop_services", "docker_run_floor", "docker_stop_floor",
    "latency_price_p50", "latency_price_p99",
    "latency_buy_p50", "latency_buy_p99", "latency_health_p50", "run_throughput",
    "run_loop_throughput",
    "peak_memory", "peak_working_set", "fetch_rate", "fetch_second_requests",
]  # fmt: skip


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0-100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 3),
        "p90": round(percentile(values, 90), 3),
        "p99": round(percentile(values, 99), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
        "mean": round(statistics.fmean(values), 3),
    }


@dataclass
class Figure:
    key: str
    label: str
    unit: str
    median: float | None
    low: float | None = None
    high: float | None = None
    n: int = 0
    aim: float | None = None
    how: str = ""
    values: list[float] = field(default_factory=list)

    @classmethod
    def of(cls, key: str, label: str, unit: str, values: Sequence[float], how: str) -> Figure:
        return cls(
            key,
            label,
            unit,
            statistics.median(values),
            min(values),
            max(values),
            len(values),
            AIMS.get(key),
            how,
            [round(v, 6) for v in values],
        )

    @property
    def met(self) -> bool | None:
        if self.aim is None or self.median is None:
            return None
        return self.median <= self.aim

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met}


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("requests", "layers", "files", "calls"):
        return f"{value:.0f}"
    if unit in ("ms", "s"):
        return f"{value:.2f}"
    return f"{value:.1f}"


def table(figures: Sequence[Figure]) -> str:
    rows = [("figure", "median", "min-max", "aim", "met?", "n")]
    for f in figures:
        span = (
            f"{fmt(f.low, f.unit)}-{fmt(f.high, f.unit)}"
            if f.low is not None and f.n > 1 and f.low != f.high
            else "-"
        )
        aim = f"<= {fmt(f.aim, f.unit)} {f.unit}" if f.aim is not None else "-"
        met = {True: "yes", False: "NO", None: "-"}[f.met]
        rows.append((f.label, f"{fmt(f.median, f.unit)} {f.unit}", span, aim, met, str(f.n)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for number, row in enumerate(rows):
        cells = [
            row[0].ljust(widths[0]),
            *(cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)),
        ]
        lines.append("  ".join(cells))
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def ordered(figures: Sequence[Figure]) -> list[Figure]:
    return sorted(figures, key=lambda f: ORDER.index(f.key) if f.key in ORDER else len(ORDER))


def headline(document: dict[str, Any]) -> str:
    machine = document["machine"]
    image_id = document["details"].get("image", {}).get("id", "?")[7:19]
    return (
        f"ai-trader bench, {document['started'][:16].replace('T', ' ')} UTC: "
        f"{document['image']} ({image_id}) on {document['base']}; "
        f"{machine['nproc']} cores, {(machine['memory_bytes'] or 0) / 2**30:.0f} GiB, "
        f"kernel {machine['kernel']}, docker {machine['docker_server']} "
        f"(API {machine['docker_api']}), python {machine['python']}"
    )


def write(document: dict[str, Any], out: Path, stamp: str) -> Path:
    """``OUT/bench-<stamp>.json`` and ``OUT/latest.json``, each written whole (temp + rename)."""
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, indent=2) + "\n"
    target = out / f"bench-{stamp}.json"
    for path in (target, out / "latest.json"):
        partial = path.with_suffix(".json.partial")
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    return target


def print_report(figures: Sequence[Figure], document: dict[str, Any]) -> None:
    print()
    print(headline(document))
    print(table(figures))
    for note in document["notes"]:
        print(f"note: {note}")
    for error in document["errors"]:
        print(f"error: {error}")
