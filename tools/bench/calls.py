"""Tool-call latency against its HTTP floor, interleaved: the same code on both paths.

The host imports this module (`bench.calls`); inside the container the bench runs a copy of
this file with the image's own Python (``python calls.py SPEC.json``), where the agent calls
its services without docker-proxy. So it imports only what the image has: the standard
library, the MCP SDK and httpx.

Calls come in blocks: BLOCK tool calls on one warm MCP session, in the agent's client mode
and with its run context in ``_meta``, then BLOCK plain GETs of the same service's
``/health`` (uvicorn and Starlette without MCP: the floor), and so on. Drift on a shared
machine then hits both sides alike. The first WARMUP_BLOCKS blocks of each are not counted.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import httpx
from mcp import Client
from mcp.types import RequestParamsMeta

BLOCK = 10  # calls in a row before switching between the tool and the floor
WARMUP_BLOCKS = 2  # blocks of each kind not counted (connections, caches, first imports)
CALL_TIMEOUT = 60.0


class CallFailed(Exception):
    """A tool call answered an error (``isError``) or the floor did not answer 200."""


@dataclass
class Interleaved:
    tool_ms: list[float] = field(default_factory=list)  # each counted tool call
    floor_ms: list[float] = field(default_factory=list)  # each counted GET /health
    # (p50 of a block of tool calls, p50 of the block of GETs that follows it)
    blocks: list[tuple[float, float]] = field(default_factory=list)
    client_cpu_ms: float | None = None  # this process's CPU per counted tool call
    server_cpu_ms: float | None = None  # the server's CPU per counted tool call


def _text(result: Any) -> str:
    return "\n".join(getattr(part, "text", "") for part in result.content or [])


async def interleaved(
    mcp_url: str,
    health_url: str,
    tool: str,
    calls: Sequence[tuple[dict[str, Any], dict[str, Any] | None]],
    server_cpu: Callable[[], float | None] = lambda: None,
) -> Interleaved:
    """Time ``calls`` (arguments, ``_meta``) of ``tool`` against as many GETs of
    ``health_url``, in alternating blocks. ``server_cpu`` (blocking, run in a thread and
    outside the timed spans) gives the server's CPU seconds so far, or None."""
    if len(calls) < (WARMUP_BLOCKS + 1) * BLOCK:
        raise ValueError(f"at least {(WARMUP_BLOCKS + 1) * BLOCK} calls are needed")
    out = Interleaved()
    client_cpu = server_total = 0.0
    server_known = True
    async with (
        Client(mcp_url, read_timeout_seconds=CALL_TIMEOUT) as client,
        httpx.AsyncClient(timeout=CALL_TIMEOUT) as http,
    ):
        for number, start in enumerate(range(0, len(calls), BLOCK)):
            counted = number >= WARMUP_BLOCKS
            cpu0, server0 = time.process_time(), await asyncio.to_thread(server_cpu)
            tool_block: list[float] = []
            for arguments, meta in calls[start : start + BLOCK]:
                began = time.perf_counter()
                result = await client.call_tool(tool, arguments, meta=cast(RequestParamsMeta, meta))
                elapsed = (time.perf_counter() - began) * 1000
                if result.is_error:
                    raise CallFailed(f"{tool}({arguments}) answered an error: {_text(result)}")
                tool_block.append(elapsed)
            cpu1, server1 = time.process_time(), await asyncio.to_thread(server_cpu)
            floor_block: list[float] = []
            for _ in tool_block:
                began = time.perf_counter()
                reply = await http.get(health_url)
                elapsed = (time.perf_counter() - began) * 1000
                if reply.status_code != 200:
                    raise CallFailed(f"GET {health_url} answered {reply.status_code}")
                floor_block.append(elapsed)
            if not counted:
                continue
            out.tool_ms += tool_block
            out.floor_ms += floor_block
            out.blocks.append((statistics.median(tool_block), statistics.median(floor_block)))
            client_cpu += cpu1 - cpu0
            if server0 is None or server1 is None:
                server_known = False
            else:
                server_total += server1 - server0
    out.client_cpu_ms = client_cpu * 1000 / len(out.tool_ms)
    out.server_cpu_ms = server_total * 1000 / len(out.tool_ms) if server_known else None
    return out


def process_cpu(pid: int) -> Callable[[], float | None]:
    """CPU seconds (user and system) of a process this one can see, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")

    def read() -> float | None:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / tick

    return read


def main(argv: Sequence[str]) -> int:
    """In the container: ``argv[0]`` names a JSON file with mcp_url, health_url, tool, calls
    (a list of [arguments, meta]) and server_pid (or null); prints the result as JSON."""
    with open(argv[0], encoding="utf-8") as handle:
        spec = json.load(handle)
    pid = spec.get("server_pid")
    server_cpu = process_cpu(int(pid)) if pid else (lambda: None)
    calls = [(arguments, meta) for arguments, meta in spec["calls"]]
    try:
        result = asyncio.run(
            interleaved(spec["mcp_url"], spec["health_url"], spec["tool"], calls, server_cpu)
        )
    except CallFailed as exc:
        print(json.dumps({"error": str(exc)}))
        return 1
    print(json.dumps(asdict(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
