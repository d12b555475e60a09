"""The four MCP services, through a real MCP client over HTTP, against the real `serve` process."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from support import (
    FUTURE_DAY,
    PAST_DAY,
    TODAY,
    WEEKEND_DAY,
    Services,
    call_tool,
    cli_env,
    free_ports,
    list_tools,
    run_cli,
    service_env,
    tool_value,
)

from ai_trader.ledger import CASH
from ai_trader.market.pricebook import PriceBook
from ai_trader.settings import load_settings

EXPECTED_TOOLS = {
    "math": ["add", "multiply"],
    "search": ["get_information"],
    "trade": ["buy", "sell"],
    "prices": ["get_price_local"],
}


@pytest.fixture(scope="module")
def book(services: Services) -> PriceBook:
    return PriceBook.load(services.settings.data_dir / "merged.jsonl")


def still_serving(services: Services) -> bool:
    """The services answer a good call after a bad one."""
    return tool_value(services.url("math"), "add", {"a": 2, "b": 3}) == 5


# --- discovery and health ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED_TOOLS))
def test_each_service_lists_its_tools(services: Services, name: str):
    assert list_tools(services.url(name)) == EXPECTED_TOOLS[name]


@pytest.mark.parametrize("name", sorted(EXPECTED_TOOLS))
def test_each_service_answers_the_health_probe(services: Services, name: str):
    url = f"http://127.0.0.1:{services.settings.ports[name]}/health"
    with urllib.request.urlopen(url, timeout=5) as reply:
        assert reply.status == 200
        assert json.loads(reply.read()) == {"status": "ok", "service": name}


HEALTHCHECK = """
import sys
from ai_trader.cli import main
code = main(["healthcheck"])
print(code, sorted({name.split(".")[0] for name in sys.modules} & {"mcp", "openai", "uvicorn"}))
"""


def test_the_healthcheck_passes_without_importing_the_mcp_sdk(services: Services):
    # It runs every few seconds in the container: it must stay cheap.
    result = subprocess.run(
        [sys.executable, "-c", HEALTHCHECK],
        env=services.env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.stdout.split() == ["0", "[]"], result.stderr


def test_the_healthcheck_fails_naming_a_service_that_does_not_answer(services: Services):
    env = {**services.env, "TRADE_HTTP_PORT": str(free_ports(1)[0])}
    result = run_cli("healthcheck", "--timeout", "1", env=env, timeout=30)
    assert result.returncode != 0
    assert "trade service is not answering" in result.stderr
    assert "Traceback" not in result.stderr


# --- math ----------------------------------------------------------------------------------


def test_math_adds_and_multiplies(services: Services):
    assert tool_value(services.url("math"), "add", {"a": 1.5, "b": 2.25}) == 3.75
    assert tool_value(services.url("math"), "multiply", {"a": 123.5, "b": 4}) == 494.0


# --- prices --------------------------------------------------------------------------------


def price(services: Services, tmp_path: Path, symbol: str, day: str, today: str = TODAY) -> dict:
    services.start_session(tmp_path, today=today)
    return tool_value(services.url("prices"), "get_price_local", {"symbol": symbol, "date": day})


def test_a_past_day_gives_the_full_bar(services: Services, tmp_path: Path, book: PriceBook):
    answer = price(services, tmp_path, "AAPL", PAST_DAY)
    assert answer["symbol"] == "AAPL"
    assert answer["date"] == PAST_DAY
    assert answer["ohlcv"] == book.bar("AAPL", PAST_DAY)
    assert set(answer["ohlcv"]) == {"open", "high", "low", "close", "volume"}


def test_today_gives_only_the_open(services: Services, tmp_path: Path, book: PriceBook):
    answer = price(services, tmp_path, "AAPL", TODAY)
    assert answer["ohlcv"] == {"open": book.open("AAPL", TODAY)}
    assert book.close("AAPL", TODAY) is not None  # the data has it; the service holds it back


def test_a_future_date_is_refused(services: Services, tmp_path: Path):
    answer = price(services, tmp_path, "AAPL", FUTURE_DAY)
    assert "future" in answer["error"]
    assert "ohlcv" not in answer
    assert still_serving(services)


def test_the_benchmark_has_prices(services: Services, tmp_path: Path, book: PriceBook):
    assert price(services, tmp_path, "QQQ", PAST_DAY)["ohlcv"] == book.bar("QQQ", PAST_DAY)


def test_a_lower_case_symbol_is_understood(services: Services, tmp_path: Path):
    assert price(services, tmp_path, "aapl", PAST_DAY)["symbol"] == "AAPL"


def test_an_unknown_symbol_is_an_error_as_data(services: Services, tmp_path: Path):
    answer = price(services, tmp_path, "NOPE", PAST_DAY)
    assert "unknown symbol 'NOPE'" in answer["error"]
    assert still_serving(services)


@pytest.mark.parametrize("day", ["2025/10/28", "yesterday", "2025-13-01", ""])
def test_a_malformed_date_is_an_error_as_data(services: Services, tmp_path: Path, day: str):
    answer = price(services, tmp_path, "AAPL", day)
    assert "YYYY-MM-DD" in answer["error"]
    assert still_serving(services)


def test_a_day_without_trading_is_an_error_as_data(services: Services, tmp_path: Path):
    assert "no price" in price(services, tmp_path, "AAPL", WEEKEND_DAY)["error"]


def test_prices_without_a_session_is_an_error_as_data(services: Services):
    services.runtime_path.unlink(missing_ok=True)
    answer = tool_value(
        services.url("prices"), "get_price_local", {"symbol": "AAPL", "date": PAST_DAY}
    )
    assert "no trading session" in answer["error"]


# --- trade ---------------------------------------------------------------------------------


def trade(services: Services, action: str, symbol: str, amount: object) -> dict:
    return tool_value(services.url("trade"), action, {"symbol": symbol, "amount": amount})


def test_a_buy_is_staged_at_the_days_open(services: Services, tmp_path: Path, book: PriceBook):
    ledger = services.start_session(tmp_path, cash=10000.0)
    answer = trade(services, "buy", "MSFT", 3)
    opening = book.open("MSFT", TODAY)
    assert answer["price"] == opening
    assert answer["amount"] == 3
    assert answer["positions"] == {"MSFT": 3, CASH: round(10000.0 - 3 * opening, 4)}
    staged = ledger.pending(TODAY)
    assert [row["this_action"] for row in staged] == [
        {"action": "buy", "symbol": "MSFT", "amount": 3}
    ]
    assert len(ledger.rows()) == 1  # not committed: that is the agent's job at the day's end


def test_a_sell_is_staged_at_the_days_open(services: Services, tmp_path: Path, book: PriceBook):
    ledger = services.start_session(tmp_path, cash=100.0, holdings={"NVDA": 5})
    answer = trade(services, "sell", "NVDA", 2)
    opening = book.open("NVDA", TODAY)
    assert answer["positions"] == {"NVDA": 3, CASH: round(100.0 + 2 * opening, 4)}
    assert ledger.pending(TODAY)[-1]["this_action"] == {
        "action": "sell",
        "symbol": "NVDA",
        "amount": 2,
    }


def test_trades_in_one_day_build_on_each_other(services: Services, tmp_path: Path):
    ledger = services.start_session(tmp_path)
    trade(services, "buy", "AAPL", 2)
    answer = trade(services, "sell", "AAPL", 1)
    assert answer["positions"]["AAPL"] == 1
    assert [row["id"] for row in ledger.pending(TODAY)] == [1, 2]


def test_a_whole_float_amount_is_accepted(services: Services, tmp_path: Path):
    services.start_session(tmp_path)
    assert trade(services, "buy", "AAPL", 2.0)["amount"] == 2


@pytest.mark.parametrize(
    ("action", "symbol", "amount", "problem"),
    [
        ("buy", "NOPE", 1, "unknown symbol"),
        ("buy", "QQQ", 1, "unknown symbol"),  # the benchmark is not for trading
        ("buy", "AAPL", 0, "amount must be positive"),
        ("buy", "AAPL", -3, "amount must be positive"),
        ("buy", "AAPL", 1.5, "whole number"),
        ("sell", "AAPL", 0.25, "whole number"),
        ("buy", "AAPL", 10**9, "insufficient cash"),
        ("sell", "AAPL", 1, "insufficient shares"),
    ],
)
def test_a_rejected_trade_is_an_error_as_data_and_stages_nothing(
    services: Services, tmp_path: Path, action: str, symbol: str, amount: object, problem: str
):
    ledger = services.start_session(tmp_path)
    answer = trade(services, action, symbol, amount)
    assert problem in answer["error"]
    assert ledger.pending(TODAY) == []
    assert still_serving(services)


def test_buying_on_a_day_without_a_price_is_an_error_as_data(services: Services, tmp_path: Path):
    ledger = services.start_session(tmp_path, today=WEEKEND_DAY)
    answer = trade(services, "buy", "AAPL", 1)
    assert f"no price for AAPL on {WEEKEND_DAY}" in answer["error"]
    assert ledger.pending(WEEKEND_DAY) == []


def test_a_trade_without_a_session_is_an_error_as_data(services: Services):
    services.runtime_path.unlink(missing_ok=True)
    assert "no trading session" in trade(services, "buy", "AAPL", 1)["error"]
    assert still_serving(services)


def test_an_amount_of_the_wrong_type_is_a_tool_error_not_a_crash(
    services: Services, tmp_path: Path
):
    services.start_session(tmp_path)
    result = call_tool(services.url("trade"), "buy", {"symbol": "AAPL", "amount": "ten"})
    assert result.is_error
    assert still_serving(services)


# --- search --------------------------------------------------------------------------------


def test_search_drops_results_dated_on_or_after_today(
    services: Services, tmp_path: Path, jina_standin
):
    jina_standin.set_scenario(
        {
            "jina": {
                "results": [
                    {"title": "old", "url": "https://n.example/old", "date": "2025-10-28T20:00:00Z",
                     "content": "yesterday's news"},
                    {"title": "today", "url": "https://n.example/today",
                     "date": f"{TODAY}T09:00:00Z", "content": "today's news"},
                    {"title": "later", "url": "https://n.example/later", "date": "2025-11-03",
                     "content": "next week's news"},
                    {"title": "undated", "url": "https://n.example/undated", "date": "",
                     "content": "who knows"},
                ]
            }
        }
    )  # fmt: skip
    services.start_session(tmp_path)
    answer = tool_value(services.url("search"), "get_information", {"query": "chips"})
    assert answer["today"] == TODAY
    assert [item["url"] for item in answer["results"]] == ["https://n.example/old"]
    assert answer["results"][0]["content"] == "yesterday's news"
    assert jina_standin.stats()["jina"]["requests"] == 2  # one search, one page read


def test_search_without_a_jina_key_answers_a_clear_error(services: Services):
    # In-process (the SDK's in-memory transport): the session's `serve` has a key.
    from mcp import Client

    from ai_trader.services import search

    keyless = {k: v for k, v in services.env.items() if k != "JINA_API_KEY"}

    async def ask() -> Any:
        async with Client(search.build(load_settings(keyless))) as client:
            return await client.call_tool("get_information", {"query": "chips"})

    result = asyncio.run(ask())
    assert not result.is_error
    assert result.structured_content == {
        "error": "search is unavailable: JINA_API_KEY is not set",
        "query": "chips",
    }


# --- the commands around the services ------------------------------------------------------


def test_serve_on_a_port_in_use_exits_with_one_line_naming_port_and_variable(tmp_path: Path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        env = service_env(tmp_path, tmp_path / "runtime.json", {"GETPRICE_HTTP_PORT": str(taken)})
        result = run_cli("serve", env=env, timeout=60)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(taken) in lines[0]
    assert "GETPRICE_HTTP_PORT" in lines[0]
    assert "already in use" in lines[0]


def test_wait_ready_with_nothing_running_names_all_four_within_its_timeout(tmp_path: Path):
    ports = dict(
        zip(
            ("MATH_HTTP_PORT", "SEARCH_HTTP_PORT", "TRADE_HTTP_PORT", "GETPRICE_HTTP_PORT"),
            map(str, free_ports(4)),
            strict=True,
        )
    )
    started = time.monotonic()
    result = run_cli("wait-ready", "--timeout", "1", env=cli_env(ports), timeout=60)
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    line = result.stderr.strip()
    assert "\n" not in line
    for name in ("math", "search", "trade", "prices"):
        assert f"{name} (http://127.0.0.1:" in line
    # The timeout is 1 s; the rest is the interpreter starting (30 s would be the default).
    assert elapsed < 20
