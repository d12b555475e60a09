"""The built-in deterministic strategy: no model, no key, the same MCP tools.

It lets the offline default exercise the whole path (prices looked up, costs
computed, trades placed, all over MCP) and gives the same trades on every run.
Rule: rank a watchlist by the previous day's open-to-close move; sell holdings
that fell; buy the strongest risers not yet held, splitting the cash evenly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ai_trader.ledger import CASH
from ai_trader.market.universe import NASDAQ_100

CallTool = Callable[[str, dict[str, Any]], Awaitable[Any]]
Log = Callable[[dict[str, Any]], None]
DEFAULT_WATCHLIST = NASDAQ_100[:12]
PICKS = 2


@dataclass(frozen=True)
class Move:
    symbol: str
    change: float  # previous day's close / open - 1


def rank(moves: list[Move]) -> list[Move]:
    """Strongest first; ties broken by symbol so the order never depends on dict order."""
    return sorted(moves, key=lambda m: (-m.change, m.symbol))


def plan_sells(moves: list[Move], positions: Mapping[str, float]) -> list[tuple[str, int]]:
    return [
        (m.symbol, int(positions[m.symbol]))
        for m in moves
        if m.change < 0 and positions.get(m.symbol, 0) > 0
    ]


def plan_buys(moves: list[Move], positions: Mapping[str, float], picks: int = PICKS) -> list[str]:
    return [m.symbol for m in rank(moves) if m.change > 0 and not positions.get(m.symbol)][:picks]


async def trade_day(
    call: CallTool,
    log: Log,
    today: str,
    previous_day: str | None,
    positions: Mapping[str, float],
    watchlist: tuple[str, ...] = DEFAULT_WATCHLIST,
) -> int:
    """Act for one day through the tools; returns how many trades were placed."""

    async def tool(name: str, arguments: dict[str, Any]) -> Any:
        result = await call(name, arguments)
        log(
            {
                "role": "tool",
                "name": name,
                "arguments": arguments,
                "content": json.dumps(result, default=str),
            }
        )
        return result

    if previous_day is None:
        log({"role": "assistant", "content": "No previous day to learn from; holding."})
        return 0
    moves = []
    for symbol in watchlist:
        quote = await tool("get_price_local", {"symbol": symbol, "date": previous_day})
        bar = quote.get("ohlcv", {}) if isinstance(quote, dict) else {}
        if bar.get("open") and bar.get("close") is not None:
            moves.append(Move(symbol, bar["close"] / bar["open"] - 1))

    held = dict(positions)
    trades = 0
    for symbol, amount in plan_sells(moves, held):
        result = await tool("sell", {"symbol": symbol, "amount": amount})
        if isinstance(result, dict) and "error" not in result:
            held = result["positions"]
            trades += 1

    picks = plan_buys(moves, held)
    for index, symbol in enumerate(picks):
        quote = await tool("get_price_local", {"symbol": symbol, "date": today})
        price = quote.get("ohlcv", {}).get("open") if isinstance(quote, dict) else None
        if not price:
            continue
        budget = float(held.get(CASH, 0.0)) / (len(picks) - index)
        amount = math.floor(budget / price)
        if amount <= 0:
            continue
        cost = await tool("multiply", {"a": price, "b": amount})
        if not isinstance(cost, int | float) or cost > float(held.get(CASH, 0.0)):
            continue
        result = await tool("buy", {"symbol": symbol, "amount": amount})
        if isinstance(result, dict) and "error" not in result:
            held = {**held, **result["positions"]}
            trades += 1
    summary = f"Done for {today}: {trades} trade(s). <FINISH_SIGNAL>"
    log({"role": "assistant", "content": summary})
    return trades
