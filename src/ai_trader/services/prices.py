"""The prices service: local daily prices, with no look-ahead past the simulated today."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer

from ai_trader.errors import UserError
from ai_trader.services.common import PriceSource, current_state, new_server


def price_answer(book: Any, symbol: str, day: str, today: str) -> dict[str, Any]:
    """The reply for one lookup: full OHLCV for a past day, only the open for today."""
    symbol = symbol.strip().upper()
    try:
        date.fromisoformat(day)
    except ValueError:
        return {"error": f"date must be YYYY-MM-DD, got {day!r}", "symbol": symbol}
    if day > today:
        return {
            "error": f"{day} is after today ({today}): future prices are not available",
            "symbol": symbol,
            "date": day,
        }
    if symbol not in book.symbols:
        return {"error": f"unknown symbol {symbol!r}", "symbol": symbol, "date": day}
    bar = book.bar(symbol, day)
    if bar is None:
        return {
            "error": f"no price for {symbol} on {day} (not a trading day?)",
            "symbol": symbol,
            "date": day,
        }
    if day == today:
        return {
            "symbol": symbol,
            "date": day,
            "ohlcv": {"open": bar["open"]},
            "note": "only the open is known today",
        }
    return {"symbol": symbol, "date": day, "ohlcv": bar}


def build(merged_path: Path, runtime_path: Path) -> MCPServer:
    server = new_server("prices", "Daily prices of NASDAQ-100 stocks and QQQ from local data.")
    source = PriceSource(merged_path)

    @server.tool()
    def get_price_local(symbol: str, date: str) -> dict[str, Any]:
        """Daily open, high, low, close and volume of `symbol` on `date` (YYYY-MM-DD).

        Past days give all five; today gives only the open; future days are refused.
        """
        try:
            state = current_state(runtime_path)
            return price_answer(source.book(), symbol, date, state.today_date)
        except UserError as exc:
            return {"error": str(exc), "symbol": symbol, "date": date}

    return server
