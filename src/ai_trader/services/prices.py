"""The prices service: local prices, with no look-ahead past the simulated today.

It serves one market (``market.base.Market``; the US by default): its symbols as the
market writes them, and a refusal for a call whose run context names another market.

The rules of a lookup: a bar before today gives all it has; today's gives its open only
(the run trades at it; its close is the future); a later one is refused. In an hourly
market "today" is the call's slot and bars are asked for by slot: a slot sees its own
open and the whole bars of the slots before it, that day's included, and never a later
slot's bar.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NotRequired

from mcp.server.mcpserver import Context
from typing_extensions import TypedDict

from ai_trader.context import ContextError, market_from_meta, valid_day, valid_slot
from ai_trader.market.base import Market
from ai_trader.market.pricebook import PriceBook
from ai_trader.market.us import US_DAILY
from ai_trader.services.common import (
    Day,
    PriceSource,
    Service,
    Slot,
    Symbol,
    ToolError,
    request_today,
)
from ai_trader.services.trade import symbol_type


class Bar(TypedDict, total=False):
    open: float
    high: float
    low: float
    close: float
    volume: float


class PriceAnswer(TypedDict):
    symbol: str
    date: str
    ohlcv: Bar
    note: NotRequired[str]


def price_answer(book: PriceBook, symbol: str, day: str, today: str) -> PriceAnswer:
    """The reply for one lookup: full OHLCV for a past day, only the open for today;
    a refusal (ToolError) for a future day, an unknown symbol or a day with no bar. An hourly
    book's bars are asked for by slot."""
    if book.hourly:
        if not valid_slot(day):
            raise ToolError(f"date {day!r} is not a real hourly slot (YYYY-MM-DD HH:MM:SS)")
    elif not valid_day(day):
        raise ToolError(f"date {day!r} is not a real calendar day (YYYY-MM-DD)")
    if day > today:
        raise ToolError(f"{day} is after today ({today}): future prices are not available")
    if symbol not in book.symbols:
        raise ToolError(f"unknown symbol {symbol!r}: no prices for it in the data")
    bar = book.bar(symbol, day)
    if bar is None:
        raise ToolError(f"no price for {symbol} on {day} (not a trading day?)")
    if day == today:
        return {
            "symbol": symbol,
            "date": day,
            "ohlcv": {"open": bar["open"]},
            "note": "only the open is known today",
        }
    known: Any = {key: value for key, value in bar.items() if key in Bar.__annotations__}
    return {"symbol": symbol, "date": day, "ohlcv": known}


def build(merged_path: Path, market: Market = US_DAILY) -> Service:
    server = Service("prices", market.words.prices_service)
    source = PriceSource(merged_path)

    async def get_price_local(symbol: Symbol, date: Day, ctx: Context) -> PriceAnswer:
        """Daily open, high, low, close and volume of `symbol` on `date` (YYYY-MM-DD).

        Past days give all five; today gives only the open; future days are refused.
        """
        today = request_today(ctx)
        _same_market(ctx, market)
        return price_answer(await source.current(), symbol, date, today)

    get_price_local.__annotations__ = {
        "symbol": symbol_type(market),
        "date": Slot if market.slots else Day,
        "ctx": Context,
        "return": PriceAnswer,
    }
    if market.slots:
        get_price_local.__doc__ = (
            "Hourly open, high, low, close and volume of `symbol` in the slot `date` "
            "(YYYY-MM-DD HH:MM:SS).\n\nEarlier slots give all five; the current slot gives "
            "only the open; later slots are refused."
        )
    server.tool_from(get_price_local)
    return server


def _same_market(ctx: Context, market: Market) -> None:
    try:
        wanted = market_from_meta(ctx.request_context.meta)
    except ContextError as exc:
        raise ToolError(str(exc)) from None
    if wanted != market.key:
        raise ToolError(
            f"this prices service serves the {market.key} market, the run trades {wanted}: "
            f"serve with --market {wanted}"
        )
