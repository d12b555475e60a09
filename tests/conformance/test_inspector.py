"""The MCP Inspector CLI against each service: the tool list, then for every tool calls that
must succeed and calls that must come back as tool errors (`isError: true`, with the reason
as text).

The run context (signature, simulated today, agent data folder) travels as the agent's
client sends it: in the call's `_meta`, under "ai-trader/run" (--tool-metadata).
The trade calls act on the book of the offline default's run, on the sample's next trading
day; each trade call's verdict also looks at what it did to that book.

Arguments the Inspector would coerce (it turns a string into a number where the schema says
number) are not tried here: the CLI cannot send them as given.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from conformance.commands import (
    FAIL,
    PASS,
    describe_change,
    inspector_call_argv,
    inspector_list_argv,
    parse_inspector,
    result_text,
    structured,
)
from conformance.conftest import (
    EXPECTED_TOOLS,
    SERVICE_PORTS,
    Book,
    MainStack,
    Market,
    Plan,
    Report,
    Tools,
)

pytestmark = pytest.mark.conformance

STAND_IN_ARTICLE = "https://news.example.com/2025/01/chips-rally"  # dated 2025-01-15
FUTURE_ARTICLE = "https://news.example.com/2099/01/future"  # dated 2099: never shown
OHLCV = ("open", "high", "low", "close", "volume")
LONG_QUERY = "nasdaq " * 15_000  # 105,000 characters: more than any search needs


@dataclass(frozen=True)
class Context:
    plan: Plan
    market: Market
    book: Book


Check = Callable[[Any, Context, list[dict[str, Any]]], str | None]


@dataclass(frozen=True)
class Case:
    service: str
    tool: str
    label: str
    arguments: Callable[[Plan], dict[str, Any]]
    expect: Check | None = None  # for a call that must succeed: None when the result is right
    meta: bool = True  # send the run context

    @property
    def valid(self) -> bool:
        return self.expect is not None

    @property
    def check(self) -> str:
        return f"inspector {self.tool} {'valid' if self.valid else 'invalid'}: {self.label}"


def mappings(value: Any) -> list[dict[str, Any]]:
    """Every JSON object inside a value, itself included."""
    found = []
    if isinstance(value, dict):
        found.append(value)
        for item in value.values():
            found += mappings(item)
    elif isinstance(value, list):
        for item in value:
            found += mappings(item)
    return found


def number_result(expected: float) -> Check:
    def check(value: Any, ctx: Context, staged: list[dict[str, Any]]) -> str | None:
        got = value.get("result") if isinstance(value, dict) else value
        return None if got == expected else f"expected {expected}, got {got!r}"

    return check


def articles_before_today(value: Any, ctx: Context, staged: list[dict[str, Any]]) -> str | None:
    text = json.dumps(value)
    if STAND_IN_ARTICLE not in text:
        return "the article dated 2025-01-15 is missing"
    if FUTURE_ARTICLE in text:
        return "an article dated 2099 leaked into the results"
    return None


def bar_of(day: Callable[[Plan], str], full: bool) -> Check:
    def check(value: Any, ctx: Context, staged: list[dict[str, Any]]) -> str | None:
        wanted = day(ctx.plan)
        bars = [m for m in mappings(value) if "open" in m]
        if not bars:
            return "no bar with an open price in the result"
        bar = bars[0]
        keys = set(OHLCV) & set(bar)
        if full and keys != set(OHLCV):
            return f"a past day needs all of {OHLCV}, got {sorted(keys)}"
        if not full and keys != {"open"}:
            return f"today must give only the open, got {sorted(keys)}"
        expected = ctx.market.open(ctx.plan.buy_symbol, wanted)
        if expected is None or abs(float(bar["open"]) - expected) > 1e-6 * max(1, expected):
            return f"open {bar['open']} differs from merged.jsonl's {expected}"
        return None

    return check


def staged_trade(action: str, symbol: Callable[[Plan], str]) -> Check:
    def check(value: Any, ctx: Context, before: list[dict[str, Any]]) -> str | None:
        after = ctx.book.staged(ctx.plan.today)
        new = after[len(before) :]
        want = {"action": action, "symbol": symbol(ctx.plan), "amount": 1}
        if [row.get("this_action") for row in new] != [want]:
            return f"the book staged {[r.get('this_action') for r in new]}, expected [{want}]"
        return None

    return check


CASES = [
    # math
    Case("math", "add", "1.5 + 2.25", lambda p: {"a": 1.5, "b": 2.25}, number_result(3.75)),
    Case("math", "add", "result overflows to infinity", lambda p: {"a": 1e308, "b": 1e308}),
    Case("math", "add", "argument b missing", lambda p: {"a": 1}),
    Case("math", "multiply", "6 x 7", lambda p: {"a": 6, "b": 7}, number_result(42)),
    Case("math", "multiply", "result overflows to infinity", lambda p: {"a": 1e200, "b": 1e200}),
    # search (the Jina stand-in answers; the article from 2099 must never show)
    Case(
        "search",
        "get_information",
        "a query",
        lambda p: {"query": "chip makers"},
        articles_before_today,
    ),
    Case("search", "get_information", "empty query", lambda p: {"query": ""}),
    Case("search", "get_information", "105,000-character query", lambda p: {"query": LONG_QUERY}),
    # prices
    Case(
        "prices",
        "get_price_local",
        "a past day",
        lambda p: {"symbol": p.buy_symbol, "date": p.last_done},
        bar_of(lambda p: p.last_done, full=True),
    ),
    Case(
        "prices",
        "get_price_local",
        "today",
        lambda p: {"symbol": p.buy_symbol, "date": p.today},
        bar_of(lambda p: p.today, full=False),
    ),
    Case(
        "prices",
        "get_price_local",
        "a future day",
        lambda p: {"symbol": p.buy_symbol, "date": p.later},
    ),
    Case(
        "prices",
        "get_price_local",
        "date without dashes",
        lambda p: {"symbol": p.buy_symbol, "date": p.last_done.replace("-", "")},
    ),
    Case(
        "prices",
        "get_price_local",
        "unknown symbol",
        lambda p: {"symbol": "ZZZZ", "date": p.last_done},
    ),
    Case(
        "prices",
        "get_price_local",
        "no run context",
        lambda p: {"symbol": p.buy_symbol, "date": p.last_done},
        meta=False,
    ),
    # trade: a sale first (the run left little cash), then a purchase
    Case(
        "trade",
        "sell",
        "1 share held",
        lambda p: {"symbol": p.sell_symbol, "amount": 1},
        staged_trade("sell", lambda p: p.sell_symbol),
    ),
    Case(
        "trade",
        "buy",
        "1 share",
        lambda p: {"symbol": p.buy_symbol, "amount": 1},
        staged_trade("buy", lambda p: p.buy_symbol),
    ),
    Case("trade", "buy", "amount true", lambda p: {"symbol": p.buy_symbol, "amount": True}),
    Case("trade", "buy", "amount 0", lambda p: {"symbol": p.buy_symbol, "amount": 0}),
    Case("trade", "buy", "amount 1.5", lambda p: {"symbol": p.buy_symbol, "amount": 1.5}),
    Case("trade", "buy", "unknown symbol", lambda p: {"symbol": "ZZZZ", "amount": 1}),
    Case(
        "trade",
        "buy",
        "dotless-i symbol",
        lambda p: {"symbol": "\u0131ntc", "amount": 1},
    ),
    Case(
        "trade",
        "buy",
        "more than the cash buys",
        lambda p: {"symbol": p.buy_symbol, "amount": 1_000_000},
    ),
    Case(
        "trade",
        "buy",
        "no run context",
        lambda p: {"symbol": p.buy_symbol, "amount": 1},
        meta=False,
    ),
    Case("trade", "sell", "amount -1", lambda p: {"symbol": p.sell_symbol, "amount": -1}),
    Case(
        "trade",
        "sell",
        "more shares than held",
        lambda p: {"symbol": p.sell_symbol, "amount": 1_000_000},
    ),
]


def test_every_tool_has_a_valid_and_an_invalid_call() -> None:
    tools = {(c.service, c.tool) for c in CASES}
    expected = {(s, t) for s, names in EXPECTED_TOOLS.items() for t in names}

    assert tools == expected
    assert {(c.service, c.tool) for c in CASES if c.valid} == expected
    assert {(c.service, c.tool) for c in CASES if not c.valid} == expected


@pytest.mark.parametrize("service", list(SERVICE_PORTS))
def test_the_inspector_lists_each_services_tools(
    main_stack: MainStack, tools: Tools, service: str, report: Report
) -> None:
    done = tools.run(inspector_list_argv(tools.node, tools.inspector, main_stack.url(service)))
    outcome = parse_inspector(done.returncode, done.stdout, done.stderr)
    names = {t.get("name") for t in (outcome.result or {}).get("tools", [])}
    problems = []
    if outcome.result is None:
        problems.append(outcome.describe())
    elif names != EXPECTED_TOOLS[service]:
        problems.append(f"tools {sorted(names)}, expected {sorted(EXPECTED_TOOLS[service])}")
    if done.returncode != 0:
        # --strict: exit 6 when the Inspector finds an error-severity schema problem.
        problems.append(f"exit {done.returncode}: {' '.join(done.stderr.split())[:300]}")
    detail = "; ".join(problems) or f"tools {', '.join(sorted(names))}; --strict schema lint clean"
    report("inspector tools/list", service, FAIL if problems else PASS, detail)

    assert not problems, detail


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.tool}-{c.label}")
def test_the_inspector_gets_a_result_or_a_tool_error_as_the_call_deserves(
    main_stack: MainStack, tools: Tools, case: Case, report: Report
) -> None:
    assert main_stack.plan
    assert main_stack.market
    assert main_stack.book
    ctx = Context(main_stack.plan, main_stack.market, main_stack.book)
    argv = inspector_call_argv(
        tools.node,
        tools.inspector,
        main_stack.url(case.service),
        case.tool,
        case.arguments(ctx.plan),
        ctx.plan.meta if case.meta else None,
    )
    before_files = ctx.book.snapshot()
    before_staged = ctx.book.staged(ctx.plan.today)
    done = tools.run(argv)
    outcome = parse_inspector(done.returncode, done.stdout, done.stderr)
    book = describe_change(before_files, ctx.book.snapshot()) if case.service == "trade" else ""

    problems = []
    if case.valid:
        if outcome.result is None or outcome.is_error:
            problems.append(outcome.describe())
        else:
            wrong = case.expect(structured(outcome.result), ctx, before_staged)  # type: ignore[misc]
            if wrong:
                problems.append(f"{wrong} ({outcome.describe()})")
    else:
        if outcome.is_error is not True:
            problems.append(outcome.describe())
        elif not result_text(outcome.result or {}):
            problems.append("isError true but no reason as text")
        if book and book != "the book is unchanged":
            problems.append(book)
    if problems:
        detail = "; ".join(problems)
        if book and book not in detail:
            detail += f"; {book}"
    else:
        detail = (
            f"ok: {result_text(outcome.result or {}, 80)!r}" if case.valid else outcome.describe()
        )
    report(case.check, case.service, FAIL if problems else PASS, detail)

    assert not problems, detail
