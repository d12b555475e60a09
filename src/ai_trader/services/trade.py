"""The trade service: buy and sell at the day's open, long only, under the run's trading
costs (slippage and commission, ``costs``; none unless the run sets them) and the rules of
the market it serves (``market.base.Market``: whole shares or fractional amounts, lots,
T+1; the ledger applies them, ``ledger.TradeRules``). It serves one market: a call whose
run context names another is refused.

Whose book a call may change (the rules; ``context`` says what a call carries):

* The book is ``DATA_DIR/<books>/<signature>``, every part from this service's own data
  folder and the call's plain names. Its folder, its position files and its lock must
  resolve inside the data folder: a symbolic link out of it is refused.
* The signature's lock must be held by a live process with the call's token: only the run
  that holds a signature trades for it.
* The day must come after the book's last committed day, and not before the day already
  staged (the ledger's rules, ``Ledger.record_trade``).

A refusal is a tool error of one line, and nothing is written.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Annotated, Literal, NotRequired

from mcp.server.mcpserver import Context
from pydantic import Field
from typing_extensions import TypedDict

from ai_trader.context import RunContext, books_folder
from ai_trader.errors import UserError, describe
from ai_trader.layout import BookPaths, merged_file
from ai_trader.ledger import CASH, Ledger, TradeRejected, TradeRules
from ai_trader.lock import check_token
from ai_trader.market.base import Market
from ai_trader.market.us import US_DAILY
from ai_trader.services.common import PriceSource, Service, Symbol, ToolError, request_context

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
    price: float  # the fill price a share: the open, moved by the run's slippage
    fee: NotRequired[float]  # the commission charged, when the run has costs
    positions: dict[str, int | float]  # non-zero holdings (whole shares) and CASH after it


class FractionalAnswer(TypedDict):
    """A trade's answer in a market of fractional amounts (coins)."""

    date: str
    action: Literal["buy", "sell"]
    symbol: str
    amount: float
    price: float
    fee: NotRequired[float]
    positions: dict[str, int | float]


def symbol_type(market: Market) -> object:
    """A symbol argument as ``market``'s tools accept it (the US one's schema is
    ``common.Symbol``'s)."""
    return Annotated[
        str,
        Field(strict=True, pattern=market.symbol_pattern, description=market.words.symbol),
    ]


def amount_type(market: Market) -> object:
    """The amount argument of ``market``'s buy and sell (the US one's schema is ``Shares``')."""
    if market.fractional:
        return Annotated[
            float,
            Field(
                strict=True,  # a number, never a string or a boolean
                gt=0,
                le=MAX_SHARES,
                allow_inf_nan=False,
                description=market.words.amount,
            ),
        ]
    return Annotated[int, Field(strict=True, gt=0, le=MAX_SHARES, description=market.words.amount)]


def trade_rules(market: Market) -> TradeRules:
    return TradeRules(market.lot_size, market.settlement_days, market.decimals, market.unit)


def _is_link(path: Path) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def book_of(root: Path, run: RunContext) -> Ledger:
    """The ledger a call may change, or a tool error saying why it may not (see above).
    ``root`` is the data folder as ``os.path.realpath`` gives it, resolved once."""
    folder = root.joinpath(*books_folder(run.books).parts, run.signature)
    ledger = Ledger(folder)
    paths = BookPaths(folder)
    # One resolution of the folders down to the position folder, and an lstat of each of
    # the book's files (none may be a link): a fraction of resolving every file's path.
    inside = Path(os.path.realpath(paths.position_dir)).is_relative_to(root)
    files = (paths.position_file, paths.pending_file, paths.lock_file)
    link = None if inside else paths.position_dir
    link = link or next((path for path in files if _is_link(path)), None)
    if link is not None:
        raise ToolError(
            f"the book of signature {run.signature!r} leads out of the data folder "
            f"({link.relative_to(root)} is a link elsewhere); nothing was traded"
        )
    if not ledger.position_file.is_file():
        # The agent opens the book before it trades; a context naming no book is wrong.
        raise ToolError(
            f"no book for signature {run.signature!r} in {run.books!r} under the data folder "
            "(ai-trader run creates it before trading)"
        )
    why = check_token(paths.lock_file, run.token)
    if why is not None:
        raise ToolError(f"signature {run.signature!r} is not this call's to trade: {why}")
    return ledger


def whole(value: float) -> int | float:
    """A holding as the book counts it: whole shares as an integer."""
    return int(value) if float(value).is_integer() else value


def build(data_dir: Path, market: Market = US_DAILY) -> Service:
    words = market.words
    server = Service("trade", words.trade_service)
    source = PriceSource(merged_file(data_dir))
    root = Path(os.path.realpath(data_dir))
    tradable = frozenset(market.symbols)
    rules = trade_rules(market)

    async def execute(
        action: Literal["buy", "sell"], symbol: str, shares: float, ctx: Context
    ) -> TradeAnswer:
        run = request_context(ctx)
        if run.market != market.key:
            raise ToolError(
                f"this trade service serves the {market.key} market, the run trades "
                f"{run.market}: serve with --market {run.market}"
            )
        if symbol not in tradable:
            raise ToolError(f"unknown symbol {symbol!r}: only {words.tradable} trade")
        try:
            ledger = book_of(root, run)
        except OSError as exc:  # a name too long for the file system, a folder unreadable
            raise ToolError(f"cannot open the book of {run.signature!r}: {exc.strerror}") from None
        price = (await source.current()).open(symbol, run.today)
        if price is None:
            raise ToolError(f"no price for {symbol} on {run.today}; cannot trade")
        # One trade at a time, with no await from reading the book to staging the result:
        # on the event loop nothing else runs in between. The ledger's file work (a stat,
        # a tail read, one appended line) is far shorter than a hand-off to a thread.
        try:
            row = ledger.record_trade(run.today, action, symbol, shares, price, run.costs, rules)
        except TradeRejected as exc:
            raise ToolError(str(exc)) from None
        except (UserError, OSError) as exc:
            raise ToolError(f"cannot record the trade: {describe(exc)}") from None
        held = {k: whole(v) for k, v in row["positions"].items() if v and k != CASH}
        answer: TradeAnswer = {
            "date": row["date"],
            "action": action,
            "symbol": symbol,
            "amount": shares,  # type: ignore[typeddict-item]  # a float in a fractional market
            "price": row["this_action"].get("price", price),
            "positions": {**held, CASH: row["positions"][CASH]},
        }
        if not run.costs.free:
            answer["fee"] = row["this_action"]["fee"]
        return answer

    async def buy(symbol: Symbol, amount: Shares, ctx: Context) -> TradeAnswer:
        return await execute("buy", symbol, amount, ctx)

    async def sell(symbol: Symbol, amount: Shares, ctx: Context) -> TradeAnswer:
        return await execute("sell", symbol, amount, ctx)

    # The market's own argument types and words (``Market.words``).
    for tool, doc in ((buy, words.buy), (sell, words.sell)):
        tool.__annotations__ = {
            "symbol": symbol_type(market),
            "amount": amount_type(market),
            "ctx": Context,
            "return": FractionalAnswer if market.fractional else TradeAnswer,
        }
        tool.__doc__ = doc
    server.tool_from(buy)
    server.tool_from(sell)
    return server
