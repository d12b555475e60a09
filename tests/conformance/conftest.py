"""Fixtures for `nox -s conformance`: the image run by compose as a user runs it, and the
independent MCP clients (the official conformance suite and the Inspector CLI, from npm).

Two compose projects, each with a unique name and torn down at the end, also after Ctrl-C
or SIGTERM (both become KeyboardInterrupt, and pytest then runs the fixtures' teardown):

- the main stack: the offline default runs once to completion (so the book of
  `builtin-momentum` exists), then the four services run as the container's main process
  (`ai-trader serve`, what the entrypoint starts), with the dashboard and a Jina stand-in;
- the flood stack: the services alone, thrown away after the session-flood check.

Every check records one row (check, service, verdict, detail); the table is printed at
the end of the run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from ai_trader.layout import AGENT_DATA, STAGE_NAME, BookPaths
from ai_trader.lock import signature_lock
from ai_trader.settings import DASHBOARD_PORT, DEFAULT_PORTS, PUBLISH_VARIABLES
from conformance.commands import (
    ERROR,
    Row,
    format_table,
    interpolated_names,
    package_bin,
    run_meta,
    tally,
)
from harness.compose import Compose, compose_command

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
STANDIN_FILE = HERE / "compose.conformance.yml"  # a Jina stand-in for the search service
SERVE_FILE = HERE / "compose.serve.yml"  # the services as the container's main process
# The shipped health checks run every second, so `up --wait` returns soon after ready.
QUICK_HEALTH_FILE = ROOT / "tests" / "compose.quick-health.yml"
SERVICE = "ai-trader"
# The container ports of the four services: the product's own table.
SERVICE_PORTS = DEFAULT_PORTS

EXPECTED_TOOLS = {
    "math": {"add", "multiply"},
    "search": {"get_information"},
    "trade": {"buy", "sell"},
    "prices": {"get_price_local"},
}
CONTAINER_UID = 1000
SIGNATURE = "builtin-momentum"  # the offline default's one model
BOOKS = AGENT_DATA  # the default config's log_path, relative to the data folder
# The offline default stops here, so the sample has later trading days left to trade on.
RUN_END_DATE = "2025-10-15"
COMPOSE_TIMEOUT = 900  # seconds for one compose command (the first run fetches and merges)

ROWS = pytest.StashKey[list[Row]]()
NOT_APPLICABLE = pytest.StashKey[dict[str, str]]()
VERSIONS = pytest.StashKey[list[str]]()
RECORDED = pytest.StashKey[bool]()


# --------------------------------------------------------------------------- the table


def pytest_configure(config: pytest.Config) -> None:
    config.stash[ROWS] = []
    config.stash[NOT_APPLICABLE] = {}
    config.stash[VERSIONS] = []

    # nox ends a run with SIGTERM after its interrupt timeout: make that a
    # KeyboardInterrupt too, so the stacks are still torn down.
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


Report = Callable[[str, str, str, str], None]


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Report:
    """Record a row of the summary table for this test."""

    def add(check: str, service: str, verdict: str, detail: str) -> None:
        request.config.stash[ROWS].append(Row(check, service, verdict, detail))
        request.node.stash[RECORDED] = True

    return add


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    # A test that broke before recording its verdict (a stack that did not come up, a
    # tool that did not run) still gets a row: never a silent gap in the table.
    if report.failed and not item.stash.get(RECORDED, False):
        item.stash[RECORDED] = True
        message = call.excinfo.exconly() if call.excinfo else report.longreprtext
        line = " ".join(message.split())[:300]
        check = item.originalname.removeprefix("test_").replace("_", " ")
        check = check if len(check) <= 40 else check[:39] + "…"
        callspec = getattr(item, "callspec", None)
        service = callspec.id if callspec else "-"
        item.config.stash[ROWS].append(Row(check, service, ERROR, f"{report.when}: {line}"))
    return report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    rows = config.stash[ROWS]
    if not rows:
        return
    write = terminalreporter.write_line
    terminalreporter.section("MCP conformance summary")
    for line in config.stash[VERSIONS]:
        write(line)
    skipped = config.stash[NOT_APPLICABLE]
    if skipped:
        write("")
        write("Conformance-suite scenarios that do not apply to tool-only services:")
        for name, reason in skipped.items():
            write(f"  {name}: {reason}")
    write("")
    for line in format_table(rows).splitlines():
        write(line)
    write("")
    write(f"{len(rows)} checks: {tally(rows)}")


# ----------------------------------------------------------------------- the npm tools


@dataclass(frozen=True)
class Tools:
    node: str
    inspector: str
    suite: str
    home: Path  # HOME for the tools: the Inspector keeps state under ~/.mcp-inspector

    def run(self, argv: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "HOME": str(self.home), "NO_COLOR": "1"}
        # The tools' own `#!/usr/bin/env node` children must find the same node.
        env["PATH"] = f"{Path(self.node).parent}{os.pathsep}{env.get('PATH', '')}"
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )


def _required_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: run these checks with `nox -s conformance`")
    return value


@pytest.fixture(scope="session")
def tools(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Tools:
    node = _required_env("AI_TRADER_NODE")
    modules = Path(_required_env("AI_TRADER_NPM_TOOLS"))
    inspector_dir = modules / "@modelcontextprotocol" / "inspector"
    suite_dir = modules / "@modelcontextprotocol" / "conformance"
    found = Tools(
        node=node,
        inspector=str(package_bin(inspector_dir, "mcp-inspector")),
        suite=str(package_bin(suite_dir, "conformance")),
        home=tmp_path_factory.mktemp("npm-tools-home"),
    )
    version = found.run([node, "--version"], timeout=60).stdout.strip()
    pytestconfig.stash[VERSIONS].append(
        f"node {version}, @modelcontextprotocol/inspector {_version(inspector_dir)}, "
        f"@modelcontextprotocol/conformance {_version(suite_dir)}"
    )
    return found


def _version(package_dir: Path) -> str:
    return json.loads((package_dir / "package.json").read_text(encoding="utf-8"))["version"]


# ----------------------------------------------------------------------------- compose
# The driver is tests/harness/compose.py, shared with the integration suite.


def stack_compose(project: str, files: list[Path], env_file: Path, env: dict[str, str]) -> Compose:
    """The shared driver for one of these stacks: nothing from the developer's shell (a real
    key, a port, a bind address) applies to a variable the compose files substitute."""
    controlled: set[str] = set()
    for path in files:
        controlled |= interpolated_names(path.read_text(encoding="utf-8"))
    return Compose(compose_command(), files, project, env_file=env_file, env=env,
                   controlled=controlled, timeout=COMPOSE_TIMEOUT)  # fmt: skip


def host_folders(root: Path) -> tuple[Path, Path, dict[str, str]]:
    """Data and logs folders for a stack, writable by the container, and the env naming them."""
    data, logs = root / "data", root / "logs"
    env = {
        "AI_TRADER_DATA_DIR": str(data),
        "AI_TRADER_LOGS_DIR": str(logs),
        # Empty host ports: Docker publishes on free ephemeral ports of 127.0.0.1.
        **dict.fromkeys(PUBLISH_VARIABLES, ""),
        "AI_TRADER_IMAGE": os.environ.get("AI_TRADER_IMAGE", "ai-trader"),
        "AI_TRADER_TAG": os.environ.get("AI_TRADER_TAG", "dev"),
    }
    for folder in (data, logs):
        folder.mkdir(parents=True)
        if os.geteuid() == 0:
            os.chown(folder, CONTAINER_UID, CONTAINER_UID)  # what a user does with sudo
    if os.geteuid() != 0:
        env |= {"AI_TRADER_UID": str(os.getuid()), "AI_TRADER_GID": str(os.getgid())}
    return data, logs, env


@pytest.fixture(scope="session")
def empty_env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The repository's .env (a developer's keys) must not apply.
    path = tmp_path_factory.mktemp("compose") / "empty.env"
    path.write_text("")
    return path


# ------------------------------------------------------------------------------ the book


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@dataclass
class Book:
    """The position book of SIGNATURE in the host's data folder, as files on disk."""

    folder: Path  # <data>/agent_data/<signature>/position

    @property
    def position_file(self) -> Path:
        return self.folder / "position.jsonl"

    @property
    def pending_file(self) -> Path:
        return self.folder / STAGE_NAME

    def snapshot(self) -> tuple[bytes | None, bytes | None]:
        return tuple(  # type: ignore[return-value]
            p.read_bytes() if p.is_file() else None for p in (self.position_file, self.pending_file)
        )

    def staged(self, day: str) -> list[dict[str, Any]]:
        if not self.pending_file.is_file():
            return []
        rows = read_jsonl(self.pending_file)
        return rows if rows and rows[0].get("date") == day else []

    def positions(self, day: str) -> dict[str, float]:
        staged = self.staged(day)
        row = staged[-1] if staged else read_jsonl(self.position_file)[-1]
        return dict(row["positions"])


@dataclass
class Market:
    """merged.jsonl of the stack's data folder: open and close by symbol and day."""

    series: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Market:
        market = cls()
        for line in read_jsonl(path):
            symbol = line["Meta Data"]["2. Symbol"]
            market.series[symbol] = {
                day: {key.split(". ", 1)[-1]: float(value) for key, value in bar.items()}
                for day, bar in line["Time Series (Daily)"].items()
            }
        return market

    def open(self, symbol: str, day: str) -> float | None:
        bar = self.series.get(symbol, {}).get(day)
        return None if bar is None else bar.get("buy price")

    def days(self) -> list[str]:
        return sorted({day for bars in self.series.values() for day in bars})


@dataclass
class Plan:
    """The trading day the checks trade on, chosen from the data the run left behind."""

    last_done: str  # the last day the offline default committed
    today: str  # the next trading day of the sample: the simulated today of every call
    later: str  # a trading day after today: a future date
    sell_symbol: str  # held after the run
    buy_symbol: str  # the cheapest stock that day
    token: str = ""  # of the signature's lock, which the checks hold as a run would

    @property
    def meta(self) -> dict[str, Any]:
        return run_meta(SIGNATURE, self.today, BOOKS, self.token)


def make_plan(book: Book, market: Market, tradable: set[str]) -> Plan:
    last_done = read_jsonl(book.position_file)[-1]["date"]
    after = [day for day in market.days() if day > last_done]
    if len(after) < 2:
        raise RuntimeError(f"the sample has fewer than two trading days after {last_done}")
    today, later = after[0], after[1]
    positions = book.positions(today)
    held = [s for s, n in positions.items() if s in tradable and n and market.open(s, today)]
    if not held:
        raise RuntimeError(f"the book holds no stock with a price on {today}")
    sell_symbol = max(held, key=lambda s: market.open(s, today) or 0)
    priced = [s for s in tradable if market.open(s, today)]
    buy_symbol = min(priced, key=lambda s: market.open(s, today) or 0)
    return Plan(last_done, today, later, sell_symbol, buy_symbol)


# ---------------------------------------------------------------------------- the stacks


@dataclass
class Stack:
    compose: Compose
    data: Path
    ports: dict[str, int]
    dashboard_port: int | None = None

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}/mcp"

    def container(self) -> str:
        return self.compose.container_id(SERVICE)

    def inspect(self) -> dict[str, Any]:
        out = subprocess.run(
            ["docker", "inspect", self.container()],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return json.loads(out.stdout)[0]


@dataclass
class MainStack(Stack):
    book: Book | None = None
    market: Market | None = None
    plan: Plan | None = None


def _project(kind: str) -> str:
    return f"aitrader-conf-{kind}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def main_stack(
    tmp_path_factory: pytest.TempPathFactory, empty_env_file: Path
) -> Iterator[MainStack]:
    data, _, env = host_folders(tmp_path_factory.mktemp("main"))
    env["END_DATE"] = RUN_END_DATE
    run = stack_compose(_project("main"), [COMPOSE_FILE, STANDIN_FILE], empty_env_file, env)
    try:
        # 1. The offline default, as `docker compose up` runs it, so the book exists.
        done = run("up", "--exit-code-from", SERVICE, SERVICE, check=False)
        if done.returncode != 0:
            raise RuntimeError(
                f"the offline default (END_DATE={RUN_END_DATE}) exited {done.returncode}: "
                f"{run.logs(SERVICE)[-2000:]}"
            )
        # 2. The four services, kept up, with the dashboard and the Jina stand-in.
        serve = run.with_file(SERVE_FILE, QUICK_HEALTH_FILE)
        serve("up", "--detach", "--wait", SERVICE, "jina", "dashboard")
        stack = MainStack(
            compose=serve,
            data=data,
            ports={name: serve.port(SERVICE, port) for name, port in SERVICE_PORTS.items()},
            dashboard_port=serve.port("dashboard", DASHBOARD_PORT),
        )
        stack.book = Book(BookPaths(data / BOOKS / SIGNATURE).position_dir)
        stack.market = Market.load(data / "merged.jsonl")
        opening = read_jsonl(stack.book.position_file)[0]["positions"]
        plan = make_plan(stack.book, stack.market, set(opening) - {"CASH"})
        # The checks trade as the run that holds the signature: the trade service takes
        # a call only with the token of a live holder of its lock (one kernel, so the
        # lock held here on the bind mount is the one the container sees).
        with signature_lock(data / BOOKS / SIGNATURE) as lock:
            stack.plan = replace(plan, token=lock.token)
            yield stack
    finally:
        run.down()


@pytest.fixture(scope="module")
def flood_stack(tmp_path_factory: pytest.TempPathFactory, empty_env_file: Path) -> Iterator[Stack]:
    """The services alone in a throwaway project: the flood cannot spoil the other checks."""
    _, _, env = host_folders(tmp_path_factory.mktemp("flood"))
    serve = stack_compose(
        _project("flood"), [COMPOSE_FILE, SERVE_FILE, QUICK_HEALTH_FILE], empty_env_file, env
    )
    try:
        serve("up", "--detach", "--wait", SERVICE)
        yield Stack(
            compose=serve,
            data=Path(env["AI_TRADER_DATA_DIR"]),
            ports={name: serve.port(SERVICE, port) for name, port in SERVICE_PORTS.items()},
        )
    finally:
        serve.down()
