"""The session flood, on a throwaway stack: many MCP sessions opened and never closed.

A local page or program can open sessions faster than anything closes them. Afterwards
the flooded service must still complete a fresh MCP exchange, and the container's health
check must say what is true: healthy exactly when every service completes one.

The flood is bounded in count (past the MCP SDK's default of 10,000 sessions) and in time
(a safety bound only: a flood cut short by it decides nothing and is reported as an error).
"""

from __future__ import annotations

import http.client
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from conformance.commands import FAIL, PASS, probes_after
from conformance.conftest import SERVICE_PORTS, Report, Stack
from conformance.mcp_http import (
    Connection,
    fresh_exchange,
    initialize_message,
    request_headers,
)

pytestmark = pytest.mark.conformance

FLOOD_TARGET = "trade"
FLOOD_REQUESTS = 10_100  # the SDK's default cap is 10,000 open sessions
FLOOD_WORKERS = 8
FLOOD_TIME_LIMIT = 300  # seconds
HEALTH_PROBE_WAIT = 90  # seconds for Docker's next health probe (every 5 s under compose)


@dataclass
class Flood:
    port: int
    total: int
    statuses: Counter[str] = field(default_factory=Counter)
    sessions: int = 0
    sent: int = 0
    first_refusal: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    stop: threading.Event = field(default_factory=threading.Event, repr=False)

    def take(self, deadline: float) -> int | None:
        with self.lock:
            if self.stop.is_set() or self.sent >= self.total or time.monotonic() > deadline:
                return None
            self.sent += 1
            return self.sent

    def worker(self, deadline: float) -> None:
        conn = Connection(self.port, timeout=30)
        headers = request_headers(self.port)
        body = initialize_message()
        try:
            while (number := self.take(deadline)) is not None:
                try:
                    reply = conn.post(body, headers)
                except (OSError, http.client.HTTPException) as exc:
                    outcome, refusal = type(exc).__name__, f"{type(exc).__name__}: {exc}"
                    granted = False
                else:
                    outcome, refusal = str(reply.status), reply.summary()
                    granted = reply.status == 200 and bool(reply.session_id)
                with self.lock:
                    self.statuses[outcome] += 1
                    self.sessions += granted
                    if outcome != "200" and self.first_refusal is None:
                        self.first_refusal = f"request {number}: {refusal}"
        finally:
            conn.close()  # the TCP connection only: the MCP sessions stay open

    def run(self, workers: int, limit: float) -> None:
        deadline = time.monotonic() + limit
        threads = [
            threading.Thread(target=self.worker, args=(deadline,), daemon=True)
            for _ in range(workers)
        ]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                thread.join()
        finally:
            self.stop.set()  # on Ctrl-C too: the teardown must not wait for the flood


@dataclass
class FloodResult:
    flood: Flood
    ended: datetime
    memory: tuple[str, str]

    def describe(self) -> str:
        f = self.flood
        counts = ", ".join(f"{n} x {status}" for status, n in sorted(f.statuses.items()))
        refusal = f"; first refusal at {f.first_refusal}" if f.first_refusal else ""
        return (
            f"{f.sent} initialize requests, never closed: {counts}; "
            f"{f.sessions} session ids granted{refusal}; "
            f"container memory {self.memory[0]} -> {self.memory[1]}"
        )


def memory(container: str) -> str:
    done = subprocess.run(
        ["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", container],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.stdout.split("/")[0].strip() or "?"


@pytest.fixture(scope="module")
def flooded(flood_stack: Stack) -> FloodResult:
    container = flood_stack.container()
    before = memory(container)
    flood = Flood(flood_stack.ports[FLOOD_TARGET], FLOOD_REQUESTS)
    flood.run(FLOOD_WORKERS, FLOOD_TIME_LIMIT)
    ended = datetime.now(UTC)
    if flood.sent < flood.total:
        raise RuntimeError(
            f"inconclusive: the flood hit its {FLOOD_TIME_LIMIT} s bound after {flood.sent} of "
            f"{flood.total} requests"
        )
    return FloodResult(flood, ended, (before, memory(container)))


def fresh_exchanges(stack: Stack) -> dict[str, tuple[bool, str]]:
    return {name: fresh_exchange(stack.ports[name]) for name in SERVICE_PORTS}


def test_a_flooded_service_still_completes_a_fresh_exchange(
    flood_stack: Stack, flooded: FloodResult, report: Report
) -> None:
    ok, why = fresh_exchange(flood_stack.ports[FLOOD_TARGET])
    detail = f"{flooded.describe()}; then a fresh exchange: {'ok, ' if ok else 'failed: '}{why}"
    report("session flood: fresh exchange", FLOOD_TARGET, PASS if ok else FAIL, detail)

    assert ok, detail


def test_the_health_check_says_what_the_services_answer_after_the_flood(
    flood_stack: Stack, flooded: FloodResult, report: Report
) -> None:
    deadline = time.monotonic() + HEALTH_PROBE_WAIT
    probes: list = []
    while not probes:
        state = flood_stack.inspect()["State"]
        probes = probes_after((state.get("Health") or {}).get("Log") or [], flooded.ended)
        if not probes:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no health probe ran within {HEALTH_PROBE_WAIT} s of the flood")
            time.sleep(1)
    probe = probes[0]
    healthy = probe["ExitCode"] == 0
    answers = fresh_exchanges(flood_stack)
    reality = all(ok for ok, _ in answers.values())
    said = " ".join(str(probe.get("Output", "")).split())[:160]
    services = ", ".join(
        f"{name} {'ok' if ok else 'failed (' + why + ')'}" for name, (ok, why) in answers.items()
    )
    detail = (
        f"health probe after the flood: exit {probe['ExitCode']}"
        f"{f' ({said})' if said else ''}, status {state['Health']['Status']}; "
        f"fresh exchanges: {services}"
    )
    report("session flood: health check", "all", PASS if healthy == reality else FAIL, detail)

    assert healthy == reality, detail
