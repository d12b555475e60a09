"""What the bench asks from the host: first MCP answers and the engine's stats.

The readiness probe is the product's own (`ai_trader.health.mcp_exchange`), so the bench
measures what `wait-ready` does, not a copy of it. Tool-call latency is in `calls.py`, which
also runs inside the container.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import docker
import requests
from docker.models.containers import Container

from ai_trader.health import mcp_exchange


class BenchError(Exception):
    """A measurement could not be made; the message says which and why."""


async def first_answers(urls: dict[str, str], limit: float) -> dict[str, float]:
    """The wall-clock time (epoch seconds) at which each service first completes an MCP
    initialize; the services are probed concurrently, every 20 ms."""
    began = time.monotonic()

    async def one(name: str, url: str) -> tuple[str, float]:
        while True:
            if await asyncio.to_thread(mcp_exchange, url, name, 2.0) is None:
                return name, time.time()
            if time.monotonic() - began > limit:
                raise BenchError(f"the {name} service did not answer within {limit:g} s")
            await asyncio.sleep(0.02)

    return dict(await asyncio.gather(*(one(n, u) for n, u in urls.items())))


# --- the engine's stats -------------------------------------------------------------------

# Where a container's CPU counter lives on the engine's host: cgroup v1 and v2, with the
# cgroupfs and the systemd drivers.
CGROUP_CPU_FILES = (
    "/sys/fs/cgroup/cpuacct/docker/{id}/cpuacct.usage",
    "/sys/fs/cgroup/cpuacct/system.slice/docker-{id}.scope/cpuacct.usage",
    "/sys/fs/cgroup/docker/{id}/cpu.stat",
    "/sys/fs/cgroup/system.slice/docker-{id}.scope/cpu.stat",
)


def cgroup_cpu_seconds(container_id: str) -> float | None:
    """CPU seconds a container has used so far, every process in it counted, also those
    that have exited; read from its cgroup on this host (the engine's stats lag up to a
    second). None when the cgroup is not visible here."""
    for pattern in CGROUP_CPU_FILES:
        try:
            text = Path(pattern.format(id=container_id)).read_text()
        except OSError:
            continue
        if pattern.endswith("cpuacct.usage"):
            return int(text) / 1e9  # nanoseconds
        for line in text.splitlines():
            if line.startswith("usage_usec "):
                return int(line.split()[1]) / 1e6
    return None


def stats_once(box: Container) -> dict[str, Any]:
    """One sample of `docker stats` for a container, without waiting for a second one."""
    return box.stats(stream=False, one_shot=True)


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
