"""The trade service: buy and sell whole shares at the day's open, long only, no fees."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from mcp.server.mcpserver import Context
from pydantic import Field
from typing_extensions import TypedDict

from ai_trader.errors import UserError, describe
from ai_trader.ledger import CASH, Ledger, TradeRejected
from ai_trader.market.universe import NASDAQ_100
from ai_trader.services.common import PriceSource, Service, Symbol, ToolError, request_context

TRADABLE = frozenset(NASDAQ_100)
# More shares than any portfolio here could pay for; the bound keeps huge integers out.
MAX_SHARES = 1_000_000_000
Shares = Annotated[
    int, Field(strict=True, gt=0, le=MAX_SHARES, description="Whole number of shares, 1 or more")
]


class TradeAnswer(TypedDict):
    date: str
    action: Literal["buy", "sell"]
    symbol: str
    amount: int
    price: float
    positions: dict[str, float]  # non-zero holdings and CASH after the trade


def build(merged_path: Path) -> Service:
    server = Service("trade", "Buy and sell NASDAQ-100 stocks at today's open price.")
    source = PriceSource(merged_path)

    async def execute(
        action: Literal["buy", "sell"], symbol: str, shares: int, ctx: Context
    ) -> TradeAnswer:
        run = request_context(ctx)
        if symbol not in TRADABLE:
            raise ToolError(f"unknown symbol {symbol!r}: only NASDAQ-100 stocks trade")
        ledger = Ledger(run.signature_dir)
        if not ledger.position_file.is_file():
            # The agent opens the book before it trades; a context naming no book is wrong.
            raise ToolError(
                f"no book for signature {run.signature!r} under {run.log_path} "
                "(ai-trader run creates it before trading)"
            )
        price = (await source.current()).open(symbol, run.today)
        if price is None:
            raise ToolError(f"no price for {symbol} on {run.today}; cannot trade")
        # One trade at a time, with no await from reading the book to staging the result:
        # on the event loop nothing else runs in between. The ledger's file work (a stat,
        # a tail read, one appended line) is far shorter than a hand-off to a thread.
        try:
            row = ledger.record_trade(run.today, action, symbol, shares, price)
        except TradeRejected as exc:
            raise ToolError(str(exc)) from None
        except (UserError, OSError) as exc:
            raise ToolError(f"cannot record the trade: {describe(exc)}") from None
        held = {k: v for k, v in row["positions"].items() if v and k != CASH}
        return {
            "date": row["date"],
            "action": action,
            "symbol": symbol,
            "amount": shares,
            "price": price,
            "positions": {**held, CASH: row["positions"][CASH]},
        }

    @server.tool_from
    async def buy(symbol: Symbol, amount: Shares, ctx: Context) -> TradeAnswer:
        """Buy `amount` whole shares of `symbol` at today's open. Returns the new positions."""
        return await execute("buy", symbol, amount, ctx)

    @server.tool_from
    async def sell(symbol: Symbol, amount: Shares, ctx: Context) -> TradeAnswer:
        """Sell `amount` whole shares of `symbol` at today's open. Returns the new positions."""
        return await execute("sell", symbol, amount, ctx)

    return server
