"""Tool-call latency against the plain HTTP floor, from the host and from inside the container.

From the host, calls go over the published ports (through docker-proxy), as a user's own MCP
client would. Inside the container, a copy of `calls.py` runs with the image's Python and
calls 127.0.0.1, as the agent does: no docker-proxy. On both paths each call carries the
agent's run context in ``_meta`` (a new one per simulated day), and a refusal (``isError``)
is a bench error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from docker.models.containers import Container

from ai_trader.settings import DEFAULT_PORTS, HEALTH_PATH, MCP_PATH
from bench import calls as calls_module
from bench.calls import BLOCK, WARMUP_BLOCKS, CallFailed, Interleaved, interleaved, process_cpu
from bench.probes import BenchError
from bench.report import Figure, percentile, summary
from integration import engine

LATENCY_CALLS = 300  # measured calls per tool and path, after the warm-up blocks
TRADES_PER_DAY = BLOCK  # buys per simulated day in the buy loop (a busy trading day)
# The books the buy calls trade on (one per path, and one for the same-day buys).
LATENCY_SIGNATURES = ("bench-host-trade", "bench-inside-trade", "bench-one-day")
BOOKS = "agent_data"  # the run context's books folder, relative to the data folder
SERVE_COMMAND = "python -m ai_trader serve"


class LatencyFigures:
    """The latency measurements of `timings.Bench`, which supplies these."""

    details: dict[str, Any]
    notes: list[str]

    def add(self, figure: Figure) -> None: ...
    def urls(self, box: Container) -> dict[str, str]: ...
    def relative(
        self,
        key: str,
        label: str,
        unit: str,
        floor: str,
        pairs: list[tuple[float, float]],
        how: str,
        **samples: list[float],
    ) -> None: ...

    def measure_latency(self, box: Container, data: Path, book: Any) -> None:
        """get_price_local and buy against GET /health, interleaved, on both paths: from the
        host over the published ports (docker-proxy) and from inside the container, where
        the agent calls its services."""
        from ai_trader.lock import signature_lock

        # The trade service takes a call only from the live holder of the signature's lock,
        # with its token: the bench holds each book's lock (the same kernel sees it through
        # the bind mount) for as long as it calls.
        with contextlib.ExitStack() as held:
            tokens = {
                signature: held.enter_context(signature_lock(data / BOOKS / signature)).token
                for signature in LATENCY_SIGNATURES
            }
            self._measure_latency(box, data, book, tokens)

    def _measure_latency(
        self, box: Container, data: Path, book: Any, tokens: dict[str, str]
    ) -> None:
        from ai_trader.context import RunContext
        from ai_trader.market.universe import NASDAQ_100

        days = book.dates()
        today, previous = days[-1], days[-2]
        symbols = [s for s in NASDAQ_100 if book.bar(s, previous)]
        total = (WARMUP_BLOCKS * BLOCK) + LATENCY_CALLS

        def cheapest(day: str) -> str:
            return min(symbols, key=lambda s: book.open(s, day) or float("inf"))

        def price_calls(signature: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
            meta = RunContext(signature, today, BOOKS, tokens.get(signature, "")).to_meta()
            return [({"symbol": symbols[i % len(symbols)], "date": previous}, meta)
                    for i in range(total)]  # fmt: skip

        def buy_calls(signature: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
            # A new simulated day (a new run context) every TRADES_PER_DAY buys, as the
            # agent moves from day to day: the day's stage holds at most that many trades.
            # Days only move forward: the trade service refuses a day already passed.
            if -(-total // TRADES_PER_DAY) > len(days):
                raise BenchError(f"{total} buys need more trading days than the {len(days)}")
            calls = []
            for i in range(total):
                day = days[i // TRADES_PER_DAY]
                meta = RunContext(signature, day, BOOKS, tokens[signature]).to_meta()
                calls.append(({"symbol": cheapest(day), "amount": 1}, meta))
            return calls

        host_urls = self.urls(box)
        server_pid = engine.find_process(box, SERVE_COMMAND).pid
        results: dict[str, Interleaved] = {}
        for tool, service, make in (
            ("get_price_local", "prices", price_calls),
            ("buy", "trade", buy_calls),
        ):
            mcp_url = host_urls[service]
            health_url = mcp_url.removesuffix(MCP_PATH) + HEALTH_PATH
            results[f"{tool} host"] = self.host_calls(
                box, mcp_url, health_url, tool, make(f"bench-host-{service}")
            )
            port = DEFAULT_PORTS[service]
            results[f"{tool} inside"] = self.inside_calls(
                box,
                data,
                {
                    "mcp_url": f"http://127.0.0.1:{port}{MCP_PATH}",
                    "health_url": f"http://127.0.0.1:{port}{HEALTH_PATH}",
                    "tool": tool,
                    "calls": make(f"bench-inside-{service}"),
                    "server_pid": server_pid,
                },
            )
        # The same buys all on one simulated day: the day's stage grows with every trade.
        one_day = RunContext("bench-one-day", today, BOOKS, tokens["bench-one-day"]).to_meta()
        trade_url = host_urls["trade"]
        same_day = self.host_calls(
            box, trade_url, trade_url.removesuffix(MCP_PATH) + HEALTH_PATH, "buy",
            [({"symbol": cheapest(today), "amount": 1}, one_day)] * total,
        ).tool_ms  # fmt: skip
        self.add_latency(results)
        self.details["latency"] = {
            "calls_per_tool": LATENCY_CALLS,
            "warmup_calls": WARMUP_BLOCKS * BLOCK,
            "block": BLOCK,
            **{
                name.replace(" ", "_"): {
                    "tool_ms": summary(r.tool_ms),
                    "health_ms": summary(r.floor_ms),
                    "cpu_ms_per_call": {
                        "client": round(r.client_cpu_ms, 3) if r.client_cpu_ms else None,
                        "server": round(r.server_cpu_ms, 3) if r.server_cpu_ms else None,
                    },
                }
                for name, r in results.items()
            },
            "server_cpu_from": "/proc/<pid>/stat of the serve process around each block of "
            "calls (its host PID from the host, its own PID inside)",
            "buy_all_on_one_day_ms": summary(same_day),
            "buy_all_on_one_day_first_50_p50": round(percentile(same_day[:50], 50), 3),
            "buy_all_on_one_day_last_50_p50": round(percentile(same_day[-50:], 50), 3),
        }

    def host_calls(
        self,
        box: Container,
        mcp_url: str,
        health_url: str,
        tool: str,
        calls: list[tuple[dict[str, Any], dict[str, Any]]],
    ) -> Interleaved:
        try:
            return asyncio.run(
                interleaved(mcp_url, health_url, tool, calls, self.serve_cpu_from_host(box))
            )
        except CallFailed as exc:
            raise BenchError(str(exc)) from None

    def serve_cpu_from_host(self, box: Container) -> Callable[[], float | None]:
        """The CPU seconds of the container's serve process, read from the host's /proc.

        The engine's stats refresh once a second, too slowly for a block of calls. The
        engine names the process's host PID; its command line is checked, so a bench that
        does not share the engine's PID namespace reports no server CPU instead of a
        stranger's.
        """
        top = box.top()
        pid_at, cmd_at = top["Titles"].index("PID"), top["Titles"].index("CMD")
        for row in top["Processes"]:
            if row[cmd_at].startswith(SERVE_COMMAND):
                pid = int(row[pid_at])
                with contextlib.suppress(OSError):
                    if b"ai_trader\0serve" in Path(f"/proc/{pid}/cmdline").read_bytes():
                        return process_cpu(pid)
        self.notes.append("latency: the serve process is not visible here; no server CPU")
        return lambda: None

    def inside_calls(self, box: Container, data: Path, spec: dict[str, Any]) -> Interleaved:
        """The same measurement run by the image's Python inside the container: a copy of
        bench/calls.py and its spec go into the mounted data folder."""
        folder = data / "bench-calls"
        folder.mkdir(exist_ok=True)
        shutil.copyfile(Path(calls_module.__file__), folder / "calls.py")
        (folder / f"{spec['tool']}.json").write_text(json.dumps(spec), encoding="utf-8")
        inside = "/app/data/bench-calls"
        done = box.exec_run(
            ["python", f"{inside}/calls.py", f"{inside}/{spec['tool']}.json"], demux=True
        )
        out, err = (part.decode("utf-8", "replace") if part else "" for part in done.output)
        try:
            answer = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
        except json.JSONDecodeError:
            answer = {}
        if done.exit_code != 0 or "error" in answer or "tool_ms" not in answer:
            reason = answer.get("error") or (err.strip() or out.strip())[-800:]
            raise BenchError(
                f"{spec['tool']} inside the container (exit {done.exit_code}): {reason}"
            )
        answer["blocks"] = [tuple(pair) for pair in answer["blocks"]]
        return Interleaved(**answer)

    def add_latency(self, results: dict[str, Interleaved]) -> None:
        paths = {
            "host": ("", "from the host", "one warm mcp.Client session from the host over the "
                     "published port (docker-proxy)"),
            "inside": ("_inside", "in the container", "one warm mcp.Client session inside the "
                       "container, to 127.0.0.1 (the agent's own path, no docker-proxy)"),
        }  # fmt: skip
        for path, (suffix, where, how_path) in paths.items():
            for tool, key in (("get_price_local", "latency_price"), ("buy", "latency_buy")):
                r = results[f"{tool} {path}"]
                what = (
                    "101 symbols in turn"
                    if tool == "get_price_local"
                    else (f"1 share, a new run context (day) every {TRADES_PER_DAY} buys")
                )
                how = (
                    f"{how_path}, in the agent's client mode with its run context in _meta; "
                    f"{what}; blocks of {BLOCK} calls alternate with blocks of {BLOCK} GETs of "
                    "the same service's /health"
                )
                label = f"{tool} p50, {where}"
                self.add(Figure.of(f"{key}{suffix}_p50", label, "ms", r.tool_ms, how))
                p99 = percentile(r.tool_ms, 99)
                self.add(
                    Figure(f"{key}{suffix}_p99", f"{tool} p99, {where}", "ms", p99, None, None,
                           len(r.tool_ms), None, how)
                )  # fmt: skip
                self.relative(
                    f"{key}{suffix}", label, "ms", "health", r.blocks,
                    f"{how}; excess and ratio per block (its p50 against the p50 of the GETs "
                    "after it), median over the blocks",
                    ours=r.tool_ms, floors=r.floor_ms,
                )  # fmt: skip
            health = results[f"get_price_local {path}"].floor_ms
            self.add(
                Figure.of(
                    f"latency_health{suffix}_p50",
                    f"HTTP GET /health p50 (floor), {where}",
                    "ms",
                    health,
                    f"plain httpx GETs of the prices service's /health, {how_path.split(',')[0]}"
                    ", interleaved with the get_price_local calls: uvicorn and Starlette "
                    "without MCP",
                )
            )
