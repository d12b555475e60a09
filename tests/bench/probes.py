"""What the bench asks from the host: MCP answers, tool-call latencies, the engine's stats.

The readiness probe and the tool-result reading are the product's own
(`ai_trader.services.launcher.probe`, `ai_trader.agent.toolbox.result_value`), so the bench
measures what the agent and `wait-ready` do, not a copy of them.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import docker
import httpx
import requests
from docker.models.containers import Container
from mcp import Client

from ai_trader.agent.toolbox import result_value
from ai_trader.services.launcher import probe

LATENCY_CALLS = 300  # measured calls per tool (the brief asks for at least 200)
LATENCY_WARMUP = 20


class BenchError(Exception):
    """A measurement could not be made; the message says which and why."""


async def first_answers(urls: dict[str, str], limit: float) -> dict[str, float]:
    """The wall-clock time (epoch seconds) at which each service first completes an MCP
    initialize; the services are probed concurrently, every 20 ms."""
    began = time.monotonic()

    async def one(name: str, url: str) -> tuple[str, float]:
        while True:
            if await probe(url, 2.0):
                return name, time.time()
            if time.monotonic() - began > limit:
                raise BenchError(f"the {name} service did not answer within {limit:g} s")
            await asyncio.sleep(0.02)

    return dict(await asyncio.gather(*(one(n, u) for n, u in urls.items())))


@dataclass
class Latency:
    ms: list[float]  # wall time of each measured call
    client_cpu_ms: float  # this process's CPU time per measured call
    server_cpu_ms: float | None  # the container's CPU time per measured call


async def call_latencies(
    url: str,
    tool: str,
    arguments: list[dict[str, Any]],
    before_call: Callable[[int], Awaitable[None]] | None = None,
    server_cpu: Callable[[], float | None] = lambda: None,
) -> Latency:
    """Milliseconds per ``tool`` call on one warm session (the agent's own client mode).

    ``before_call(i)``, when given, runs before call ``i`` outside the timed span. The first
    LATENCY_WARMUP calls are not counted.
    """
    timings: list[float] = []
    cpu0 = server0 = None
    async with Client(url, read_timeout_seconds=60) as client:
        for index, args in enumerate(arguments):
            if index == LATENCY_WARMUP:
                cpu0, server0 = time.process_time(), await asyncio.to_thread(server_cpu)
            if before_call is not None:
                await before_call(index)
            begun = time.perf_counter()
            result = await client.call_tool(tool, args)
            elapsed = (time.perf_counter() - begun) * 1000
            value = result_value(result)
            if isinstance(value, dict) and "error" in value:
                raise BenchError(f"{tool}({args}) answered an error: {value['error']}")
            if index >= LATENCY_WARMUP:
                timings.append(elapsed)
        client_cpu = time.process_time() - (cpu0 or 0.0)
        server1 = await asyncio.to_thread(server_cpu)
    server = (server1 - server0) if server0 is not None and server1 is not None else None
    return Latency(
        timings,
        client_cpu * 1000 / len(timings),
        server * 1000 / len(timings) if server is not None else None,
    )


async def health_latencies(url: str, calls: int) -> list[float]:
    """Milliseconds per plain HTTP GET of a service's /health route (no MCP): the transport."""
    timings: list[float] = []
    async with httpx.AsyncClient() as client:
        for index in range(LATENCY_WARMUP + calls):
            begun = time.perf_counter()
            reply = await client.get(url)
            elapsed = (time.perf_counter() - begun) * 1000
            reply.raise_for_status()
            if index >= LATENCY_WARMUP:
                timings.append(elapsed)
    return timings


# --- the engine's stats -------------------------------------------------------------------


def stats_once(box: Container) -> dict[str, Any]:
    """One sample of `docker stats` for a container, without waiting for a second one."""
    return box.stats(stream=False, one_shot=True)


def cpu_seconds(box: Container) -> float | None:
    """CPU seconds the container has used so far, as the engine counts them."""
    try:
        usage = stats_once(box)["cpu_stats"]["cpu_usage"]["total_usage"]
    except (KeyError, TypeError, docker.errors.APIError):
        return None
    return usage / 1e9


def working_set(memory: dict[str, Any]) -> int:
    """usage - inactive_file: what `docker stats` shows (cgroup v1 or v2 key names)."""
    stats = memory.get("stats") or {}
    inactive = stats.get("total_inactive_file", stats.get("inactive_file", 0))
    return int(memory.get("usage", 0)) - int(inactive)


class MemorySampler(threading.Thread):
    """Samples a running container's memory through the engine's stats until it stops.

    On cgroup v1 the engine also reports the kernel's high-water mark (``max_usage``), the
    exact peak; on cgroup v2 the peak is the highest sampled usage. The engine collects
    stats about once a second, so a sample is asked for every ``interval`` and arrives at
    that pace.
    """

    def __init__(self, box: Container, interval: float = 0.02) -> None:
        super().__init__(name="memory-sampler", daemon=True)
        self.box = box
        self.interval = interval
        self.peak_usage = 0
        self.peak_working_set = 0
        self.samples = 0
        self.high_water_mark = False  # the engine reported max_usage
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            try:
                memory = stats_once(self.box).get("memory_stats") or {}
            except (docker.errors.APIError, requests.exceptions.RequestException):
                return  # the container is gone
            if not memory.get("usage"):
                if self.samples:
                    return  # it has exited: no more samples
                self._done.wait(self.interval)
                continue
            if "max_usage" in memory:
                self.high_water_mark = True
                self.peak_usage = max(self.peak_usage, int(memory["max_usage"]))
            self.peak_usage = max(self.peak_usage, int(memory["usage"]))
            self.peak_working_set = max(self.peak_working_set, working_set(memory))
            self.samples += 1
            self._done.wait(self.interval)

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=10)
