"""The trade service: buy and sell whole shares at the day's open, long only, no fees."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer

from ai_trader.errors import UserError
from ai_trader.ledger import CASH, Ledger, TradeRejected, whole_shares
from ai_trader.market.universe import NASDAQ_100
from ai_trader.services.common import PriceSource, current_state, new_server

TRADABLE = frozenset(NASDAQ_100)


def build(merged_path: Path, runtime_path: Path) -> MCPServer:
    server = new_server("trade", "Buy and sell NASDAQ-100 stocks at today's open price.")
    source = PriceSource(merged_path)
    # One trade at a time: each reads the book, checks the rules and stages the result.
    lock = threading.Lock()

    def execute(action: str, symbol: str, amount: object) -> dict[str, Any]:
        symbol = str(symbol).strip().upper()
        try:
            if symbol not in TRADABLE:
                raise TradeRejected(f"unknown symbol {symbol!r}: only NASDAQ-100 stocks trade")
            shares = whole_shares(amount)
            state = current_state(runtime_path)
            price = source.book().open(symbol, state.today_date)
            if price is None:
                raise TradeRejected(f"no price for {symbol} on {state.today_date}; cannot trade")
            with lock:
                row = Ledger(state.signature_dir).record_trade(
                    state.today_date, action, symbol, shares, price
                )
        except (TradeRejected, UserError) as exc:
            return {"error": str(exc), "action": action, "symbol": symbol, "amount": amount}
        held = {k: v for k, v in row["positions"].items() if v and k != CASH}
        return {
            "date": row["date"],
            "action": action,
            "symbol": symbol,
            "amount": shares,
            "price": price,
            "positions": {**held, CASH: row["positions"][CASH]},
        }

    @server.tool()
    def buy(symbol: str, amount: int | float) -> dict[str, Any]:
        """Buy `amount` whole shares of `symbol` at today's open. Returns the new positions."""
        return execute("buy", symbol, amount)

    @server.tool()
    def sell(symbol: str, amount: int | float) -> dict[str, Any]:
        """Sell `amount` whole shares of `symbol` at today's open. Returns the new positions."""
        return execute("sell", symbol, amount)

    return server
