"""The four MCP services, through a real MCP client over HTTP, against the real `serve` process."""

from __future__ import annotations

import asyncio
import http.client
import http.server
import json
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from support import (
    FUTURE_DAY,
    PAST_DAY,
    TODAY,
    WEEKEND_DAY,
    Services,
    Session,
    cli_env,
    closed_ports,
    list_tools,
    run_cli,
    served_ports,
    service_env,
    tool_error,
    tool_value,
)

from ai_trader import __version__, health
from ai_trader.context import RunContext
from ai_trader.fsutil import atomic_write_text
from ai_trader.layout import MERGED_NAME
from ai_trader.ledger import CASH
from ai_trader.market.pricebook import PriceBook
from ai_trader.services.common import PriceSource, Service, ToolError
from ai_trader.settings import PORT_VARIABLES, load_settings

EXPECTED_TOOLS = {
    "math": ["add", "multiply"],
    "search": ["get_information"],
    "trade": ["buy", "sell"],
    "prices": ["get_price_local"],
}


@pytest.fixture(scope="module")
def book(services: Services) -> PriceBook:
    return PriceBook.load(services.settings.data_dir / "merged.jsonl")


@pytest.fixture
def session(services: Services) -> Session:
    return services.start_session()


def still_serving(services: Services) -> bool:
    """The services answer a good call after a bad one."""
    return tool_value(services.url("math"), "add", {"a": 2, "b": 3}) == 5


def server_info(url: str) -> Any:
    from mcp import Client

    async def go() -> Any:
        async with Client(url) as client:
            return client.server_info, (await client.list_tools()).tools

    return asyncio.run(go())


def raw_post(port: int, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, bytes, Any]:
    """A hand-made MCP POST, so Host and Origin are exactly what the test says.

    The whole request goes out in one write, so a refusal cannot race the server's close.
    `http.client` sends the headers and the body in two writes; a server that refuses on
    the headers alone (a missing or foreign Host, a foreign Origin) may then close with the
    body still unread in its socket, and the kernel answers that close with a reset instead
    of a FIN: the client can get ECONNRESET instead of the status. In one write, on
    loopback, the request is one segment, wholly in the server's socket before the server
    reads any of it, and one read takes all of it. The server closes with nothing unread,
    so with a FIN, and the reply before it stays readable to its end.
    """
    payload = json.dumps(body).encode()
    fields = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        **headers,
        "Content-Length": str(len(payload)),
    }
    head = "".join(f"{name}: {value}\r\n" for name, value in fields.items())
    request = f"POST /mcp HTTP/1.1\r\n{head}\r\n".encode("latin-1") + payload
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        reply = http.client.HTTPResponse(connection)
        try:
            reply.begin()
            return reply.status, reply.read(), reply.headers
        finally:
            reply.close()


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"},
    },
}


def tools_call(name: str, arguments: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments, "_meta": meta},
    }


# --- discovery and health ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED_TOOLS))
def test_each_service_lists_its_tools(services: Services, name: str):
    assert list_tools(services.url(name)) == EXPECTED_TOOLS[name]


@pytest.mark.parametrize("name", sorted(EXPECTED_TOOLS))
def test_each_service_names_itself_and_the_package_version(services: Services, name: str):
    info, _ = server_info(services.url(name))
    assert (info.name, info.version) == (name, __version__)


@pytest.mark.parametrize("name", sorted(EXPECTED_TOOLS))
def test_tool_descriptions_are_clean_text(services: Services, name: str):
    _, tools = server_info(services.url(name))
    for tool in tools:
        assert tool.description
        assert tool.description == tool.description.strip()
        assert "\n " not in tool.description, tool.description


def input_schema(services: Services, service: str, tool: str) -> dict[str, Any]:
    _, tools = server_info(services.url(service))
    return next(t.input_schema for t in tools if t.name == tool)


def test_the_trade_schema_asks_for_an_upper_case_ticker_and_a_positive_whole_amount(
    services: Services,
):
    properties = input_schema(services, "trade", "buy")["properties"]
    assert properties["amount"]["type"] == "integer"
    assert properties["amount"]["exclusiveMinimum"] == 0
    assert properties["symbol"]["type"] == "string"
    assert properties["symbol"]["pattern"] == "^[A-Z]{1,5}$"


def test_the_prices_schema_asks_for_a_yyyy_mm_dd_date(services: Services):
    properties = input_schema(services, "prices", "get_price_local")["properties"]
    assert properties["date"]["pattern"] == r"^\d{4}-\d{2}-\d{2}$"
    assert properties["symbol"]["pattern"] == "^[A-Z]{1,5}$"


def test_the_search_schema_caps_the_query_length(services: Services):
    assert (
        input_schema(services, "search", "get_information")["properties"]["query"]["maxLength"]
        == 500
    )


@pytest.mark.parametrize("name", sorted(EXPECTED_TOOLS))
def test_each_service_answers_the_health_probe(services: Services, name: str):
    url = f"http://127.0.0.1:{services.settings.ports[name]}/health"
    with urllib.request.urlopen(url, timeout=5) as reply:
        assert reply.status == 200
        assert json.loads(reply.read()) == {"status": "ok", "service": name}


PROBE = """
import sys
from ai_trader.cli import main
code = main(sys.argv[1:])
print(code, sorted({name.split(".")[0] for name in sys.modules} & {"mcp", "openai", "uvicorn"}))
"""


@pytest.mark.parametrize(
    "argv", [["healthcheck"], ["wait-ready", "--timeout", "30"]], ids=lambda argv: argv[0]
)
def test_the_probes_pass_without_importing_the_mcp_sdk(services: Services, argv: list[str]):
    # The health check runs every few seconds in the container, and wait-ready at start-up
    # beside the services' own import of the SDK: both must stay cheap.
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        env=services.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout.split() == ["0", "[]"], result.stderr


def test_the_healthcheck_fails_naming_a_service_that_does_not_answer(services: Services):
    # The trade port is held closed (bound, never listening) for the whole check: nothing
    # else can come to answer on it, however busy the machine.
    with closed_ports(1) as (port,):
        env = {**services.env, "TRADE_HTTP_PORT": str(port)}
        result = run_cli("healthcheck", "--timeout", "1", env=env, timeout=30)
    assert result.returncode != 0
    assert "trade service is not answering" in result.stderr
    assert "Traceback" not in result.stderr


class _NotMcp(http.server.BaseHTTPRequestHandler):
    """Answers every request 200 with a page: alive over HTTP, but no MCP."""

    def _answer(self) -> None:
        body = b'{"status": "ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_but_not_mcp() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotMcp)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_the_healthcheck_fails_for_a_service_that_answers_http_but_not_mcp(
    services: Services, http_but_not_mcp: int
):
    env = {**services.env, "SEARCH_HTTP_PORT": str(http_but_not_mcp)}
    result = run_cli("healthcheck", "--timeout", "2", env=env, timeout=30)
    assert result.returncode != 0
    assert "search service gave no MCP initialize result" in result.stderr


def test_wait_ready_counts_a_service_that_answers_http_but_not_mcp_as_down(
    services: Services, http_but_not_mcp: int
):
    urls = {n: services.settings.service_url(n) for n in EXPECTED_TOOLS}
    urls["search"] = f"http://127.0.0.1:{http_but_not_mcp}/mcp"
    assert health.wait_ready(urls, 0.5) == ["search"]


def test_wait_ready_counts_a_service_that_answers_as_another_as_down(services: Services):
    urls = {n: services.settings.service_url(n) for n in EXPECTED_TOOLS}
    urls["math"] = urls["trade"]
    assert health.wait_ready(urls, 0.5) == ["math"]


def test_wait_ready_names_only_the_service_that_accepts_and_never_answers(services: Services):
    with socket.socket() as silent:  # connections complete in the backlog, and get no reply
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        urls = {n: services.settings.service_url(n) for n in EXPECTED_TOOLS}
        urls["prices"] = f"http://127.0.0.1:{silent.getsockname()[1]}/mcp"
        assert health.wait_ready(urls, 1.0) == ["prices"]


# --- Host and Origin (DNS rebinding) -------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:1", "localhost"])
def test_loopback_names_are_accepted_on_any_port(services: Services, host: str):
    port = services.settings.ports["math"]
    status, body, _ = raw_post(port, INITIALIZE, {"Host": host.format(port=port)})
    assert status == 200, body
    assert json.loads(body)["result"]["serverInfo"]["name"] == "math"


def test_a_name_from_the_allowed_hosts_setting_is_accepted(services: Services):
    port = services.settings.ports["math"]
    status, _, _ = raw_post(port, INITIALIZE, {"Host": f"trader.internal:{port}"})
    assert status == 200


@pytest.mark.parametrize("name", sorted(EXPECTED_TOOLS))
def test_a_foreign_host_is_refused_with_421(services: Services, name: str):
    port = services.settings.ports[name]
    status, body, _ = raw_post(port, INITIALIZE, {"Host": f"evil.example:{port}"})
    assert (status, body) == (421, b"Invalid Host header")


def test_a_missing_host_is_refused(services: Services):
    status, _, _ = raw_post(services.settings.ports["math"], INITIALIZE, {})
    # HTTP/1.1 requires Host: the HTTP layer may refuse before the guard does (400), and
    # then closes the connection. That close cannot reset the reply away: raw_post sends the
    # request in one write, so the server reads all of it and closes with nothing unread.
    assert status in (400, 421)


@pytest.mark.parametrize("origin", ["http://evil.example:8002", "null", "file://", "http://"])
def test_a_foreign_origin_is_refused_with_403(services: Services, origin: str):
    port = services.settings.ports["trade"]
    status, body, _ = raw_post(port, INITIALIZE, {"Host": f"127.0.0.1:{port}", "Origin": origin})
    assert (status, body) == (403, b"Invalid Origin header")


def test_a_loopback_origin_is_accepted(services: Services):
    port = services.settings.ports["math"]
    headers = {"Host": f"localhost:{port}", "Origin": "http://localhost:3000"}
    assert raw_post(port, INITIALIZE, headers)[0] == 200


def test_the_health_route_is_guarded_too(services: Services):
    connection = http.client.HTTPConnection("127.0.0.1", services.settings.ports["math"])
    connection.request("GET", "/health", headers={"Host": "evil.example"})
    assert connection.getresponse().status == 421
    connection.close()


def test_a_buy_behind_a_foreign_host_leaves_the_book_unchanged(
    services: Services, session: Session
):
    port = services.settings.ports["trade"]
    before = session.ledger.position_file.read_bytes()
    call = tools_call("buy", {"symbol": "NVDA", "amount": 3}, session.context.to_meta())
    status, _, _ = raw_post(
        port, call, {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"}
    )
    assert status == 421
    assert session.ledger.position_file.read_bytes() == before
    assert not session.ledger.pending_file.exists()


# --- no sessions to exhaust ----------------------------------------------------------------


def test_the_services_keep_no_sessions(services: Services):
    port = services.settings.ports["math"]
    status, _, headers = raw_post(port, INITIALIZE, {"Host": f"127.0.0.1:{port}"})
    assert status == 200
    assert headers.get("mcp-session-id") is None


def test_a_flood_of_unclosed_initializes_leaves_the_service_answering(services: Services):
    port = services.settings.ports["prices"]
    for _ in range(300):
        assert raw_post(port, INITIALIZE, {"Host": f"127.0.0.1:{port}"})[0] == 200
    assert list_tools(services.url("prices")) == ["get_price_local"]


# --- math ----------------------------------------------------------------------------------


def test_math_adds_and_multiplies(services: Services):
    assert tool_value(services.url("math"), "add", {"a": 1.5, "b": 2.25}) == 3.75
    assert tool_value(services.url("math"), "multiply", {"a": 123.5, "b": 4}) == 494.0


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [("add", {"a": 1e308, "b": 1e308}), ("multiply", {"a": 1e200, "b": 1e200})],
)
def test_an_overflowing_result_is_a_tool_error_not_null(
    services: Services, tool: str, arguments: dict[str, float]
):
    assert "too large" in tool_error(services.url("math"), tool, arguments)


@pytest.mark.parametrize("bad", ["NaN", "1", True, None, [1]])
def test_math_takes_only_finite_json_numbers(services: Services, bad: object):
    text = tool_error(services.url("math"), "add", {"a": bad, "b": 1})
    assert text.startswith("invalid arguments: a:")
    assert still_serving(services)


# --- prices --------------------------------------------------------------------------------


def price(services: Services, session: Session, symbol: str, day: str) -> dict[str, Any]:
    return tool_value(
        services.url("prices"), "get_price_local", {"symbol": symbol, "date": day}, session.context
    )


def price_error(services: Services, session: Session, symbol: object, day: object) -> str:
    return tool_error(
        services.url("prices"), "get_price_local", {"symbol": symbol, "date": day}, session.context
    )


def test_a_past_day_gives_the_full_bar(services: Services, session: Session, book: PriceBook):
    answer = price(services, session, "AAPL", PAST_DAY)
    assert answer["symbol"] == "AAPL"
    assert answer["date"] == PAST_DAY
    assert answer["ohlcv"] == book.bar("AAPL", PAST_DAY)
    assert set(answer["ohlcv"]) == {"open", "high", "low", "close", "volume"}


def test_today_gives_only_the_open(services: Services, session: Session, book: PriceBook):
    answer = price(services, session, "AAPL", TODAY)
    assert answer["ohlcv"] == {"open": book.open("AAPL", TODAY)}
    assert book.close("AAPL", TODAY) is not None  # the data has it; the service holds it back


def test_a_future_date_is_refused(services: Services, session: Session):
    assert "future" in price_error(services, session, "AAPL", FUTURE_DAY)
    assert still_serving(services)


def test_today_is_the_one_each_call_carries(services: Services):
    early = services.start_session(today=PAST_DAY)
    late = services.start_session(today=FUTURE_DAY)
    assert "future" in price_error(services, early, "AAPL", TODAY)
    assert price(services, late, "AAPL", TODAY)["date"] == TODAY


def test_the_benchmark_has_prices(services: Services, session: Session, book: PriceBook):
    assert price(services, session, "QQQ", PAST_DAY)["ohlcv"] == book.bar("QQQ", PAST_DAY)


@pytest.mark.parametrize("symbol", ["aapl", "ıntc", "AAPL ", "NOPE1", 7])
def test_a_symbol_that_is_not_an_upper_case_ticker_is_refused(
    services: Services, session: Session, symbol: object
):
    assert price_error(services, session, symbol, PAST_DAY).startswith("invalid arguments: symbol:")


def test_an_unknown_symbol_is_refused(services: Services, session: Session):
    assert "unknown symbol 'NOPE'" in price_error(services, session, "NOPE", PAST_DAY)
    assert still_serving(services)


@pytest.mark.parametrize("day", ["2025/10/28", "yesterday", "", "20251014", 20251014])
def test_a_date_not_written_yyyy_mm_dd_is_refused(
    services: Services, session: Session, day: object
):
    text = price_error(services, session, "AAPL", day)
    assert text.startswith("invalid arguments: date:")
    assert still_serving(services)


def test_a_date_that_does_not_exist_is_refused(services: Services, session: Session):
    assert "not a real calendar day" in price_error(services, session, "AAPL", "2025-02-30")


def test_a_day_without_trading_is_refused(services: Services, session: Session):
    assert "no price" in price_error(services, session, "AAPL", WEEKEND_DAY)


def test_prices_without_a_run_context_is_refused(services: Services):
    text = tool_error(
        services.url("prices"), "get_price_local", {"symbol": "AAPL", "date": PAST_DAY}
    )
    assert "no run context" in text
    assert "ai-trader/run" in text


def test_a_malformed_run_context_is_refused(services: Services):
    meta = {"ai-trader/run": {"today": "tomorrow"}}
    port = services.settings.ports["prices"]
    call = tools_call("get_price_local", {"symbol": "AAPL", "date": PAST_DAY}, meta)
    status, body, _ = raw_post(port, call, {"Host": f"127.0.0.1:{port}"})
    answer = json.loads(body)["result"]
    assert status == 200
    assert answer["isError"] is True
    assert "today 'tomorrow' is not a YYYY-MM-DD date" in answer["content"][0]["text"]


# --- trade ---------------------------------------------------------------------------------


def trade(services: Services, session: Session, action: str, symbol: str, amount: object) -> dict:
    return tool_value(
        services.url("trade"), action, {"symbol": symbol, "amount": amount}, session.context
    )


def trade_error(
    services: Services, context: RunContext | None, action: str, symbol: object, amount: object
) -> str:
    return tool_error(services.url("trade"), action, {"symbol": symbol, "amount": amount}, context)


def test_a_buy_is_staged_at_the_days_open(services: Services, book: PriceBook):
    session = services.start_session(cash=10000.0)
    answer = trade(services, session, "buy", "MSFT", 3)
    opening = book.open("MSFT", TODAY)
    assert answer["price"] == opening
    assert answer["amount"] == 3
    assert answer["positions"] == {"MSFT": 3, CASH: round(10000.0 - 3 * opening, 4)}
    staged = session.ledger.pending(TODAY)
    assert [row["this_action"] for row in staged] == [
        {"action": "buy", "symbol": "MSFT", "amount": 3}
    ]
    assert len(session.ledger.rows()) == 1  # not committed: that is the agent's job


def test_a_sell_is_staged_at_the_days_open(services: Services, book: PriceBook):
    session = services.start_session(cash=100.0, holdings={"NVDA": 5})
    answer = trade(services, session, "sell", "NVDA", 2)
    opening = book.open("NVDA", TODAY)
    assert answer["positions"] == {"NVDA": 3, CASH: round(100.0 + 2 * opening, 4)}
    assert session.ledger.pending(TODAY)[-1]["this_action"] == {
        "action": "sell",
        "symbol": "NVDA",
        "amount": 2,
    }


def test_trades_in_one_day_build_on_each_other(services: Services, session: Session):
    trade(services, session, "buy", "AAPL", 2)
    answer = trade(services, session, "sell", "AAPL", 1)
    assert answer["positions"]["AAPL"] == 1
    assert [row["id"] for row in session.ledger.pending(TODAY)] == [1, 2]


def test_each_call_trades_on_the_book_its_context_names(services: Services):
    first = services.start_session(signature="first")
    second = services.start_session(signature="second", today=PAST_DAY)
    trade(services, first, "buy", "AAPL", 1)
    trade(services, second, "buy", "MSFT", 2)
    assert [r["this_action"]["symbol"] for r in first.ledger.pending(TODAY)] == ["AAPL"]
    assert [r["this_action"]["symbol"] for r in second.ledger.pending(PAST_DAY)] == ["MSFT"]


@pytest.mark.parametrize(
    ("action", "symbol", "amount", "problem"),
    [
        ("buy", "NOPE", 1, "unknown symbol"),
        ("buy", "QQQ", 1, "unknown symbol"),  # the benchmark is not for trading
        ("buy", "AAPL", 0, "amount: Input should be greater than 0"),
        ("buy", "AAPL", -3, "amount: Input should be greater than 0"),
        ("buy", "AAPL", 1.5, "amount: Input should be a valid integer"),
        ("buy", "AAPL", 2.0, "amount: Input should be a valid integer"),
        ("sell", "AAPL", 0.25, "amount: Input should be a valid integer"),
        ("buy", "AAPL", True, "amount: Input should be a valid integer"),
        ("buy", "AAPL", "10", "amount: Input should be a valid integer"),
        ("buy", "AAPL", 10**400, "amount: Input should be less than or equal to"),
        ("buy", "ıntc", 1, "symbol: String should match pattern"),
        ("buy", "intc", 1, "symbol: String should match pattern"),
        ("buy", "AAPL", 10**9, "insufficient cash"),
        ("sell", "AAPL", 1, "insufficient shares"),
    ],
)
def test_a_rejected_trade_is_a_tool_error_and_stages_nothing(
    services: Services,
    session: Session,
    action: str,
    symbol: str,
    amount: object,
    problem: str,
):
    assert problem in trade_error(services, session.context, action, symbol, amount)
    assert session.ledger.pending(TODAY) == []
    assert still_serving(services)


def test_buying_on_a_day_without_a_price_is_refused(services: Services):
    session = services.start_session(today=WEEKEND_DAY)
    text = trade_error(services, session.context, "buy", "AAPL", 1)
    assert f"no price for AAPL on {WEEKEND_DAY}" in text
    assert session.ledger.pending(WEEKEND_DAY) == []


def test_a_trade_without_a_run_context_is_refused(services: Services):
    assert "no run context" in trade_error(services, None, "buy", "AAPL", 1)
    assert still_serving(services)


def test_a_context_naming_no_book_is_refused_and_creates_nothing(
    services: Services, session: Session
):
    context = replace(session.context, signature="ghost")
    books = services.settings.data_dir / session.context.books
    before = sorted(books.rglob("*"))
    assert "no book for signature 'ghost'" in trade_error(services, context, "buy", "AAPL", 1)
    assert sorted(books.rglob("*")) == before


# --- search --------------------------------------------------------------------------------


def test_search_drops_results_dated_on_or_after_today(
    services: Services, session: Session, jina_standin
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
    answer = tool_value(
        services.url("search"), "get_information", {"query": "chips"}, session.context
    )
    assert answer["today"] == TODAY
    assert [item["url"] for item in answer["results"]] == ["https://n.example/old"]
    assert answer["results"][0]["content"] == "yesterday's news"
    assert jina_standin.stats()["jina"]["requests"] == 2  # one search, one page read


def test_a_query_over_the_cap_is_refused_before_any_search(
    services: Services, session: Session, jina_standin
):
    jina_standin.set_scenario({})
    text = tool_error(
        services.url("search"), "get_information", {"query": "x" * 1_000_000}, session.context
    )
    assert text.startswith("invalid arguments: query: String should have at most 500")
    assert jina_standin.stats()["jina"]["requests"] == 0


def test_search_without_a_run_context_is_refused(services: Services):
    assert "no run context" in tool_error(services.url("search"), "get_information", {"query": "x"})


def test_search_without_a_jina_key_is_a_tool_error(services: Services):
    # In-process (the SDK's in-memory transport): the session's `serve` has a key.
    from mcp import Client

    from ai_trader.services import search

    keyless = {k: v for k, v in services.env.items() if k != "JINA_API_KEY"}

    async def ask() -> Any:
        async with Client(search.build(load_settings(keyless))) as client:
            return await client.call_tool("get_information", {"query": "chips"})

    result = asyncio.run(ask())
    assert result.is_error
    assert result.content[0].text == "search is unavailable: JINA_API_KEY is not set"


# --- the commands around the services ------------------------------------------------------


def test_serve_on_a_port_in_use_exits_with_one_line_naming_port_and_variable(tmp_path: Path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        env = service_env(tmp_path, {"GETPRICE_HTTP_PORT": str(taken)})
        result = run_cli("serve", env=env, timeout=60)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(taken) in lines[0]
    assert "GETPRICE_HTTP_PORT" in lines[0]
    assert "already in use" in lines[0]


def test_serve_with_a_bad_allowed_hosts_setting_exits_with_one_line(tmp_path: Path):
    env = service_env(tmp_path, {"AI_TRADER_ALLOWED_HOSTS": "http://trader:8002"})
    result = run_cli("serve", env=env, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "ai-trader serve: error: AI_TRADER_ALLOWED_HOSTS: 'http://trader:8002' is not a host "
        "name (give names without ports or schemes, separated by commas)"
    ]


def test_wait_ready_with_nothing_running_names_all_four_within_its_timeout(tmp_path: Path):
    # The four ports are held closed (bound, never listening) until wait-ready has given up:
    # nothing else can come to answer on them, however busy the machine.
    with closed_ports(4) as ports:
        env = cli_env(dict(zip(PORT_VARIABLES.values(), map(str, ports), strict=True)))
        result = run_cli("wait-ready", "--timeout", "1", env=env, timeout=60)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    line = result.stderr.strip()
    assert "\n" not in line
    assert "not ready after 1 s" in line  # the given timeout, not the 30 s default
    for name in ("math", "search", "trade", "prices"):
        assert f"{name} (http://127.0.0.1:" in line


# --- port 0: serve picks its ports, clients refuse it ----------------------------------------


def test_serve_on_port_0_names_four_distinct_ports_each_answering_as_its_service(
    services: Services, tmp_path: Path
):
    """The session's serve was started with every service port 0 and named the ports it
    bound. No race: the system gave serve each port at its own bind, and serve holds them
    while the test asks, so no other process can have taken one in between."""
    assert {service_env(tmp_path)[v] for v in PORT_VARIABLES.values()} == {"0"}
    ports = served_ports(services.log.read_text(encoding="utf-8"))
    assert ports is not None
    assert ports == services.settings.ports  # the clients' settings hold the named ports
    assert len(set(ports.values())) == len(EXPECTED_TOOLS)
    assert 0 not in ports.values()
    for name, port in ports.items():
        assert list_tools(f"http://127.0.0.1:{port}/mcp") == EXPECTED_TOOLS[name]


DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "default_config.json"
CLIENTS = [["healthcheck"], ["wait-ready", "--timeout", "1"], ["run", str(DEFAULT_CONFIG)]]


@pytest.mark.parametrize("argv", CLIENTS, ids=lambda argv: argv[0])
def test_a_client_given_a_service_port_of_0_stops_with_one_line(argv: list[str], tmp_path: Path):
    """Port 0 is serve's alone; a client refuses it before it connects anywhere, so no port
    is involved and nothing can race. The run refuses it before it locks or writes a book."""
    data = tmp_path / "data"
    env = cli_env({"DATA_DIR": str(data), "TRADE_HTTP_PORT": "0"})
    result = run_cli(*argv, env=env, timeout=60)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"ai-trader {argv[0]}: error: TRADE_HTTP_PORT is 0 (any free port, for serve only): "
        "give clients the port serve reports"
    ]
    assert not data.exists()


LISTENING_LINE = (
    "serve: listening on 127.0.0.1 (math :41001, search :41002, trade :8002, prices :9)"
)


def test_served_ports_reads_each_service_port_from_the_listening_line():
    # A pure function over text: no port and no process, so nothing can race.
    text = f"config: read\n{LISTENING_LINE}\nserve: SIGTERM received\n"
    assert served_ports(text) == {"math": 41001, "search": 41002, "trade": 8002, "prices": 9}
    ipv6 = LISTENING_LINE.replace("127.0.0.1", "::")
    assert served_ports(ipv6) == served_ports(LISTENING_LINE)


@pytest.mark.parametrize("cut", [0, 20, len(LISTENING_LINE) - 1])
def test_served_ports_is_none_until_the_whole_line_is_there(cut: int):
    # A log read while serve writes it can end anywhere: before the closing parenthesis
    # there is nothing to read, not a port cut short.
    assert served_ports("serve: starting\n" + LISTENING_LINE[:cut]) is None


@pytest.mark.parametrize(
    "listing",
    [
        "math :1, search :2, trade :3",
        "math :1, search :2, trade :3, prices :4, prices :5",
        "math :1, search :2, trade :3, dashboard :4",
        "math :1, search :2, trade :3, prices :0",
        "math :1, search :2, trade :3, prices :70000",
        "math :1, search :2, trade :3, prices :",
        "math 1, search :2, trade :3, prices :4",
    ],
)
def test_served_ports_refuses_a_line_that_does_not_name_each_service_port(listing: str):
    # A pure function over text: no port and no process, so nothing can race.
    with pytest.raises(ValueError, match="does not name each service's port"):
        served_ports(f"serve: listening on 127.0.0.1 ({listing})")


# --- in the process: the price source and tool registration ----------------------------------


def test_the_price_source_reloads_when_merged_jsonl_is_replaced(offline_data, tmp_path: Path):
    merged = tmp_path / MERGED_NAME
    lines = (offline_data.data_dir / MERGED_NAME).read_text().splitlines(keepends=True)
    merged.write_text("".join(lines))
    source = PriceSource(merged)
    first = asyncio.run(source.current())
    assert asyncio.run(source.current()) is first  # unchanged: the loaded prices again
    atomic_write_text(merged, "".join(line for line in lines if '"AAPL"' not in line))
    second = asyncio.run(source.current())
    assert "AAPL" in first.symbols
    assert "AAPL" not in second.symbols


def test_a_price_source_without_its_file_is_a_tool_error_that_names_merge(tmp_path: Path):
    with pytest.raises(ToolError, match=r"merged\.jsonl is missing; run `ai-trader merge`"):
        asyncio.run(PriceSource(tmp_path / MERGED_NAME).current())


def test_a_plain_function_is_refused_as_a_tool_at_start_up():
    server = Service("probe", "A service for the test.")

    def blocking(symbol: str) -> str:
        """A tool the SDK would run in a worker thread."""
        return symbol

    with pytest.raises(TypeError, match="tool blocking must be a coroutine function"):
        server.tool_from(blocking)
