"""The built-in deterministic strategy: no model, no key, the same MCP tools.

It lets the offline default exercise the whole path (prices looked up, costs
computed, trades placed, all over MCP) and gives the same trades on every run.
Rule: rank a watchlist (the market's first symbols) by the previous day's
open-to-close move (in an hourly market, the previous slot's); sell holdings that fell
(what T+1 still holds back excepted); buy the strongest risers not yet held, splitting
the cash evenly, each buy sized to the market's rules (whole lots, or fractional amounts
to the market's decimals).

The watchlist's lookups go out together: they are reads, and a call's time is mostly
CPU on both ends, which overlaps only when the calls do. Their answers are logged in
watchlist order, so the log reads as if they had been made one by one.

It never works around a refusal: every lookup and trade it makes is one the data
supports, so a refused call means the data or a service is wrong, and the refusal
(``ToolRefused``) ends the day uncommitted instead of turning into "no trade".
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ai_trader.config import BUILTIN_PREFIX
from ai_trader.costs import FREE, Costs
from ai_trader.ledger import CASH
from ai_trader.market.universe import NASDAQ_100

CallTool = Callable[[str, dict[str, Any]], Awaitable[Any]]
Strategy = Callable[..., Awaitable[int]]
Log = Callable[[dict[str, Any]], None]
WATCHLIST_SIZE = 12
DEFAULT_WATCHLIST = NASDAQ_100[:WATCHLIST_SIZE]
PICKS = 2


@dataclass(frozen=True)
class Move:
    symbol: str
    change: float  # previous day's close / open - 1


def rank(moves: list[Move]) -> list[Move]:
    """Strongest first; ties broken by symbol so the order never depends on dict order."""
    return sorted(moves, key=lambda m: (-m.change, m.symbol))


def plan_sells(
    moves: list[Move],
    positions: Mapping[str, float],
    locked: Mapping[str, float] | None = None,
    lot: int = 1,
) -> list[tuple[str, float]]:
    """Each fallen holding, all of it that may be sold today: less what ``locked`` holds
    back (bought today under T+1), and, when that is not the whole holding, in whole lots."""
    sells = []
    for m in moves:
        held = positions.get(m.symbol, 0)
        amount = held - (locked or {}).get(m.symbol, 0)
        if amount != held and lot > 1:
            amount -= amount % lot
        if m.change < 0 and amount > 0:
            sells.append((m.symbol, _whole(amount)))
    return sells


def _whole(amount: float) -> float:
    # Whole shares as an integer (what the US tools take); a fraction of a coin as it is.
    return int(amount) if float(amount).is_integer() else amount


def buy_amount(
    costs: Costs, budget: float, open_price: float, lot: int = 1, decimals: int = 0
) -> float:
    """The most a buy at ``open_price`` can take within ``budget`` (fill and fee included):
    whole lots of ``lot`` shares, or an amount to ``decimals`` places when fractional."""
    if not decimals:
        shares = costs.affordable(budget, open_price)
        return shares - shares % lot
    step: int = 10**decimals
    fill = costs.fill_price("buy", open_price)
    amount = math.floor(budget / (fill * (1 + costs.commission_bps / 10_000)) * step) / step
    while amount > 0 and (gross := round(fill * amount, 4)) + costs.fee(gross) > budget:
        amount = round(amount - 1 / step, decimals)
    return amount


def plan_buys(moves: list[Move], positions: Mapping[str, float], picks: int = PICKS) -> list[str]:
    return [m.symbol for m in rank(moves) if m.change > 0 and not positions.get(m.symbol)][:picks]


async def trade_day(
    call: CallTool,
    log: Log,
    today: str,
    previous_day: str | None,
    positions: Mapping[str, float],
    watchlist: tuple[str, ...] = DEFAULT_WATCHLIST,
    costs: Costs = FREE,
    *,
    lot: int = 1,
    decimals: int = 0,
    locked: Mapping[str, float] | None = None,
) -> int:
    """Act for one day (or slot) through the tools; returns how many trades were placed.
    Buys are sized so that fill and fee fit the cash (``costs``: the run's, as the trade
    service charges them), in the market's lots or decimals; ``locked`` is what may not be
    sold today (T+1: bought in the day's earlier slots)."""

    def record(name: str, arguments: dict[str, Any], outcome: Any) -> Any:
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, Exception):
                raise outcome  # a cancellation: nothing was refused
            log({"role": "tool", "name": name, "arguments": arguments, "error": str(outcome)})
            raise outcome
        content = json.dumps(outcome, default=str)
        log({"role": "tool", "name": name, "arguments": arguments, "content": content})
        return outcome

    async def tool(name: str, arguments: dict[str, Any]) -> Any:
        try:
            result = await call(name, arguments)
        except Exception as exc:
            return record(name, arguments, exc)
        return record(name, arguments, result)

    if previous_day is None:
        log({"role": "assistant", "content": "No previous day to learn from; holding."})
        return 0
    lookups = [{"symbol": symbol, "date": previous_day} for symbol in watchlist]
    answers = await asyncio.gather(
        *(call("get_price_local", arguments) for arguments in lookups), return_exceptions=True
    )
    moves = []
    # In watchlist order, up to the first failure: the log a one-by-one loop would leave.
    for arguments, answer in zip(lookups, answers, strict=True):
        bar = record("get_price_local", arguments, answer)["ohlcv"]
        moves.append(Move(arguments["symbol"], bar["close"] / bar["open"] - 1))

    held = dict(positions)
    trades = 0
    for symbol, amount in plan_sells(moves, held, locked, lot):
        held = (await tool("sell", {"symbol": symbol, "amount": amount}))["positions"]
        trades += 1

    picks = plan_buys(moves, held)
    for index, symbol in enumerate(picks):
        price = (await tool("get_price_local", {"symbol": symbol, "date": today}))["ohlcv"]["open"]
        budget = float(held.get(CASH, 0.0)) / (len(picks) - index)
        amount = buy_amount(costs, budget, price, lot, decimals)
        if amount <= 0:
            continue
        fill = costs.fill_price("buy", price)
        cost = await tool("multiply", {"a": fill, "b": amount})
        if cost + costs.fee(round(cost, 4)) > float(held.get(CASH, 0.0)):
            continue  # rounding left less cash than the even split assumed
        held = (await tool("buy", {"symbol": symbol, "amount": amount}))["positions"]
        trades += 1
    summary = f"Done for {today}: {trades} trade(s). <FINISH_SIGNAL>"
    log({"role": "assistant", "content": summary})
    return trades


# The built-in strategies, by the name after "builtin/" in a model entry's basemodel.
STRATEGIES: dict[str, Strategy] = {"momentum": trade_day}


def strategy(basemodel: str) -> Strategy:
    """The strategy a ``builtin/NAME`` basemodel names (check it first with ``unknown``)."""
    return STRATEGIES[basemodel.removeprefix(BUILTIN_PREFIX)]


def unknown(basemodels: list[str]) -> list[str]:
    """The ``builtin/...`` names among ``basemodels`` that name no strategy."""
    return [
        name
        for name in basemodels
        if name.startswith(BUILTIN_PREFIX) and name.removeprefix(BUILTIN_PREFIX) not in STRATEGIES
    ]
