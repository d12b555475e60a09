"""Figures and the report: two tables on stdout, the same figures as JSON.

The relative table leads: each timed figure beside Docker's own floor measured in the same
run, interleaved with it, as an excess and a ratio. On a shared machine an absolute time
says more about the neighbours than about the code (the same start moved 3-5x with the
load), while the excess over a floor taken at the same moments moves far less. The absolute
table follows. Neither passes or fails: "met?" is information for the reader.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MB = 1_000_000  # sizes in MB (10^6 bytes), as docker prints them

# Aims on absolute figures that do not move with the load (issue 6), and the dashboard's
# (issue 13). The start, stop and tool-call aims are on the relative figures (issue 14).
AIMS: dict[str, float] = {
    "added_over_base": 120.0,
    "rebuild": 10.0,
    "fetch_second_requests": 0.0,
    "dashboard_cold": 0.3,
    "dashboard_warm": 0.3,
    "dashboard_one_day_more": 0.3,
    "report_cold": 2.0,  # issue 26: `ai-trader report` over 5,000 days x 4 models, cold
}

# Aims on the relative figures (issue 14): ("excess", limit in the figure's unit) or
# ("ratio", limit as a multiple of the floor).
RELATIVE_AIMS: dict[str, tuple[str, float]] = {
    "start_ready_full": ("excess", 0.6),
    "start_ready_services": ("excess", 0.6),
    "stop_full": ("excess", 0.2),
    "stop_services": ("excess", 0.2),
    "latency_price": ("ratio", 3.0),
    "latency_buy": ("ratio", 3.0),
    "latency_price_inside": ("ratio", 3.0),
    "latency_buy_inside": ("ratio", 3.0),
}

# The floors: a short name for the table, and what each is, for its legend.
FLOOR_NAMES = {"run": "idle docker run", "stop": "idle docker stop", "health": "GET /health"}
FLOORS = {
    "run": "idle `docker run` (engine create -> start of a container running sleep)",
    "stop": "idle `docker stop` (engine kill -> die of that container)",
    "health": "plain HTTP GET /health of the same service, same path, same client host",
}

# The tables' order; figures not named here come last.
ORDER = [
    "image_size", "added_over_base", "layers", "layers_added", "context_size",
    "context_files", "cold_build", "rebuild", "start_ready_full", "start_ready_services",
    "start_cpu_full", "start_cpu_services", "stop_full", "stop_services", "docker_run_floor",
    "docker_stop_floor",
    "latency_price_p50", "latency_price_p99", "latency_buy_p50", "latency_buy_p99",
    "latency_health_p50", "latency_price_inside_p50", "latency_price_inside_p99",
    "latency_buy_inside_p50", "latency_buy_inside_p99", "latency_health_inside_p50",
    "run_throughput", "run_loop_throughput", "hourly_run_throughput",
    "hourly_run_loop_throughput", "peak_memory", "peak_working_set",
    "run_floor_nothing_to_do",
    "parallel_1_solo", "parallel_1_jobs", "parallel_1_speedup",
    "parallel_4_solo", "parallel_4_jobs", "parallel_4_speedup",
    "parallel_8_solo", "parallel_8_jobs", "parallel_8_speedup",
    "api_bound_startup",
    "api_bound_4_solo", "api_bound_4_jobs", "api_bound_4_speedup", "api_bound_4_floor",
    "api_bound_4_requests", "api_bound_4_in_flight",
    "api_bound_16_solo", "api_bound_16_jobs", "api_bound_16_speedup", "api_bound_16_floor",
    "api_bound_16_requests", "api_bound_16_in_flight",
    "dashboard_cold", "dashboard_warm", "dashboard_one_day_more",
    "dashboard_health_p50", "dashboard_health_max",
    "fetch_rate", "fetch_second_requests",
]  # fmt: skip
RELATIVE_ORDER = list(RELATIVE_AIMS)

# When the machine counts as busy. Before the bench, the load is the neighbours' alone: above
# half the cores, the bench (which keeps about one core busy itself: client and server take
# turns) waits for a CPU, and every absolute time grows with the neighbours. During and
# after the bench the load includes its own one to two runnable tasks (two in the parallel
# runs and the builds), so only above the cores plus one were others surely running too.
BUSY_BEFORE_PER_CORE = 0.5
BENCH_OWN_LOAD = 1.0


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0-100) of a non-empty sequence: the smallest value with
    at least q% of the values at or below it."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
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
    at_least: bool = False  # the aim is a least value (a speed-up), not a most

    @classmethod
    def of(
        cls,
        key: str,
        label: str,
        unit: str,
        values: Sequence[float],
        how: str,
        *,
        aim: float | None = None,
        at_least: bool = False,
    ) -> Figure:
        """From the samples; the aim is ``aim`` when given, else the key's in AIMS."""
        return cls(
            key,
            label,
            unit,
            statistics.median(values),
            min(values),
            max(values),
            len(values),
            aim if aim is not None else AIMS.get(key),
            how,
            [round(v, 6) for v in values],
            at_least,
        )

    @property
    def met(self) -> bool | None:
        if self.aim is None or self.median is None:
            return None
        return self.median >= self.aim if self.at_least else self.median <= self.aim

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met}


@dataclass
class Relative:
    """A timed figure against the floor measured at the same moments.

    ``ours`` and ``floor`` are the samples whose medians are shown; ``pairs`` are the
    (ours, floor) values of each round (a start and the idle start after it) or each block
    of calls, and the excess and the ratio are medians over the pairs, so drift that hits a
    round hits both sides of it.
    """

    key: str
    label: str
    unit: str
    floor: str  # a key of FLOORS
    ours: list[float]
    floors: list[float]
    pairs: list[tuple[float, float]]
    how: str = ""

    @classmethod
    def of(
        cls,
        key: str,
        label: str,
        unit: str,
        floor: str,
        pairs: Sequence[tuple[float, float]],
        how: str,
        ours: Sequence[float] | None = None,
        floors: Sequence[float] | None = None,
    ) -> Relative:
        """From the pairs alone (starts, stops), or with all samples (tool calls)."""
        if not pairs:
            raise ValueError(f"{key}: no pairs to compare")
        if any(f <= 0 for _, f in pairs):
            raise ValueError(f"{key}: a floor of zero or less cannot be a ratio's base")
        return cls(
            key,
            label,
            unit,
            floor,
            [round(v, 6) for v in (ours if ours is not None else [o for o, _ in pairs])],
            [round(v, 6) for v in (floors if floors is not None else [f for _, f in pairs])],
            [(round(o, 6), round(f, 6)) for o, f in pairs],
            how,
        )

    @property
    def excesses(self) -> list[float]:
        return [o - f for o, f in self.pairs]

    @property
    def ratios(self) -> list[float]:
        return [o / f for o, f in self.pairs]

    @property
    def excess(self) -> float:
        return statistics.median(self.excesses)

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    @property
    def aim(self) -> tuple[str, float] | None:
        return RELATIVE_AIMS.get(self.key)

    @property
    def met(self) -> bool | None:
        if self.aim is None:
            return None
        kind, limit = self.aim
        return (self.excess if kind == "excess" else self.ratio) <= limit

    def as_json(self) -> dict[str, Any]:
        aim = self.aim
        return {
            **asdict(self),
            "ours_median": statistics.median(self.ours),
            "floor_median": statistics.median(self.floors),
            "excess": round(self.excess, 6),
            "excess_min": round(min(self.excesses), 6),
            "excess_max": round(max(self.excesses), 6),
            "ratio": round(self.ratio, 4),
            "ratio_min": round(min(self.ratios), 4),
            "ratio_max": round(max(self.ratios), 4),
            "aim": {"on": aim[0], "at_most": aim[1]} if aim else None,
            "met": self.met,
        }


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("requests", "layers", "files", "calls"):
        return f"{value:.0f}"
    if unit in ("ms", "s", "x"):
        return f"{value:.2f}"
    return f"{value:.1f}"


def aligned(rows: Sequence[Sequence[str]]) -> str:
    """Rows as text columns: the first left-aligned, the others right-aligned, a rule
    under the header row."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for number, row in enumerate(rows):
        cells = [
            row[0].ljust(widths[0]),
            *(cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)),
        ]
        lines.append("  ".join(cells).rstrip())
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


MET = {True: "yes", False: "NO", None: "-"}


def table(figures: Sequence[Figure]) -> str:
    rows = [("figure", "median", "min-max", "aim", "met?", "n")]
    for f in figures:
        span = (
            f"{fmt(f.low, f.unit)}-{fmt(f.high, f.unit)}"
            if f.low is not None and f.n > 1 and f.low != f.high
            else "-"
        )
        sign = ">=" if f.at_least else "<="
        aim = f"{sign} {fmt(f.aim, f.unit)} {f.unit}" if f.aim is not None else "-"
        rows.append((f.label, f"{fmt(f.median, f.unit)} {f.unit}", span, aim, MET[f.met], str(f.n)))
    return aligned(rows)


def signed(value: float, unit: str) -> str:
    return f"{'+' if value >= 0 else '-'}{fmt(abs(value), unit)}"


def relative_table(figures: Sequence[Relative]) -> str:
    rows = [("figure", "ours", "floor", "floor is", "excess", "range", "ratio", "range", "aim",
             "met?", "n")]  # fmt: skip
    for r in figures:
        u = r.unit
        aim = "-"
        if r.aim is not None:
            kind, limit = r.aim
            aim = f"excess <= {fmt(limit, u)} {u}" if kind == "excess" else f"ratio <= {limit:.1f}x"
        rows.append(
            (
                r.label,
                f"{fmt(statistics.median(r.ours), u)} {u}",
                f"{fmt(statistics.median(r.floors), u)} {u}",
                FLOOR_NAMES[r.floor],
                f"{signed(r.excess, u)} {u}",
                f"{signed(min(r.excesses), u)}..{signed(max(r.excesses), u)}",
                f"{r.ratio:.2f}x",
                f"{min(r.ratios):.2f}-{max(r.ratios):.2f}",
                aim,
                MET[r.met],
                str(len(r.pairs)),
            )
        )
    return aligned(rows)


def load_text(load: Sequence[float]) -> str:
    return " ".join(f"{v:.2f}" for v in load)


RELATIVE_ADVICE = "the relative figures are what to compare"
# A host-only run (--only) has no relative table: its floors are figures of the same run.
HOST_ADVICE = "compare each figure with the floor measured beside it"


def busy(
    cores: int, before: float, during: float, after: float, advice: str = RELATIVE_ADVICE
) -> str | None:
    """A warning naming the threshold a 1-minute load average crossed, or None."""
    quiet_before = BUSY_BEFORE_PER_CORE * cores
    quiet_during = cores + BENCH_OWN_LOAD
    found = []
    if before > quiet_before:
        found.append(f"{before:.2f} before it started (above {quiet_before:g}: half the cores)")
    worst = max(during, after)
    if worst > quiet_during:
        found.append(
            f"up to {worst:.2f} while it ran (above {quiet_during:g}: the cores plus the "
            "bench's own load)"
        )
    if not found:
        return None
    return (
        f"warning: the machine was busy: 1-minute load average {'; '.join(found)}, on "
        f"{cores} cores. The bench queued for a CPU, so its absolute times are inflated by "
        f"other work; {advice}."
    )


def load_lines(cores: int, load: dict[str, Any], advice: str = RELATIVE_ADVICE) -> list[str]:
    """The load average before, during (the highest of the samples taken at each section's
    start) and after the bench, and the warning when it was busy."""
    during = max((sample[0] for _, sample in load["during"]), default=load["before"][0])
    lines = [
        f"load average (1, 5, 15 min) on {cores} cores: before {load_text(load['before'])}; "
        f"highest 1-min while running {during:.2f}; after {load_text(load['after'])}"
    ]
    warning = busy(cores, load["before"][0], during, load["after"][0], advice)
    if warning:
        lines.append(warning)
    return lines


def ordered(figures: Sequence[Figure]) -> list[Figure]:
    return sorted(figures, key=lambda f: ORDER.index(f.key) if f.key in ORDER else len(ORDER))


def ordered_relative(figures: Sequence[Relative]) -> list[Relative]:
    order = RELATIVE_ORDER
    return sorted(figures, key=lambda r: order.index(r.key) if r.key in order else len(order))


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


def host_headline(document: dict[str, Any]) -> str:
    """The headline of a host-only run (``--only``): no image, no engine."""
    machine = document["machine"]
    return (
        f"ai-trader bench --only {document['only']}, "
        f"{document['started'][:16].replace('T', ' ')} UTC, on the host at "
        f"{document['revision']}; {machine['nproc']} cores, "
        f"{(machine['memory_bytes'] or 0) / 2**30:.0f} GiB, kernel {machine['kernel']}, "
        f"python {machine['python']}"
    )


def write(document: dict[str, Any], out: Path, stamp: str, prefix: str = "bench") -> Path:
    """``OUT/<prefix>-<stamp>.json`` and ``OUT/latest.json`` (``<prefix>-latest.json`` for
    another prefix than the full bench's), each written whole (temp + rename)."""
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, indent=2) + "\n"
    target = out / f"{prefix}-{stamp}.json"
    latest = out / ("latest.json" if prefix == "bench" else f"{prefix}-latest.json")
    for path in (target, latest):
        partial = path.with_suffix(".json.partial")
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    return target


def print_report(
    relative: Sequence[Relative], figures: Sequence[Figure], document: dict[str, Any]
) -> None:
    machine = document["machine"]
    print()
    print(headline(document))
    for line in load_lines(machine["nproc"], document["load"]):
        print(line)
    print()
    print("Relative to Docker's floor, measured in the same run (interleaved):")
    print(relative_table(relative))
    used = sorted({r.floor for r in relative})
    for name in used:
        print(f"  {FLOOR_NAMES[name]}: {FLOORS[name]}")
    print()
    print("Absolute figures (they move with the machine's load):")
    print(table(figures))
    for note in document["notes"]:
        print(f"note: {note}")
    for error in document["errors"]:
        print(f"error: {error}")


def print_host_report(figures: Sequence[Figure], document: dict[str, Any]) -> None:
    """A host-only run's report: its figures, each beside the floor it carries."""
    machine = document["machine"]
    print()
    print(host_headline(document))
    for line in load_lines(machine["nproc"], document["load"], HOST_ADVICE):
        print(line)
    print()
    print("Figures (they move with the machine's load; each floor is from the same run):")
    print(table(figures))
    for note in document["notes"]:
        print(f"note: {note}")
    for error in document["errors"]:
        print(f"error: {error}")
