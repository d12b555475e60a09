"""Helpers shared by the unit tests: loopback ports that stay closed, the `ai-trader` CLI as
a child process, the real `serve` subprocess (on ports it picks), and a small MCP client."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ai_trader.context import RunContext
from ai_trader.fsutil import atomic_write_jsonl
from ai_trader.layout import books_dir
from ai_trader.ledger import Ledger
from ai_trader.lock import ExclusiveLock, signature_lock
from ai_trader.market.base import Market
from ai_trader.market.universe import NASDAQ_100
from ai_trader.market.us import US_DAILY
from ai_trader.settings import PORT_VARIABLES, SERVICE_NAMES, Settings, load_settings

SRC = Path(__file__).resolve().parents[2] / "src"

# Everything the product reads from the environment: a test starts from none of them set,
# so a developer's own keys or ports never leak into a run.
PRODUCT_VARIABLES = (
    "DATA_DIR",
    "AI_TRADER_ALLOWED_HOSTS",
    "AGENT_JOBS",
    "ALPHAADVANTAGE_API_KEY",
    "ALPHAVANTAGE_API_KEY",
    "ALPHAVANTAGE_BASE_URL",
    "ALPHAVANTAGE_MIN_INTERVAL",
    "TUSHARE_TOKEN",
    "TUSHARE_BASE_URL",
    "TUSHARE_MIN_INTERVAL",
    "JINA_API_KEY",
    "JINA_SEARCH_BASE_URL",
    "JINA_READER_BASE_URL",
    "SEARCH_PROVIDER",
    "OPENAI_API_KEY",
    "OPENAI_API_BASE",
    # The file forms of the keys (settings.secret).
    "OPENAI_API_KEY_FILE",
    "ALPHAADVANTAGE_API_KEY_FILE",
    "ALPHAVANTAGE_API_KEY_FILE",
    "JINA_API_KEY_FILE",
    "TUSHARE_TOKEN_FILE",
    "SERVICE_HOST",
    "SERVICE_CLIENT_HOST",
    "MATH_HTTP_HOST",
    "SEARCH_HTTP_HOST",
    "TRADE_HTTP_HOST",
    "GETPRICE_HTTP_HOST",
    "AI_TRADER_SERVICES",
    "MATH_HTTP_PORT",
    "SEARCH_HTTP_PORT",
    "TRADE_HTTP_PORT",
    "GETPRICE_HTTP_PORT",
    "READY_TIMEOUT",
    "INIT_DATE",
    "END_DATE",
    "AGENT_MAX_STEP",
    "AI_TRADER_LOG_FORMAT",
)

# The offline sample ends on Friday 2025-10-31; these days are inside it.
PAST_DAY = "2025-10-28"
TODAY = "2025-10-29"
FUTURE_DAY = "2025-10-30"
WEEKEND_DAY = "2025-10-25"  # a Saturday: no prices


REPOSITORY = Path(__file__).resolve().parents[2]


def load_file(relative: str, name: str) -> ModuleType:
    """A file of the repository that is no package's module (a script, a tool, a build
    stage's helper) imported by its path, under ``name``, for its pure functions."""
    spec = importlib.util.spec_from_file_location(name, REPOSITORY / relative)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def closed_ports(count: int) -> Iterator[list[int]]:
    """``count`` distinct loopback ports where nothing answers for as long as the block runs.

    Each is held by a socket bound to it that never listens: on Linux a connect to it is
    refused, and no other socket can bind it meanwhile (the holder sets no SO_REUSEADDR, and
    a bind of port 0 is never given a port in use), so nothing can come to answer there. A
    port that was merely free a moment ago could be taken by any process in between."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            holder = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            holder.bind(("127.0.0.1", 0))
            ports.append(holder.getsockname()[1])
        yield ports


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for an `ai-trader` child: none of the product's variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in PRODUCT_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def run_cli(
    *args: str, env: Mapping[str, str], timeout: float = 120, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ai_trader", *args],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def service_env(data_dir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment to start `serve` with: every service port 0, so serve binds ports the
    system picks (no number chosen beforehand that another process could take first), and
    names them in its listening line (``served_ports``; ``with_ports`` for its clients)."""
    ports = {variable: "0" for variable in PORT_VARIABLES.values()}
    return cli_env({"DATA_DIR": str(data_dir), **ports, **(extra or {})})


def with_ports(env: Mapping[str, str], ports: Mapping[str, int]) -> dict[str, str]:
    """``env`` with each service's port variable set to its port in ``ports`` (by name)."""
    return {**env, **{PORT_VARIABLES[name]: str(port) for name, port in ports.items()}}


@dataclass
class Session:
    """A book opened the way the agent opens one, its signature's lock held as a run holds
    it, and the run context its calls carry."""

    ledger: Ledger
    context: RunContext
    lock: ExclusiveLock


@dataclass
class Services:
    """A running `ai-trader serve` and the environment it was started with."""

    env: dict[str, str]
    settings: Settings
    process: subprocess.Popen[str]
    log: Path
    locks: list[ExclusiveLock] = field(default_factory=list)  # released when serve stops

    def url(self, name: str) -> str:
        return self.settings.service_url(name)

    def new_books(self) -> Path:
        """A new folder of books inside the services' data folder (not created): the trade
        service keeps books only there, so a run's ``log_path`` must be inside it too."""
        return books_dir(self.settings.data_dir) / f"test-{uuid.uuid4().hex[:12]}"

    def start_session(
        self,
        signature: str = "tester",
        today: str = TODAY,
        cash: float = 10000.0,
        holdings: Mapping[str, int] | None = None,
        books: str | None = None,
        market: Market = US_DAILY,
    ) -> Session:
        """An opening book in a new folder of books under the services' data folder (or in
        ``books``), its lock held, and the context of a run trading ``today`` in ``market``."""
        books = books or self.new_books().relative_to(self.settings.data_dir).as_posix()
        ledger = Ledger(self.settings.data_dir / books / signature)
        symbols = NASDAQ_100 if market is US_DAILY else market.symbols
        ledger.ensure_initialized("2025-10-01", symbols, cash)
        if holdings:
            rows = ledger.rows()
            rows[0]["positions"].update(holdings)
            atomic_write_jsonl(ledger.position_file, rows)
        lock = signature_lock(ledger.root)
        lock.acquire()
        self.locks.append(lock)
        context = RunContext(signature, today, books, lock.token, market=market.key)
        return Session(ledger, context, lock)


# What serve says once all four services answer, naming the ports it bound:
# "serve: listening on HOST (math :P, search :P, trade :P, prices :P)".
LISTENING = re.compile(r"serve: listening on \S+ \(([^)\n]*)\)")
LISTED = re.compile(r"(\w+) :(\d+)")  # one service of that line
# Only keeps a serve that neither listens nor exits from hanging the suite: no measure of
# speed (a loaded machine once took more than a minute to start one under coverage).
SERVE_GUARD_SECONDS = 900.0


def start_serve(env: Mapping[str, str], log: Path, *args: str) -> subprocess.Popen[str]:
    """`ai-trader serve [ARGS]` with its output in ``log``; ``wait_serving`` waits for it."""
    with log.open("w", encoding="utf-8") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "ai_trader", "serve", *args],
            env=dict(env),
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )


def served_ports(text: str, names: Sequence[str] = SERVICE_NAMES) -> dict[str, int] | None:
    """The port of each service, by name, from serve's listening line in ``text``; None until
    the whole line is there. ValueError when the line does not name each service of ``names``
    (and no other) once on a real port."""
    match = LISTENING.search(text)
    if match is None:
        return None
    items = [LISTED.fullmatch(item) for item in match[1].split(", ")]
    ports = {item[1]: int(item[2]) for item in items if item}
    if (
        None in items
        or len(ports) != len(items)
        or sorted(ports) != sorted(names)
        or not all(0 < port < 65536 for port in ports.values())
    ):
        raise ValueError(f"serve's listening line does not name each service's port: {match[0]}")
    return ports


def wait_serving(
    process: subprocess.Popen[str], log: Path, names: Sequence[str] = SERVICE_NAMES
) -> dict[str, int]:
    """Block until serve says it is listening, then return the ports it names, or fail as
    soon as it exits: waits on what serve does (an event), never on how long it takes."""
    deadline = time.monotonic() + SERVE_GUARD_SECONDS
    while True:
        text = log.read_text(encoding="utf-8", errors="replace")
        ports = served_ports(text, names)
        if ports is not None:
            return ports
        if process.poll() is not None:
            pytest.fail(f"serve exited {process.returncode} before it listened:\n{text}", False)
        if time.monotonic() > deadline:
            pytest.fail(f"serve neither listened nor exited (a hang):\n{text}", False)
        time.sleep(0.05)


@contextlib.contextmanager
def running_services(
    env: dict[str, str], log: Path, names: Sequence[str] = SERVICE_NAMES, market: str = "us"
) -> Iterator[Services]:
    """Start `ai-trader serve` (``--only`` the services ``names``, when not all four;
    ``--market`` when not the US); once it says it listens, yield it, its environment holding
    the ports it names (``env`` gives 0s: see ``service_env``); on exit stop it with SIGTERM
    and check that it exits 0."""
    only = () if tuple(names) == SERVICE_NAMES else ("--only", ",".join(names))
    chosen = () if market == "us" else ("--market", market)
    process = start_serve(env, log, *only, *chosen)
    try:
        served = with_ports(env, wait_serving(process, log, names))
        running = Services(served, load_settings(served), process, log)
        try:
            yield running
        finally:
            for lock in running.locks:
                lock.release()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            code = None
    assert code == 0, f"serve did not stop cleanly on SIGTERM (exit {code}):\n{log.read_text()}"


# --- an MCP client ---------------------------------------------------------------------------


def call_tool(
    url: str, name: str, arguments: dict[str, Any], context: RunContext | None = None
) -> Any:
    """Call one tool over streamable HTTP, with ``context`` in the request's _meta; the
    CallToolResult."""
    from mcp import Client

    async def go() -> Any:
        async with Client(url) as client:
            meta = context.to_meta() if context else None
            return await client.call_tool(name, arguments, meta=meta)

    return asyncio.run(go())


def unwrap(value: Any) -> Any:
    return value["result"] if isinstance(value, dict) and set(value) == {"result"} else value


def tool_value(
    url: str, name: str, arguments: dict[str, Any], context: RunContext | None = None
) -> Any:
    """The tool's structured answer (unwrapped when it is a bare ``{"result": x}``)."""
    result = call_tool(url, name, arguments, context)
    assert not result.is_error, result.content
    return unwrap(result.structured_content)


def tool_error(
    url: str, name: str, arguments: dict[str, Any], context: RunContext | None = None
) -> str:
    """The text of a refusal: the call must come back with ``isError: true``."""
    result = call_tool(url, name, arguments, context)
    assert result.is_error, result.structured_content
    assert result.structured_content is None
    (part,) = result.content
    assert "\n" not in part.text, part.text  # one line, for the model to read
    return part.text


def tool_listing(url: str) -> list[dict[str, Any]]:
    """Every tool a service lists, whole (name, description, schemas), as JSON, by name."""
    from mcp import Client

    async def go() -> list[dict[str, Any]]:
        async with Client(url) as client:
            tools = (await client.list_tools()).tools
        return [
            t.model_dump(mode="json", exclude_none=True)
            for t in sorted(tools, key=lambda t: t.name)
        ]

    return asyncio.run(go())


def list_tools(url: str) -> list[str]:
    from mcp import Client

    async def go() -> list[str]:
        async with Client(url) as client:
            return sorted(tool.name for tool in (await client.list_tools()).tools)

    return asyncio.run(go())
