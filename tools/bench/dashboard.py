"""How fast the dashboard answers a long backtest: ``measure()``, which ``nox -s bench``
calls, and ``python -m bench.dashboard`` (from tools/) on its own.

It writes a synthetic data folder (``days`` trading days of prices for the NASDAQ-100 and
QQQ, and ``models`` books in the ledger's own format, every row carrying every symbol as
real books do), starts the real dashboard (``ai-trader dashboard``) on a free loopback
port, and times over HTTP:

* ``cold``: the first ``/api/summary`` (every file parsed);
* ``warm``: ``/api/summary`` again with nothing changed;
* ``one_day_more``: after one book gained a trading day (rewritten whole and atomically,
  as the ledger commits a day), the median over the books;
* ``new_prices``: after ``merged.jsonl`` was replaced (the prices parsed again);
* ``page_after_change`` / ``page_warm``: ``/`` after a change and unchanged;
* ``health_during_cold``: ``/health`` asked over and over while a cold summary is worked
  out, and how long the slowest answer took;
* ``parse_floor``: the format's own floor, measured just before and just after the cold
  summary: every line of the same files through the standard library's ``json.loads``,
  with no checks and no figures. A cold summary cannot take less than reading its JSON.

Each timing is a pair: wall seconds, and the CPU seconds the server used for it (from
/proc; None elsewhere), which a busy machine disturbs less. The figures are reported with
the load average beside them; they decide nothing (the machine is shared): tests check
behaviour, this reports time.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from ai_trader.layout import MERGED_NAME, BookPaths, books_dir
from ai_trader.market.universe import BENCHMARK, NASDAQ_100

DAYS = 5000
MODELS = 4
WARM_RUNS = 5
HOLDINGS = 20  # symbols a synthetic model holds at most (an LLM agent holds a handful)
START = date(2005, 1, 3)
READY_SECONDS = 60.0
REQUEST_SECONDS = 600.0


# --- the synthetic folder ----------------------------------------------------------------------


def trading_days(count: int) -> list[str]:
    """``count`` weekdays from 2005-01-03 (holidays do not matter to the dashboard)."""
    days: list[str] = []
    day = START
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day.isoformat())
        day += timedelta(days=1)
    return days


def write_prices(path: Path, days: list[str], symbols: list[str], seed: int = 1) -> None:
    """``merged.jsonl`` in the merge's shape: a random walk per symbol, the newest day with
    only its open."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not a secret
    with path.open("w", encoding="utf-8") as out:
        for symbol in symbols:
            price = rng.uniform(20, 400)
            series: dict[str, dict[str, str]] = {}
            for day in days:
                opened = price
                price = max(1.0, price * (1 + rng.gauss(0, 0.02)))
                series[day] = {
                    "1. buy price": f"{opened:.4f}",
                    "2. high": f"{max(opened, price) * 1.01:.4f}",
                    "3. low": f"{min(opened, price) * 0.99:.4f}",
                    "4. sell price": f"{price:.4f}",
                    "5. volume": str(rng.randrange(10**5, 10**7)),
                }
            series[days[-1]] = {"1. buy price": series[days[-1]]["1. buy price"]}
            meta = {"1. Information": "synthetic benchmark data", "2. Symbol": symbol}
            out.write(json.dumps({"Meta Data": meta, "Time Series (Daily)": series}) + "\n")


def book_rows(
    days: list[str], symbols: list[str], seed: int, holdings: int = HOLDINGS
) -> Iterator[dict[str, Any]]:
    """A book's rows: the opening row, then each day one buy or sell of one share, or a
    no_trade, holding at most ``holdings`` symbols; every row lists every symbol, as the
    ledger writes them."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not a secret
    positions: dict[str, float] = dict.fromkeys(symbols, 0)
    positions["CASH"] = 1_000_000.0
    yield {"date": "2005-01-01", "id": 0, "positions": dict(positions)}
    for number, day in enumerate(days, start=1):
        held = [s for s in symbols if positions[s]]
        symbol = rng.choice(held if len(held) >= holdings else symbols)
        if rng.random() < 0.5:
            action = {"action": "no_trade", "symbol": "", "amount": 0}
        elif positions[symbol] and (len(held) >= holdings or rng.random() < 0.5):
            positions[symbol] -= 1
            action = {"action": "sell", "symbol": symbol, "amount": 1}
        else:
            positions[symbol] += 1
            positions["CASH"] = round(positions["CASH"] - 100.0, 4)
            action = {"action": "buy", "symbol": symbol, "amount": 1}
        yield {"date": day, "id": number, "this_action": action, "positions": dict(positions)}


def write_book(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write a whole book atomically (a temporary file, then a rename), as the ledger does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.bench.tmp")
    temporary.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    os.replace(temporary, path)


def build_folder(data_dir: Path, days: int, models: int) -> dict[str, list[dict[str, Any]]]:
    """The synthetic folder; returns each model's rows (the last day held back, so a run
    can add it)."""
    calendar = trading_days(days + 1)
    symbols = [s for s in NASDAQ_100 if s != BENCHMARK]
    write_prices(data_dir / MERGED_NAME, calendar, [*symbols, BENCHMARK])
    books = {}
    for index in range(models):
        rows = list(book_rows(calendar, symbols, seed=100 + index))
        signature = f"bench-model-{index + 1}"
        write_book(book_path(data_dir, signature), rows[:-1])
        write_accounting(data_dir, signature, calendar[:-1])
        books[signature] = rows
    return books


def write_accounting(data_dir: Path, signature: str, days: list[str]) -> None:
    """Beside each book, what a model run leaves: a usage row a day (five requests, tokens and
    dollars) and a manifest, so the report and the dashboard read them as they would."""
    paths = BookPaths(books_dir(data_dir) / signature)
    rows = ({"date": day, "requests": 5, "unknown": 0, "prompt_tokens": 12_000,
             "completion_tokens": 800, "cached_tokens": 4_000, "cost_usd": 0.0025}
            for day in days)  # fmt: skip
    write_book(paths.usage_file, list(rows))
    made = {"schema": "ai-trader.run/1", "package_version": "bench", "config_sha256": "0" * 64,
            "responses": "off", "started": "2026-01-01T00:00:00+00:00", "ended": None}  # fmt: skip
    paths.manifest_file.write_text(json.dumps(made), encoding="utf-8")


def book_path(data_dir: Path, signature: str) -> Path:
    return BookPaths(books_dir(data_dir) / signature).position_file


# --- the server --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(port: int, path: str, timeout: float = REQUEST_SECONDS) -> tuple[int, bytes, float]:
    """Status, body and seconds taken of one GET."""
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path)
        reply = connection.getresponse()
        body = reply.read()
    finally:
        connection.close()
    return reply.status, body, time.perf_counter() - started


@contextmanager
def dashboard(data_dir: Path) -> Iterator[Server]:
    """The real ``ai-trader dashboard`` on a free port, until the block ends."""
    port = _free_port()
    env = {**os.environ, "DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "ai_trader", "dashboard", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + READY_SECONDS
        while True:
            try:
                if get(port, "/health", timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the dashboard did not start (exit {server.poll()})")
            time.sleep(0.1)
        yield Server(port, server.pid)
    finally:
        server.terminate()
        server.wait(timeout=20)


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user and system) a process has used, from /proc (None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """The running dashboard: its port, and the CPU time it used for each request (on a
    busy machine the wall time says more about the neighbours than about the dashboard)."""

    def __init__(self, port: int, pid: int) -> None:
        self.port, self.pid = port, pid

    def timed(self, path: str) -> tuple[float, float | None]:
        before = cpu_seconds(self.pid)
        status, body, seconds = get(self.port, path)
        after = cpu_seconds(self.pid)
        if status != 200:
            raise RuntimeError(f"{path} answered {status}: {body[:200]!r}")
        used = after - before if after is not None and before is not None else None
        return seconds, used


def _median(pairs: list[tuple[float, float | None]]) -> tuple[float, float | None]:
    cpu = [c for _, c in pairs if c is not None]
    return (
        statistics.median(w for w, _ in pairs),
        statistics.median(cpu) if len(cpu) == len(pairs) else None,
    )


def _health_while(port: int, work: threading.Thread) -> list[float]:
    """Latencies of /health asked back to back while ``work`` runs."""
    times = []
    while work.is_alive():
        status, _, seconds = get(port, "/health", timeout=REQUEST_SECONDS)
        if status != 200:
            raise RuntimeError(f"/health answered {status}")
        times.append(seconds)
    return times


def time_report(data_dir: Path) -> tuple[float, float | None]:
    """Wall and CPU seconds of `ai-trader report --format json` over ``data_dir`` in a new
    process (imports, every book and the prices read, every metric), its output discarded."""
    env = {**os.environ, "DATA_DIR": str(data_dir)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "ai_trader", "report", "--format", "json", "-o", os.devnull],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"ai-trader report exited {done.returncode}: {done.stderr[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def parse_floor(data_dir: Path) -> tuple[float, float]:
    """Wall and CPU seconds to read every JSON file under ``data_dir`` and ``json.loads``
    each of its lines: what any reader of these files pays before it checks anything."""
    files = sorted(p for p in data_dir.rglob("*.json*") if p.is_file())
    wall, cpu = time.perf_counter(), time.process_time()
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                json.loads(line)
    return time.perf_counter() - wall, time.process_time() - cpu


# --- the measurement ---------------------------------------------------------------------------


def measure(
    days: int = DAYS, models: int = MODELS, warm_runs: int = WARM_RUNS, folder: Path | None = None
) -> dict[str, Any]:
    """Build the folder (in a temporary directory unless ``folder`` is given), time the
    dashboard on it, and return the figures in seconds with the load average beside them."""
    with tempfile.TemporaryDirectory(prefix="ai-trader-dashboard-bench-") as scratch:
        data_dir = folder or Path(scratch) / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        built = time.perf_counter()
        books = build_folder(data_dir, days, models)
        figures: dict[str, Any] = {
            "days": days,
            "models": models,
            "symbols": len({*NASDAQ_100, BENCHMARK}),
            "folder_mb": round(sum(p.stat().st_size for p in data_dir.rglob("*.json*")) / 1e6, 1),
            "build_s": round(time.perf_counter() - built, 2),
            "cpus": os.cpu_count(),
            "load_before": [round(x, 2) for x in os.getloadavg()],
        }
        figures["report_cold"] = time_report(data_dir)
        with dashboard(data_dir) as server:
            port = server.port
            floors: list[tuple[float, float | None]] = [parse_floor(data_dir)]
            cold: list[tuple[float, float | None]] = []
            work = threading.Thread(target=lambda: cold.append(server.timed("/api/summary")))
            work.start()
            health = _health_while(port, work)
            work.join()
            floors.append(parse_floor(data_dir))
            figures["cold"] = cold[0]
            figures["parse_floor"] = _median(floors)
            figures["health_during_cold"] = {
                "answers": len(health),
                "median_s": statistics.median(health) if health else None,
                "max_s": max(health) if health else None,
            }
            figures["warm"] = _median([server.timed("/api/summary") for _ in range(warm_runs)])
            grown = []
            for signature, rows in books.items():
                write_book(book_path(data_dir, signature), rows)  # one more trading day
                grown.append(server.timed("/api/summary"))
            figures["one_day_more"] = _median(grown)
            figures["page_after_change"] = server.timed("/")
            figures["page_warm"] = _median([server.timed("/") for _ in range(warm_runs)])
            merged = data_dir / MERGED_NAME
            copy = merged.with_name(".merged.bench.tmp")
            shutil.copyfile(merged, copy)
            os.replace(copy, merged)  # a new file, as the merge writes it: parsed again
            figures["new_prices"] = server.timed("/api/summary")
        figures["load_after"] = [round(x, 2) for x in os.getloadavg()]
        return figures


TIMINGS = {
    "report_cold": "ai-trader report, a new process",
    "cold": "/api/summary, cold",
    "parse_floor": "json.loads of the same files (floor)",
    "warm": "/api/summary, unchanged",
    "one_day_more": "/api/summary, a book one day longer",
    "new_prices": "/api/summary, a new merged.jsonl",
    "page_after_change": "/, after a change",
    "page_warm": "/, unchanged",
}


def report(figures: dict[str, Any]) -> str:
    """The figures as a few lines of text, load average included."""
    health = figures["health_during_cold"]
    lines = [
        f"dashboard: {figures['days']} trading days, {figures['models']} models, "
        f"{figures['symbols']} symbols ({figures['folder_mb']} MB of data), "
        f"{figures['cpus']} CPUs, load average {figures['load_before']} -> "
        f"{figures['load_after']}",
        f"  {'':36} {'wall':>9} {'CPU':>11}",
    ]
    for key, label in TIMINGS.items():
        wall, cpu = figures[key]
        lines.append(f"  {label:36} {_seconds(wall):>9} {_seconds(cpu):>11}")
    floor = figures["parse_floor"][0]
    if floor:
        lines.append(
            f"  the cold summary is {figures['cold'][0] / floor:.1f}x the json.loads floor "
            "(CPU: the server's for requests, the bench's own for the floor)"
        )
    lines.append(
        f"  /health during the cold summary: {health['answers']} answers, median "
        f"{_seconds(health['median_s'])}, slowest {_seconds(health['max_s'])}"
    )
    return "\n".join(lines)


def _seconds(value: float | None) -> str:
    return f"{value:.3f} s" if value is not None else "n/a"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=DAYS)
    parser.add_argument("--models", type=int, default=MODELS)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures = measure(args.days, args.models)
    print(json.dumps(figures, indent=2) if args.json else report(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
