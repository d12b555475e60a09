"""Each service's ``/metrics``: its tool calls by outcome and their latency, for Prometheus,
from the real `serve` (the session's ``services``), read the way Prometheus reads it."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from prometheus_client.parser import text_string_to_metric_families
from support import Services, tool_error, tool_value

from ai_trader.services.metering import Meter, outcome_of

CALLS = "ai_trader_tool_calls"
SECONDS = "ai_trader_tool_call_seconds"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str, host: str | None = None) -> httpx.Response:
    headers = {"Host": host} if host else {}
    return httpx.get(url, headers=headers, timeout=30)


def samples(services: Services, name: str) -> Samples:
    """Every sample of the service's /metrics, by sample name and sorted labels."""
    answer = scrape(services.url(name).removesuffix("/mcp") + "/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    found: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def calls(found: Samples, service: str, tool: str, outcome: str) -> float:
    labels = (("outcome", outcome), ("service", service), ("tool", tool))
    return found[(CALLS + "_total", labels)]


def timed(found: Samples, service: str, tool: str) -> float:
    return found[(SECONDS + "_count", (("service", service), ("tool", tool)))]


def test_math_counts_a_result_as_ok_and_a_refusal_as_refused(services: Services):
    before = samples(services, "math")
    url = services.url("math")
    assert tool_value(url, "add", {"a": 2, "b": 3}) == 5
    assert tool_value(url, "add", {"a": 1, "b": 1}) == 2
    tool_error(url, "add", {"a": "two", "b": 3})  # bad arguments: one line back
    tool_error(url, "multiply", {"a": 1e308, "b": 1e308})  # overflow: refused by the tool
    after = samples(services, "math")

    def grew(tool: str, outcome: str) -> float:
        return calls(after, "math", tool, outcome) - calls(before, "math", tool, outcome)

    assert grew("add", "ok") == 2
    assert grew("add", "refused") == 1
    assert grew("multiply", "refused") == 1
    assert grew("multiply", "ok") == 0
    assert grew("add", "error") == 0
    assert timed(after, "math", "add") - timed(before, "math", "add") == 3
    assert timed(after, "math", "multiply") - timed(before, "math", "multiply") == 1


def test_each_service_shows_its_own_tools_only(services: Services):
    tools = {
        name: {dict(labels)["tool"] for (sample, labels) in samples(services, name) if labels}
        for name in ("math", "trade")
    }
    assert tools["math"] == {"add", "multiply", "unknown"}
    assert tools["trade"] == {"buy", "sell", "unknown"}
    services_named = {
        dict(labels)["service"] for (_, labels) in samples(services, "math") if labels
    }
    assert services_named == {"math"}


def test_a_made_up_tool_name_is_counted_as_unknown_and_adds_no_series(services: Services):
    before = samples(services, "math")
    tool_error(services.url("math"), "divide", {"a": 1, "b": 2})
    after = samples(services, "math")
    assert set(after) == set(before)
    assert (
        calls(after, "math", "unknown", "refused") - calls(before, "math", "unknown", "refused")
        == 1
    )


def test_a_rejected_trade_is_refused_and_a_trade_is_ok(services: Services):
    session = services.start_session(cash=1000.0)
    before = samples(services, "trade")
    url = services.url("trade")
    tool_value(url, "buy", {"symbol": "AAPL", "amount": 1}, session.context)
    tool_error(url, "sell", {"symbol": "NVDA", "amount": 5}, session.context)  # none held
    after = samples(services, "trade")
    assert calls(after, "trade", "buy", "ok") - calls(before, "trade", "buy", "ok") == 1
    assert calls(after, "trade", "sell", "refused") - calls(before, "trade", "sell", "refused") == 1


def test_metrics_refuses_a_foreign_host(services: Services):
    url = services.url("prices").removesuffix("/mcp") + "/metrics"
    refused = scrape(url, host="evil.example")
    assert refused.status_code == 421
    assert CALLS not in refused.text
    assert scrape(url, host="trader.internal").status_code == 200


def test_outcomes_follow_what_the_client_is_told():
    assert outcome_of(None) == "ok"
    assert outcome_of(ToolError("no such symbol")) == "refused"
    assert outcome_of(UnexpectedToolError("boom")) == "error"
    assert outcome_of(RuntimeError("boom")) == "error"


def test_a_crash_is_counted_as_an_error_and_timed():
    meter = Meter("math")
    meter.add_tool("add")

    async def crash() -> None:
        raise UnexpectedToolError("boom")

    with pytest.raises(UnexpectedToolError):
        asyncio.run(meter.measure("add", crash))
    text = meter.exposition().decode()
    found = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert calls(found, "math", "add", "error") == 1
    assert calls(found, "math", "add", "ok") == 0
    assert timed(found, "math", "add") == 1
