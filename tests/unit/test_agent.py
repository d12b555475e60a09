"""The agent: the built-in strategy, the model loop against the OpenAI stand-in, the day runner."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import openai
import pytest
import uvicorn
from mcp.server.lowlevel import Server
from mcp.types import CallToolResult, ListToolsResult, TextContent, Tool
from support import TODAY, Services, Session

from ai_trader.agent import builtin
from ai_trader.agent.builtin import Move, plan_buys, plan_sells, rank
from ai_trader.agent.model import (
    FINISH_SIGNAL,
    ModelFailed,
    ModelTrader,
    ModelUnavailable,
    openai_tools,
    parse_arguments,
    system_prompt,
)
from ai_trader.agent.runner import (
    AgentError,
    Outcome,
    Result,
    Runner,
    format_summary,
    off_loop,
    summarise,
    supported,
    trading_days,
    unpriced_errors,
)
from ai_trader.agent.toolbox import Toolbox, ToolRefused, ToolSpec, result_value
from ai_trader.config import parse_config
from ai_trader.context import RunContext
from ai_trader.errors import UserError
from ai_trader.layout import BookPaths
from ai_trader.ledger import CASH, Ledger, apply_trade
from ai_trader.lock import signature_lock
from ai_trader.market.pricebook import PriceBook
from ai_trader.metrics import Figure
from ai_trader.settings import Settings, load_settings
from ai_trader.usage import Totals
from standins import StandIns

MODEL = "gpt-stand-in"
LOOK_UP_BUY_FINISH = [
    {"tool_calls": [{"name": "get_price_local",
                     "arguments": {"symbol": "AAPL", "date": "{today}"}}]},
    {"tool_calls": [{"name": "buy", "arguments": {"symbol": "AAPL", "amount": 2}}]},
    {"content": f"Bought two AAPL. {FINISH_SIGNAL}"},
]  # fmt: skip


# --- the built-in strategy's rules ---------------------------------------------------------


def test_rank_puts_the_strongest_first_and_breaks_ties_by_symbol():
    moves = [Move("MSFT", 0.01), Move("AAPL", 0.02), Move("AMZN", 0.01), Move("NVDA", -0.5)]
    assert [m.symbol for m in rank(moves)] == ["AAPL", "AMZN", "MSFT", "NVDA"]


def test_plan_sells_sells_all_of_each_holding_that_fell():
    moves = [Move("AAPL", -0.01), Move("MSFT", 0.03), Move("NVDA", -0.2), Move("AMZN", -0.1)]
    positions = {"AAPL": 4, "MSFT": 2, "NVDA": 0, CASH: 10.0}
    assert plan_sells(moves, positions) == [("AAPL", 4)]


def test_plan_buys_picks_the_strongest_risers_not_held():
    moves = [Move("AAPL", 0.05), Move("MSFT", 0.04), Move("NVDA", 0.03), Move("AMZN", -0.01)]
    assert plan_buys(moves, {"AAPL": 3, CASH: 10.0}) == ["MSFT", "NVDA"]


def test_plan_buys_never_picks_a_faller_or_a_flat_symbol():
    moves = [Move("AAPL", 0.0), Move("MSFT", -0.04), Move("NVDA", 0.01)]
    assert plan_buys(moves, {CASH: 10.0}, picks=3) == ["NVDA"]


class FakeMarket:
    """Tool answers shaped like the services', for driving the built-in strategy directly."""

    def __init__(self, previous: dict[str, tuple[float, float]], opens: dict[str, float]):
        self.previous = previous
        self.opens = opens
        self.positions: dict[str, float] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        self.calls.append((name, arguments))
        if name == "get_price_local":
            symbol = arguments["symbol"]
            if arguments["date"] == "2025-10-28":
                open_, close = self.previous[symbol]
                return {"symbol": symbol, "ohlcv": {"open": open_, "close": close}}
            return {"symbol": symbol, "ohlcv": {"open": self.opens[symbol]}}
        if name == "multiply":
            return arguments["a"] * arguments["b"]
        symbol, amount = arguments["symbol"], arguments["amount"]
        self.positions = apply_trade(self.positions, name, symbol, amount, self.opens[symbol])
        held = {k: v for k, v in self.positions.items() if v and k != CASH}
        return {"positions": {**held, CASH: self.positions[CASH]}}


def test_the_builtin_strategy_sells_fallers_then_splits_the_cash_over_the_top_risers():
    market = FakeMarket(
        previous={
            "AAPL": (100.0, 110.0),
            "MSFT": (100.0, 105.0),
            "NVDA": (100.0, 90.0),
            "AMZN": (100.0, 101.0),
        },
        opens={"AAPL": 50.0, "MSFT": 40.0, "NVDA": 20.0, "AMZN": 10.0},
    )
    market.positions = {"NVDA": 5, CASH: 1000.0}
    log: list[dict[str, Any]] = []
    trades = asyncio.run(
        builtin.trade_day(
            market.call,
            log.append,
            "2025-10-29",
            "2025-10-28",
            dict(market.positions),
            watchlist=("AAPL", "MSFT", "NVDA", "AMZN"),
        )
    )
    assert trades == 3
    placed = [(n, a["symbol"], a["amount"]) for n, a in market.calls if n in ("buy", "sell")]
    # 5 NVDA at 20 makes 1100 cash: 550 buys 11 AAPL at 50, the 550 left buys 13 MSFT at 40.
    assert placed == [("sell", "NVDA", 5), ("buy", "AAPL", 11), ("buy", "MSFT", 13)]
    assert market.positions[CASH] == 30.0
    assert FINISH_SIGNAL in log[-1]["content"]
    assert sum(1 for entry in log if entry["role"] == "tool") == len(market.calls)


def test_a_refusal_ends_the_builtin_strategys_day_instead_of_skipping_the_trade():
    market = FakeMarket(previous={"AAPL": (100.0, 110.0)}, opens={"AAPL": 50.0})

    async def refuse_buys(name: str, arguments: dict[str, Any]) -> Any:
        if name == "buy":
            raise ToolRefused("insufficient cash: buying 20 AAPL")
        return await market.call(name, arguments)

    log: list[dict[str, Any]] = []
    with pytest.raises(ToolRefused, match="insufficient cash"):
        asyncio.run(
            builtin.trade_day(
                refuse_buys, log.append, TODAY, "2025-10-28", {CASH: 1000.0}, watchlist=("AAPL",)
            )
        )
    assert log[-1] == {
        "role": "tool",
        "name": "buy",
        "arguments": {"symbol": "AAPL", "amount": 20},
        "error": "insufficient cash: buying 20 AAPL",
    }


class SlowToAnswer(FakeMarket):
    """Lookups that answer last-asked first, once every lookup of the watchlist is in flight:
    the log cannot take its order from the order the answers came in."""

    def __init__(self, watchlist: tuple[str, ...]) -> None:
        super().__init__({s: (100.0, 101.0) for s in watchlist}, {})
        self.watchlist = watchlist
        self.asked: list[str] = []
        self.answered: list[str] = []
        self.done = {symbol: asyncio.Event() for symbol in watchlist}

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        symbol = arguments["symbol"]
        self.asked.append(symbol)
        # Asked together, every lookup has started before the first one gets the loop back.
        await asyncio.sleep(0)
        assert len(self.asked) == len(self.watchlist), "the watchlist was asked one by one"
        # Each waits for the one asked after it to answer first.
        following = self.watchlist.index(symbol) + 1
        if following < len(self.watchlist):
            await self.done[self.watchlist[following]].wait()
        self.answered.append(symbol)
        self.done[symbol].set()
        if symbol == "MSFT":
            raise ToolRefused(f"no price for {symbol}")
        return await super().call(name, arguments)


def test_the_builtin_strategy_asks_for_its_watchlist_at_once_and_logs_it_in_order():
    # MSFT's refusal ends the day: the log has the lookups before it, then it.
    watchlist = ("AAPL", "MSFT", "NVDA", "AMZN")
    market = SlowToAnswer(watchlist)
    log: list[dict[str, Any]] = []
    with pytest.raises(ToolRefused, match="no price for MSFT"):
        asyncio.run(
            builtin.trade_day(
                market.call, log.append, TODAY, "2025-10-28", {CASH: 10.0}, watchlist=watchlist
            )
        )
    assert market.answered == ["AMZN", "NVDA", "MSFT", "AAPL"]
    assert [(entry["arguments"]["symbol"], "error" in entry) for entry in log] == [
        ("AAPL", False),
        ("MSFT", True),
    ]
    assert log[1]["error"] == "no price for MSFT"


def test_the_builtin_strategies_are_known_by_name():
    assert builtin.unknown(["builtin/momentum", "gpt-4o", "builtin/nosuch"]) == ["builtin/nosuch"]
    assert builtin.strategy("builtin/momentum") is builtin.trade_day


def test_the_builtin_strategy_holds_on_the_first_day():
    market = FakeMarket({}, {})
    log: list[dict[str, Any]] = []
    trades = asyncio.run(builtin.trade_day(market.call, log.append, TODAY, None, {CASH: 10.0}))
    assert trades == 0
    assert market.calls == []
    assert log[0]["role"] == "assistant"


# --- tool plumbing -------------------------------------------------------------------------


def text_result(text: str, *, is_error: bool = False, structured: Any = None) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=structured,
        is_error=is_error,
    )


def test_result_value_unwraps_a_bare_result():
    assert result_value(text_result("3.0", structured={"result": 3.0})) == 3.0


def test_result_value_keeps_a_structured_object():
    answer = {"symbol": "AAPL", "ohlcv": {"open": 1.0}}
    assert result_value(text_result(json.dumps(answer), structured=answer)) == answer


def test_result_value_parses_json_text_when_nothing_is_structured():
    assert result_value(text_result('{"a": [1, 2]}')) == {"a": [1, 2]}


def test_result_value_returns_plain_text_as_it_is():
    assert result_value(text_result("all good")) == "all good"


def toolbox_call(services: Services, name: str, arguments: dict, context: RunContext | None):
    async def go() -> Any:
        async with Toolbox(services.settings) as toolbox:
            return await toolbox.call(name, arguments, context)

    return asyncio.run(go())


def test_the_toolbox_sends_the_run_context_with_each_call(services: Services, session: Session):
    answer = toolbox_call(services, "buy", {"symbol": "AAPL", "amount": 1}, session.context)
    assert answer["date"] == TODAY
    assert [row["this_action"]["symbol"] for row in session.ledger.pending(TODAY)] == ["AAPL"]


def test_the_toolbox_raises_a_refusal_with_its_one_line_reason(
    services: Services, session: Session
):
    with pytest.raises(ToolRefused, match=r"^insufficient shares: selling 1 AAPL, holding 0$"):
        toolbox_call(services, "sell", {"symbol": "AAPL", "amount": 1}, session.context)


def test_the_toolbox_refuses_a_tool_that_no_service_offers(services: Services):
    with pytest.raises(ToolRefused, match="no tool named 'short'"):
        toolbox_call(services, "short", {}, None)


def test_openai_tools_describes_each_mcp_tool_as_a_function():
    schema = {"type": "object", "properties": {"a": {"type": "number"}}, "required": ["a"]}
    specs = [ToolSpec("add", "Add.", schema, "math"), ToolSpec("noop", "", {}, "math")]
    assert openai_tools(specs) == [
        {"type": "function",
         "function": {"name": "add", "description": "Add.", "parameters": schema}},
        {"type": "function",
         "function": {"name": "noop", "description": "",
                      "parameters": {"type": "object", "properties": {}}}},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [('{"symbol": "AAPL", "amount": 2}', {"symbol": "AAPL", "amount": 2}), ("", {}), (None, {})],
)
def test_parse_arguments_reads_a_json_object(raw: str | None, parsed: dict):
    assert parse_arguments(raw) == parsed


@pytest.mark.parametrize(
    ("raw", "problem"),
    [("{symbol: AAPL", "not valid JSON"), ("[1, 2]", "must be a JSON object"), ("3", "object")],
)
def test_parse_arguments_explains_unusable_arguments(raw: str, problem: str):
    message = parse_arguments(raw)
    assert isinstance(message, str)
    assert problem in message


def test_the_system_prompt_states_the_day_the_cash_and_the_finish_signal():
    prompt = system_prompt(TODAY, {"AAPL": 3, "MSFT": 0, CASH: 1234.5}, {"AAPL": 10.0}, {})
    assert f"Today is {TODAY}" in prompt
    assert "Cash: 1234.50" in prompt
    assert '{"AAPL": 3}' in prompt
    assert FINISH_SIGNAL in prompt


# --- the model loop against the OpenAI stand-in --------------------------------------------


@pytest.fixture
def model_api():
    """Start a stand-in with a scenario; stopped after the test."""
    started: list[StandIns] = []

    def start(openai_section: dict[str, Any]) -> StandIns:
        standins = StandIns({"openai": openai_section}).start()
        started.append(standins)
        return standins

    yield start
    for standins in started:
        standins.stop()


def trader(standins: StandIns, model: str = MODEL, **options: Any) -> ModelTrader:
    client = openai.AsyncOpenAI(api_key="test-key", base_url=standins.openai_base, max_retries=0)
    settings = {"max_steps": 10, "max_retries": 0, "base_delay": 0.0, **options}
    return ModelTrader(client, model, **settings)


@pytest.fixture
def session(services: Services) -> Session:
    return services.start_session()


async def trade_through_services(
    services: Services, model: ModelTrader, records: list[dict[str, Any]], session: Session
) -> int:
    positions = {CASH: 10000.0}
    async with Toolbox(services.settings) as toolbox:
        return await model.trade_day(
            partial(toolbox.call, context=session.context),
            records.append,
            system_prompt(TODAY, positions, {}, {}),
            list(toolbox.tools.values()),
        )


def test_a_scripted_model_looks_up_a_price_buys_and_finishes(
    services: Services, session: Session, model_api
):
    standins = model_api({"script": LOOK_UP_BUY_FINISH})
    ledger = session.ledger
    records: list[dict[str, Any]] = []
    steps = asyncio.run(trade_through_services(services, trader(standins), records, session))
    assert steps == 3
    opening = PriceBook.load(services.settings.data_dir / "merged.jsonl").open("AAPL", TODAY)
    staged = ledger.pending(TODAY)
    assert [row["this_action"] for row in staged] == [
        {"action": "buy", "symbol": "AAPL", "amount": 2}
    ]
    assert staged[0]["positions"][CASH] == round(10000.0 - 2 * opening, 4)
    price_reply = next(r for r in records if r.get("name") == "get_price_local")
    assert json.loads(price_reply["content"])["ohlcv"] == {"open": opening}


def test_the_model_sees_the_mcp_tools_and_the_tool_results(
    services: Services, session: Session, model_api
):
    standins = model_api({"script": LOOK_UP_BUY_FINISH})
    asyncio.run(trade_through_services(services, trader(standins), [], session))
    bodies = standins.stats()["openai"]["bodies"]
    assert len(bodies) == 3
    offered = sorted(tool["function"]["name"] for tool in bodies[0]["tools"])
    assert offered == ["add", "buy", "get_information", "get_price_local", "multiply", "sell"]
    last = bodies[-1]["messages"]
    tool_replies = [m for m in last if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_replies] == ["call_0_0", "call_1_0"]
    assert json.loads(tool_replies[1]["content"])["amount"] == 2


def test_arguments_that_are_not_an_object_are_answered_with_an_error(
    services: Services, session: Session, model_api
):
    standins = model_api({"script": [{"tool_calls": [{"name": "buy", "arguments": [1, 2]}]}]})
    records: list[dict[str, Any]] = []
    asyncio.run(trade_through_services(services, trader(standins), records, session))
    reply = next(r for r in records if r["role"] == "tool")
    assert json.loads(reply["content"]) == {"error": "arguments must be a JSON object"}
    assert session.ledger.pending(TODAY) == []


def test_a_refused_tool_call_goes_back_to_the_model_and_the_day_goes_on(
    services: Services, session: Session, model_api
):
    script = [
        {"tool_calls": [{"name": "buy", "arguments": {"symbol": "AAPL", "amount": 0}}]},
        {"tool_calls": [{"name": "buy", "arguments": {"symbol": "AAPL", "amount": 1}}]},
        {"content": f"Done. {FINISH_SIGNAL}"},
    ]
    standins = model_api({"script": script})
    records: list[dict[str, Any]] = []
    steps = asyncio.run(trade_through_services(services, trader(standins), records, session))
    assert steps == 3
    first, second = [json.loads(r["content"]) for r in records if r["role"] == "tool"]
    assert first == {"error": "invalid arguments: amount: Input should be greater than 0"}
    assert second["amount"] == 1
    messages = standins.stats()["openai"]["bodies"][1]["messages"]
    assert "Input should be greater than 0" in messages[-1]["content"]
    assert [row["this_action"]["amount"] for row in session.ledger.pending(TODAY)] == [1]


@pytest.fixture
def lying_math(services: Services) -> Iterator[Settings]:
    """The run's settings with the math service swapped for one whose ``add`` answers
    ``{"result": null}`` against its declared number: a service of someone else's that
    breaks its own output schema, which the MCP client then refuses."""

    async def tools(ctx: Any, params: Any) -> ListToolsResult:
        number = {"type": "number"}
        numbers = {"type": "object", "properties": {"a": number, "b": number}}
        result = {"type": "object", "properties": {"result": number}, "required": ["result"]}
        add = Tool(name="add", description="Add.", input_schema=numbers, output_schema=result)
        return ListToolsResult(tools=[add])

    async def call(ctx: Any, params: Any) -> CallToolResult:
        return CallToolResult(
            content=[TextContent(type="text", text='{"result": null}')],
            structured_content={"result": None},
        )

    app = Server("math", on_list_tools=tools, on_call_tool=call).streamable_http_app(
        stateless_http=True
    )
    # The test binds the port and hands uvicorn the listening socket: there is no moment
    # when the port is free for another process to take. It listens from here on, so a call
    # made before uvicorn has started waits in its backlog: no wait for the start-up either.
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    web = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(
        target=web.run, kwargs={"sockets": [listener]}, name="lying-math", daemon=True
    )
    thread.start()
    yield load_settings({**services.env, "MATH_HTTP_PORT": str(port)})
    web.should_exit = True
    thread.join(timeout=10)
    listener.close()


def test_an_answer_that_breaks_its_output_schema_is_refused_naming_the_tool(
    lying_math: Settings, session: Session
):
    async def go() -> Any:
        async with Toolbox(lying_math) as toolbox:
            return await toolbox.call("add", {"a": 1, "b": 2}, session.context)

    with pytest.raises(ToolRefused, match=r"^add gave an invalid answer: "):
        asyncio.run(go())


def test_an_answer_that_breaks_its_schema_goes_back_to_the_model_and_the_day_goes_on(
    lying_math: Settings, session: Session, model_api
):
    script = [
        {"tool_calls": [{"name": "add", "arguments": {"a": 1, "b": 2}}]},
        {"tool_calls": [{"name": "buy", "arguments": {"symbol": "AAPL", "amount": 1}}]},
        {"content": f"Done. {FINISH_SIGNAL}"},
    ]
    standins = model_api({"script": script})
    records: list[dict[str, Any]] = []

    async def go() -> int:
        async with Toolbox(lying_math) as toolbox:
            return await trader(standins).trade_day(
                partial(toolbox.call, context=session.context),
                records.append,
                system_prompt(TODAY, {CASH: 10000.0}, {}, {}),
                list(toolbox.tools.values()),
            )

    assert asyncio.run(go()) == 3
    first, second = [json.loads(r["content"]) for r in records if r["role"] == "tool"]
    assert first["error"].startswith("add gave an invalid answer: ")
    assert second["amount"] == 1
    messages = standins.stats()["openai"]["bodies"][1]["messages"]
    assert "add gave an invalid answer" in messages[-1]["content"]
    assert [row["this_action"]["symbol"] for row in session.ledger.pending(TODAY)] == ["AAPL"]


def test_a_model_that_never_finishes_stops_at_max_steps(
    services: Services, session: Session, model_api, caplog: pytest.LogCaptureFixture
):
    look = {"tool_calls": [{"name": "add", "arguments": {"a": 1, "b": 1}}]}
    standins = model_api({"script": [look] * 10})
    with caplog.at_level(logging.WARNING, logger="ai_trader.agent.model"):
        steps = asyncio.run(
            trade_through_services(services, trader(standins, max_steps=3), [], session)
        )
    assert steps == 3
    assert standins.stats()["openai"]["requests"] == 3
    assert "max_steps=3" in caplog.text


def one_tool() -> list[ToolSpec]:
    return [ToolSpec("add", "Add.", {"type": "object", "properties": {}}, "math")]


async def no_tools(name: str, arguments: dict[str, Any]) -> Any:
    raise AssertionError("no tool should be called")


def test_a_failing_api_is_retried_max_retries_times_with_exponential_backoff(model_api):
    standins = model_api({"always_fail": True})
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    model = trader(standins, max_retries=3, base_delay=0.5)
    model.sleep = sleep
    with pytest.raises(ModelFailed, match="failed 4 time"):
        asyncio.run(model.trade_day(no_tools, lambda _: None, f"Today is {TODAY}.", one_tool()))
    assert delays == [0.5, 1.0, 2.0]
    assert standins.stats()["openai"]["requests"] == 4


def test_a_failure_that_clears_within_the_retries_is_survived(model_api):
    standins = model_api({"fail_first": 2})
    model = trader(standins, max_retries=2)
    steps = asyncio.run(model.trade_day(no_tools, lambda _: None, f"Today is {TODAY}.", one_tool()))
    assert steps == 1
    assert standins.stats()["openai"]["requests"] == 3


def test_a_model_unknown_to_the_server_is_unavailable(model_api):
    standins = model_api({})
    with pytest.raises(ModelUnavailable, match="gpt-missing"):
        asyncio.run(
            trader(standins, model="gpt-missing").trade_day(
                no_tools, lambda _: None, f"Today is {TODAY}.", one_tool()
            )
        )


def test_the_toolbox_names_a_service_that_does_not_answer(services: Services):
    dead = load_settings({**services.env, "SEARCH_HTTP_PORT": "1"})

    async def open_toolbox() -> None:
        async with Toolbox(dead):
            pass

    with pytest.raises(UserError, match=r"the search service does not answer at .*:1/mcp"):
        asyncio.run(open_toolbox())


# --- the runner ----------------------------------------------------------------------------


def run_config(log_path: Path, *models: dict[str, Any], max_retries: int = 2):
    return parse_config(
        {
            "date_range": {"init_date": "2025-10-29", "end_date": "2025-10-30"},
            "models": list(models),
            "agent_config": {"max_steps": 5, "max_retries": max_retries, "base_delay": 0},
            "log_config": {"log_path": str(log_path)},
        },
        "test",
    )


def model_entry(signature: str, basemodel: str = MODEL) -> dict[str, Any]:
    return {"name": signature, "basemodel": basemodel, "signature": signature}


def runner_for(services: Services, standins: StandIns | None, config) -> Runner:
    env = dict(services.env)
    if standins is not None:
        env |= {"OPENAI_API_KEY": "test-key", "OPENAI_API_BASE": standins.openai_base}
    return Runner(config, load_settings(env))


def actions(ledger: Ledger) -> list[tuple[str, str, str, int]]:
    return [
        (row["date"], *row["this_action"].values()) for row in ledger.rows() if "this_action" in row
    ]


def run(runner: Runner) -> Outcome:
    return asyncio.run(runner.run())


def test_a_run_commits_the_scripted_trade_for_each_day(books: Path, services: Services, model_api):
    standins = model_api({"script": LOOK_UP_BUY_FINISH})
    config = run_config(books, model_entry("scripted"))
    outcome = run(runner_for(services, standins, config))
    assert [r.signature for r in outcome.results] == ["scripted"]
    assert outcome.failures == []
    ledger = Ledger(books / "scripted")
    assert actions(ledger) == [("2025-10-30", "buy", "AAPL", 2)]
    assert ledger.log_file("2025-10-30").exists()


def keyed_env(services: Services, standins: StandIns, **variables: str) -> dict[str, str]:
    """The run's environment: the stand-in as the model API, OPENAI_API_KEY as the shared
    key, and the variables given."""
    base = {"OPENAI_API_KEY": "shared-key", "OPENAI_API_BASE": standins.openai_base}
    return {**services.env, **base, **variables}


def test_a_model_with_its_own_key_variable_sends_that_key(
    books: Path, services: Services, model_api
):
    standins = model_api({"script": LOOK_UP_BUY_FINISH, "keys": ["deepseek-key"]})
    entry = {**model_entry("scripted"), "api_key_env": "DEEPSEEK_API_KEY"}
    config = run_config(books, entry)
    env = keyed_env(services, standins, DEEPSEEK_API_KEY="deepseek-key")
    outcome = run(Runner(config, load_settings(env)))
    assert outcome.failures == []
    assert actions(Ledger(books / "scripted")) == [("2025-10-30", "buy", "AAPL", 2)]


def test_without_its_key_variable_the_model_sends_the_shared_key_and_is_refused(
    books: Path, services: Services, model_api
):
    # The counterpart of the test above: the stand-in does refuse a key it was not given.
    standins = model_api({"script": LOOK_UP_BUY_FINISH, "keys": ["deepseek-key"]})
    config = run_config(books, model_entry("scripted"))
    env = keyed_env(services, standins, DEEPSEEK_API_KEY="deepseek-key")
    (failure,) = run(Runner(config, load_settings(env))).failures
    assert str(failure) == (
        "scripted on 2025-10-30: the model API refused the key (check OPENAI_API_KEY)"
    )
    assert actions(Ledger(books / "scripted")) == []


def test_a_refused_key_names_the_models_own_variable(books: Path, services: Services, model_api):
    standins = model_api({"script": LOOK_UP_BUY_FINISH, "keys": ["deepseek-key"]})
    entry = {**model_entry("scripted"), "api_key_env": "DEEPSEEK_API_KEY"}
    env = keyed_env(services, standins, DEEPSEEK_API_KEY="revoked-key")
    (failure,) = run(Runner(run_config(books, entry), load_settings(env))).failures
    assert str(failure).endswith("the model API refused the key (check DEEPSEEK_API_KEY)")
    assert "revoked-key" not in str(failure)


def test_a_key_variable_that_is_not_set_is_refused_before_anything_is_written(
    books: Path, services: Services, model_api
):
    standins = model_api({"script": LOOK_UP_BUY_FINISH})
    entry = {**model_entry("scripted"), "api_key_env": "DEEPSEEK_API_KEY"}
    config = run_config(books, entry)
    with pytest.raises(UserError) as raised:
        Runner(config, load_settings(keyed_env(services, standins, DEEPSEEK_API_KEY=" ")))
    assert str(raised.value) == (
        "model scripted: api_key_env names DEEPSEEK_API_KEY, which is not set (or empty) "
        "in the environment, nor DEEPSEEK_API_KEY_FILE"
    )
    assert raised.value.exit_code == 2
    assert not books.exists()


def test_a_model_unknown_to_the_server_is_skipped_and_the_others_run(
    books: Path, services: Services, model_api, caplog: pytest.LogCaptureFixture
):
    standins = model_api({"script": LOOK_UP_BUY_FINISH})
    config = run_config(books, model_entry("missing", "gpt-missing"), model_entry("scripted"))
    with caplog.at_level(logging.WARNING, logger="ai_trader.agent.runner"):
        outcome = run(runner_for(services, standins, config))
    assert [r.signature for r in outcome.results] == ["scripted"]
    assert "skipping model missing" in caplog.text
    assert actions(Ledger(books / "scripted")) == [("2025-10-30", "buy", "AAPL", 2)]
    assert actions(Ledger(books / "missing")) == []


def test_a_model_without_an_api_key_is_skipped_and_a_run_with_nothing_left_fails(
    books: Path, services: Services, caplog: pytest.LogCaptureFixture
):
    config = run_config(books, model_entry("scripted"))
    with (
        caplog.at_level(logging.WARNING, logger="ai_trader.agent.runner"),
        pytest.raises(UserError, match="no enabled model could run") as raised,
    ):
        asyncio.run(runner_for(services, None, config).run())
    assert "OPENAI_API_KEY is not set" in caplog.text
    assert raised.value.exit_code == 2  # a missing key is bad input, not a failed run


def test_a_server_answering_500_fails_the_run_after_the_retries_and_commits_nothing(
    books: Path, services: Services, model_api
):
    standins = model_api({"always_fail": True})
    config = run_config(books, model_entry("scripted"), max_retries=2)
    outcome = run(runner_for(services, standins, config))
    assert outcome.results == []
    (failure,) = outcome.failures
    assert isinstance(failure, AgentError)
    message = str(failure)
    assert "scripted on 2025-10-30" in message
    assert "failed 3 time(s)" in message
    assert standins.stats()["openai"]["requests"] == 3
    ledger = Ledger(books / "scripted")
    assert [row["date"] for row in ledger.rows()] == ["2025-10-29"]


class FailAfterBuy:
    """The services' toolbox, except that the model API starts failing once a buy went through."""

    def __init__(self, toolbox: Toolbox, standins: StandIns) -> None:
        self.toolbox = toolbox
        self.standins = standins
        self.tools = toolbox.tools

    async def call(self, name: str, arguments: dict[str, Any], context: RunContext) -> Any:
        result = await self.toolbox.call(name, arguments, context)
        if name == "buy":
            self.standins.set_scenario({"openai": {"always_fail": True}})
        return result


def test_a_day_that_failed_after_a_trade_is_redone_without_duplicating_it(
    books: Path, services: Services, model_api
):
    standins = model_api({"script": LOOK_UP_BUY_FINISH})
    config = run_config(books, model_entry("scripted"))
    runner = runner_for(services, standins, config)

    async def interrupted(token: str) -> None:
        async with Toolbox(runner.settings) as toolbox:
            toolbox = FailAfterBuy(toolbox, standins)
            await runner.run_model(toolbox, config.enabled_models[0], token)

    with signature_lock(books / "scripted") as lock, pytest.raises(AgentError):
        asyncio.run(interrupted(lock.token))
    ledger = Ledger(books / "scripted")
    assert actions(ledger) == []  # the buy was staged, never committed
    assert ledger.pending("2025-10-30") != []

    standins.set_scenario({"openai": {"script": LOOK_UP_BUY_FINISH}})
    run(runner)
    assert actions(ledger) == [("2025-10-30", "buy", "AAPL", 2)]


# --- pure helpers of the runner ------------------------------------------------------------


def test_off_loop_works_in_another_thread_while_the_loop_goes_on():
    gate = threading.Event()

    def work() -> int:
        # In the loop's own thread this would wait for good: the loop opens the gate.
        assert gate.wait(timeout=60), "the work held up the event loop"
        return threading.get_ident()

    async def main() -> tuple[int, int]:
        task = asyncio.create_task(off_loop(work))
        await asyncio.sleep(0)
        gate.set()
        return await task, threading.get_ident()

    worker, loop_thread = asyncio.run(main())
    assert worker != loop_thread


def test_a_cancelled_off_loop_waits_for_its_work_to_finish():
    started, gate, finished = threading.Event(), threading.Event(), threading.Event()

    def work() -> None:
        started.set()
        gate.wait(timeout=60)
        finished.set()

    async def main() -> None:
        task = asyncio.create_task(off_loop(work))
        assert await asyncio.to_thread(started.wait, 60)
        task.cancel()
        for _ in range(20):
            await asyncio.sleep(0)
        assert not task.done()  # the work holds it: what it writes is written first
        gate.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert finished.is_set()

    asyncio.run(main())


def test_the_models_of_a_run_share_one_http_client_made_in_its_own_loop(
    books: Path, services: Services, model_api
):
    standins = model_api({"script": []})
    config = run_config(books, model_entry("first"), model_entry("second"))
    runner = runner_for(services, standins, config)

    async def clients() -> list[Any]:
        made = [runner._model_trader(entry) for entry in config.enabled_models]
        found = [trader.client._client for trader in made if trader and trader.client]
        await found[0].aclose()
        return found

    one_run = asyncio.run(clients())
    assert len(one_run) == 2
    assert one_run[0] is one_run[1]
    another = asyncio.run(clients())  # a client of a closed loop is of no use in a new one
    assert another[0] is another[1]
    assert another[0] is not one_run[0]


def test_trading_days_are_the_data_days_after_the_last_done_up_to_the_end():
    days = ["2025-10-27", "2025-10-28", "2025-10-29", "2025-10-30", "2025-10-31"]
    assert trading_days(days, "2025-10-28", "2025-10-30") == ["2025-10-29", "2025-10-30"]
    assert trading_days(days, "", "2025-10-27") == ["2025-10-27"]
    assert trading_days(days, "2025-10-31", "2025-12-31") == []


WATCHED = ("AAPL", "MSFT", "NVDA", "TSLA")


def partial_fetch() -> PriceBook:
    """Yesterday and today for four symbols, as a partial fetch can leave them: MSFT has no
    close yesterday, NVDA no bar yesterday, TSLA no open today."""
    full = {"open": 10.0, "high": 11.0, "low": 9.0, "close": 10.5, "volume": 100.0}
    return PriceBook(
        {
            "AAPL": {"2025-10-27": full, "2025-10-28": {"open": 11.0}},
            "MSFT": {"2025-10-27": {"open": 20.0}, "2025-10-28": {"open": 21.0}},
            "NVDA": {"2025-10-28": {"open": 31.0}},
            "TSLA": {"2025-10-27": full},
        }
    )


def test_the_watchlist_keeps_the_symbols_with_a_close_yesterday_and_an_open_today():
    usable, missing = supported(partial_fetch(), WATCHED, "2025-10-28", "2025-10-27")
    assert usable == ("AAPL",)
    assert missing == ("MSFT", "NVDA", "TSLA")


def test_the_watchlist_keeps_every_symbol_on_the_first_day_of_the_data():
    assert supported(partial_fetch(), WATCHED, "2025-10-27", None) == (WATCHED, ())


def test_a_symbol_is_left_out_when_the_day_before_is_not_in_the_data():
    usable, missing = supported(partial_fetch(), ("AAPL",), "2025-10-28", "2025-10-24")
    assert (usable, missing) == ((), ("AAPL",))


def test_the_summary_shows_value_return_and_the_benchmark():
    results = [
        Result("builtin", 5, "2025-10-27", "2025-10-31", 10500.0, 10000.0, -0.0125),
        Result("fresh", 0, None, None, 10000.0, 10000.0, None),
    ]
    lines = format_summary(results).splitlines()
    assert "QQQ" in lines[0]
    na = ["n/a"] * 5  # Sharpe, max DD, fees, tokens, cost: nothing measured here
    assert lines[1].split() == ["builtin", "5", "10,500.00", "+5.00%", "-1.25%", *na]
    assert lines[2].split() == ["fresh", "0", "10,000.00", "+0.00%", "n/a", *na]


def test_the_summary_shows_the_headline_metrics_valuation_measured():
    result = Result(
        "builtin", 5, "2025-10-27", "2025-10-31", 10500.0, 10000.0, -0.0125,
        sharpe=Figure(1.234), max_drawdown=Figure(-0.0825),
    )  # fmt: skip
    assert format_summary([result]).splitlines()[1].split()[5:7] == ["1.23", "-8.25%"]


def paid(fees: float, tokens: float | None, cost: float | None) -> Totals:
    known = Figure(tokens) if tokens is not None else Figure.na("no usage")
    return Totals(
        1, known, Figure(0.0) if tokens is not None else known, Figure(0.0),
        Figure(cost) if cost is not None else Figure.na("no price table"), Figure(fees),
    )  # fmt: skip


def test_the_summary_shows_what_each_model_paid_and_the_total_of_several():
    results = [
        Result("a", 5, "2025-10-27", "2025-10-31", 10500.0, 10000.0, 0.01,
               accounting=paid(1.5, 12345, 0.25)),
        Result("b", 5, "2025-10-27", "2025-10-31", 10400.0, 10000.0, 0.01,
               accounting=paid(0.5, 655, 0.75)),
    ]  # fmt: skip
    lines = format_summary(results).splitlines()
    assert lines[1].split()[-3:] == ["1.50", "12,345", "$0.25"]
    assert lines[3].split() == ["all", "models", "2.00", "13,000", "$1.00"]


def test_the_total_is_n_a_when_a_models_figure_is():
    results = [
        Result("a", 5, "2025-10-27", "2025-10-31", 10500.0, 10000.0, 0.01,
               accounting=paid(0.0, 100, None)),
        Result("b", 5, "2025-10-27", "2025-10-31", 10400.0, 10000.0, 0.01,
               accounting=paid(0.0, 100, 0.5)),
    ]  # fmt: skip
    assert format_summary(results).splitlines()[3].split()[-1] == "n/a"


def test_a_book_without_rows_is_summarised_as_its_cash_and_no_days(tmp_path: Path):
    result = summarise(partial_fetch(), Ledger(tmp_path / "new"), "new", 5000.0)
    assert result == Result("new", 0, None, None, 5000.0, 5000.0, None)
    assert result.total_return == 0.0


def test_a_book_with_only_its_opening_row_starts_at_the_first_open(tmp_path: Path):
    ledger = Ledger(tmp_path / "opened")
    ledger.ensure_initialized("2025-10-24", ("AAPL",), 1000.0)
    result = summarise(partial_fetch(), ledger, "opened", 5000.0)
    assert (result.days, result.first_day, result.final_value) == (0, None, 1000.0)
    assert result.start_value == 1000.0


def test_the_summary_header_names_each_column():
    header = format_summary([]).split()
    assert header == [
        "signature", "days", "final", "value", "return", "QQQ", "Sharpe", "max", "DD",
        "fees", "tokens", "LLM", "cost",
    ]  # fmt: skip


def test_the_summary_shows_n_a_for_a_book_it_cannot_value():
    result = Result("gappy", 3, "2025-10-27", "2025-10-29", None, 10000.0, 0.01, ("AAPL", "MSFT"))
    assert format_summary([result]).splitlines()[1].split() == [
        "gappy", "3", "n/a", "n/a", "+1.00%", "n/a", "n/a", "n/a", "n/a", "n/a"
    ]  # fmt: skip
    (error,) = unpriced_errors([result])
    assert (
        str(error) == "gappy: cannot value the book on 2025-10-29: no price for AAPL, MSFT that day"
    )
    assert error.exit_code == 1


def test_a_range_without_trading_days_is_refused_before_anything_is_written(
    books: Path, services: Services
):
    config = parse_config(
        {
            "date_range": {"init_date": "2025-10-31", "end_date": "2025-11-30"},
            "models": [model_entry("late", "builtin/momentum")],
            "log_config": {"log_path": str(books)},
        },
        "test",
    )
    with pytest.raises(UserError, match="no trading day after init_date 2025-10-31") as raised:
        Runner(config, load_settings(services.env))
    assert raised.value.exit_code == 2
    assert "it covers 2025-06-26 to 2025-10-31" in str(raised.value)
    assert not books.exists()


def test_a_run_against_services_reading_other_prices_fails_and_commits_nothing(
    services: Services, tmp_path: Path
):
    merged = services.settings.data_dir / "merged.jsonl"
    lines = merged.read_text().splitlines()
    for index, line in enumerate(lines):
        row = json.loads(line)
        if row["Meta Data"]["2. Symbol"] == "QQQ":
            row["Time Series (Daily)"]["2025-10-30"]["1. buy price"] = "1.2345"
            lines[index] = json.dumps(row)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "merged.jsonl").write_text("\n".join(lines) + "\n")
    books = tmp_path / "data" / "agent_data"  # this run's own data folder
    config = run_config(books, model_entry("builtin", "builtin/momentum"))
    runner = Runner(config, load_settings({**services.env, "DATA_DIR": str(tmp_path / "data")}))
    (failure,) = run(runner).failures
    assert "the prices service reads other price data than this run" in str(failure)
    assert "QQQ open" in str(failure)
    assert [row["date"] for row in Ledger(books / "builtin").rows()] == ["2025-10-29"]


def test_models_run_concurrently_and_each_book_equals_its_solo_run(books: Path, services: Services):
    builtin_model = partial(model_entry, basemodel="builtin/momentum")
    solo = run_config(books / "solo", builtin_model("alone"))
    run(Runner(solo, load_settings(services.env)))
    together = run_config(books / "together", *(builtin_model(f"m{i}") for i in range(4)))
    outcome = run(Runner(together, load_settings(services.env), jobs=4))
    assert sorted(r.signature for r in outcome.results) == ["m0", "m1", "m2", "m3"]
    expected = BookPaths(books / "solo" / "alone").position_file.read_bytes()
    for index in range(4):
        book = BookPaths(books / "together" / f"m{index}").position_file
        assert book.read_bytes() == expected


def test_a_second_runner_of_a_held_signature_is_refused_naming_the_holder(
    books: Path, services: Services
):
    config = run_config(books, model_entry("busy", "builtin/momentum"))
    with signature_lock(books / "busy"), pytest.raises(UserError) as raised:
        run(Runner(config, load_settings(services.env)))
    assert "signature 'busy' is already being run by pid" in str(raised.value)
    assert raised.value.exit_code == 2
    assert not BookPaths(books / "busy").position_dir.exists()


def test_the_summary_names_a_held_symbol_without_a_price_instead_of_valuing_it_at_zero(
    tmp_path: Path,
):
    from ai_trader.agent.runner import summarise

    day1, day2 = "2025-10-27", "2025-10-28"
    bars = {
        "AAPL": {day1: {"open": 10.0, "close": 11.0}},  # no bar on day2
        "MSFT": {day1: {"open": 5.0, "close": 5.0}, day2: {"open": 6.0, "close": 7.0}},
        "QQQ": {day1: {"open": 100.0, "close": 101.0}, day2: {"open": 101.0, "close": 102.0}},
    }
    ledger = Ledger(tmp_path / "gappy")
    ledger.ensure_initialized("2025-10-24", ["AAPL", "MSFT"], 100.0)
    ledger.record_trade(day1, "buy", "AAPL", 2, 10.0)
    ledger.commit_day(day1)
    ledger.commit_day(day2)
    result = summarise(PriceBook(bars), ledger, "gappy", 100.0)
    assert result.final_value is None
    assert result.unpriced == ("AAPL",)
    assert result.last_day == day2
