"""What a service counts for Prometheus: its tool calls by outcome, and how long they took.

The rules:

* Each service has a registry of its own (never the process-wide default one): the four
  services run in one process, and each ``/metrics`` shows its own tools only.
* A call is counted once, by what the client is told: ``ok`` (a result), ``refused`` (a
  tool error of one line: bad arguments, a trade the rules reject, an unknown tool) or
  ``error`` (anything else: a crash the SDK reports as a generic line). A call cancelled
  before it ended (its client gone) told the client nothing and is not counted.
* The ``tool`` label is one of the service's own tools, or ``unknown`` for a name it does
  not have: a client cannot add series by calling made-up names.
* ``GET /metrics`` answers in the text format 0.0.4, which every Prometheus reads.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["METRICS_PATH", "OUTCOMES", "Meter"]

METRICS_PATH = "/metrics"
OUTCOMES = ("ok", "refused", "error")
UNKNOWN_TOOL = "unknown"
# A tool call is a lookup or a line of arithmetic (about a millisecond), a price reload or
# a search a good deal longer: buckets from 1 ms to 10 s.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_T = TypeVar("_T")


def outcome_of(error: Exception | None) -> str:
    """The outcome label of a call that raised ``error`` (None: it returned a result)."""
    if error is None:
        return "ok"
    if isinstance(error, ToolError) and not isinstance(error, UnexpectedToolError):
        return "refused"
    return "error"


class Meter:
    """One service's counters and latency histogram, in a registry of its own."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        self.calls = Counter(
            "ai_trader_tool_calls",
            "MCP tool calls, by service, tool and outcome (ok, refused, error).",
            ("service", "tool", "outcome"),
            registry=self.registry,
        )
        self.seconds = Histogram(
            "ai_trader_tool_call_seconds",
            "Seconds an MCP tool call took in the service, by service and tool.",
            ("service", "tool"),
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.tools: set[str] = set()
        self._declare(UNKNOWN_TOOL)

    def _declare(self, tool: str) -> None:
        # Every series exists from the start, at 0: a rate over a fresh service is 0, not absent.
        for outcome in OUTCOMES:
            self.calls.labels(self.service, tool, outcome)
        self.seconds.labels(self.service, tool)

    def add_tool(self, tool: str) -> None:
        self.tools.add(tool)
        self._declare(tool)

    def record(self, tool: str, outcome: str, seconds: float) -> None:
        label = tool if tool in self.tools else UNKNOWN_TOOL
        self.calls.labels(self.service, label, outcome).inc()
        self.seconds.labels(self.service, label).observe(seconds)

    async def measure(self, tool: str, call: Callable[[], Awaitable[_T]]) -> _T:
        """``await call()``, counted and timed as a call of ``tool``."""
        started = time.perf_counter()
        try:
            result = await call()
        except Exception as exc:
            self.record(tool, outcome_of(exc), time.perf_counter() - started)
            raise
        self.record(tool, "ok", time.perf_counter() - started)
        return result

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    async def endpoint(self, _: Request) -> Response:
        return Response(self.exposition(), media_type=CONTENT_TYPE_PLAIN_0_0_4)
