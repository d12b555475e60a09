"""The split topology (compose.split.yml) beside the single container, in the same run.

Start to ready: the four services each in a container of its own (`serve --only NAME`,
started together through the SDK) against one container serving all four, from the first
container's create event to the last service's first MCP answer. Rounds alternate which goes
first. Tool calls: `get_price_local` from the host on the split topology's prices container
and on the single container's prices port, interleaved with GET /health as the latency
figures are, one after the other in the same round.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docker.models.containers import Container

from ai_trader.settings import DEFAULT_PORTS, HEALTH_PATH, MCP_PATH, SERVICE_NAMES
from bench.calls import BLOCK, WARMUP_BLOCKS, Interleaved
from bench.latency import BOOKS, LATENCY_CALLS
from bench.probes import BenchError, first_answers
from bench.report import Figure, summary
from integration import engine

if TYPE_CHECKING:
    from bench.timings import Started

SPLIT_ROUNDS = 3  # at most
READY_LIMIT = 120.0  # a guard against a hang, not a measure


def start_to_ready(created: list[float], ready: dict[str, float]) -> float:
    """From the first container's create event to the last service's first answer."""
    return max(ready.values()) - min(created)


class SplitFigures:
    """The split-topology measurements of `timings.Bench`, which supplies these."""

    runs: int
    details: dict[str, Any]

    def add(self, figure: Figure) -> None: ...
    def copy_of(self, template: Path, name: str) -> Path: ...
    def give_to_container(self, path: Path) -> None: ...
    def services_container(self, data: Path) -> Started: ...
    def start(
        self,
        kind: str,
        data: Path | None,
        *,
        entrypoint: list[str] | None = None,
        command: list[str] | None = None,
        publish: bool = True,
    ) -> Started: ...
    def remove(self, box: Container) -> None: ...
    def urls(self, box: Container) -> dict[str, str]: ...
    def host_calls(
        self,
        box: Container,
        mcp_url: str,
        health_url: str,
        tool: str,
        calls: list[tuple[dict[str, Any], dict[str, Any]]],
    ) -> Interleaved: ...

    def _created(self, box: Container, since: float) -> float:
        found = [e.time for e in engine.container_events(box.id, since) if e.action == "create"]
        if not found:
            raise BenchError(f"the engine reported no create event for {box.name}")
        return found[0]

    def _single(self, data: Path) -> tuple[float, Container]:
        started = self.services_container(data)
        urls = self.urls(started.box)
        ready = asyncio.run(first_answers(urls, READY_LIMIT))
        return start_to_ready([self._created(started.box, started.since)], ready), started.box

    def _split(self, data: Path) -> tuple[float, dict[str, Container]]:
        boxes: dict[str, Container] = {}
        created: list[float] = []
        for name in SERVICE_NAMES:
            # Math and search mount nothing, as in compose.split.yml.
            mount = data if name in ("trade", "prices") else None
            started = self.start(f"split-{name}", mount, entrypoint=["python"],
                                 command=["-m", "ai_trader", "serve", "--only", name])  # fmt: skip
            boxes[name] = started.box
            created.append(self._created(started.box, started.since))
        urls = {name: self.urls(box)[name] for name, box in boxes.items()}
        ready = asyncio.run(first_answers(urls, READY_LIMIT))
        return start_to_ready(created, ready), boxes

    def _price_calls(self, box: Container, prices: Path) -> Interleaved:
        from ai_trader.context import RunContext
        from ai_trader.layout import MERGED_NAME
        from ai_trader.market.pricebook import PriceBook
        from ai_trader.market.universe import NASDAQ_100

        book = PriceBook.load(prices / MERGED_NAME)
        days = book.dates()
        symbols = [s for s in NASDAQ_100 if book.bar(s, days[-2])]
        meta = RunContext("bench-split", days[-1], BOOKS, "").to_meta()
        total = WARMUP_BLOCKS * BLOCK + LATENCY_CALLS
        calls = [({"symbol": symbols[i % len(symbols)], "date": days[-2]}, meta)
                 for i in range(total)]  # fmt: skip
        url = self.urls(box)["prices"]
        return self.host_calls(box, url, url.removesuffix(MCP_PATH) + HEALTH_PATH,
                               "get_price_local", calls)  # fmt: skip

    def measure_split(self, prices: Path) -> None:
        single_s: list[float] = []
        split_s: list[float] = []
        calls: dict[str, Interleaved] = {}
        for run in range(min(self.runs, SPLIT_ROUNDS)):
            data = self.copy_of(prices, f"split-{run}")
            self.give_to_container(data)
            order = ("single", "split") if run % 2 == 0 else ("split", "single")
            for side in order:
                if side == "single":
                    seconds, box = self._single(data)
                    single_s.append(seconds)
                    if run == 0:
                        calls["single"] = self._price_calls(box, prices)
                    self.remove(box)
                else:
                    seconds, boxes = self._split(data)
                    split_s.append(seconds)
                    if run == 0:
                        calls["split"] = self._price_calls(boxes["prices"], prices)
                    for box in boxes.values():
                        self.remove(box)
            shutil.rmtree(data)
        how = (
            "From the first container's create event to the last of the four services' first "
            "MCP answer from the host; the single container serves all four, the split "
            "topology runs `serve --only NAME` in four containers started together. Rounds "
            "alternate which goes first."
        )
        self.add(Figure.of("split_ready", "start to ready: split topology (4 containers)",
                           "s", split_s, how))  # fmt: skip
        self.add(Figure.of("single_ready_split_run", "start to ready: single container, same "
                           "rounds", "s", single_s, how))  # fmt: skip
        call_how = (
            "get_price_local from the host over the published port, in blocks interleaved "
            "with GET /health (the latency figures' method), first round only."
        )
        for side, label in (("split", "split topology's prices container"),
                            ("single", "single container")):  # fmt: skip
            result = calls[side]
            self.add(Figure.of(f"split_price_p50_{side}", f"get_price_local p50: {label}",
                               "ms", result.tool_ms, call_how))  # fmt: skip
            self.add(Figure.of(f"split_health_p50_{side}", f"GET /health p50: {label}",
                               "ms", result.floor_ms, call_how))  # fmt: skip
        self.details["split"] = {
            "rounds": len(split_s),
            "ports": DEFAULT_PORTS,
            **{f"{side}_tool_ms": summary(r.tool_ms) for side, r in calls.items()},
        }
