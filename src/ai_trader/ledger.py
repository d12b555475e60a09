"""Positions: the agent's book, in the original AI-Trader ``position.jsonl`` format.

A day is the unit of commitment (in an hourly market a slot is: what is said of a day
here is said of a slot, and a row is dated with the slot, ``YYYY-MM-DD HH:MM:SS``). Trades
made during a day are staged in ``position/pending.jsonl`` (the day's rows, in the book's
own format, one appended per trade) and only reach ``position.jsonl`` when the day ends,
in one atomic rewrite. So a stop or crash mid-day leaves the file as it was at
the end of the previous day; the next run discards the stale stage and redoes
the day, and no trade is ever written twice.

The rules a book keeps (the strict read refuses a book that breaks one, naming the row;
the dashboard's lenient read skips and reports the row):

* every row has ``CASH``; no holding and no cash is negative (long only, no credit);
* the dates never go back: each row is dated on or after the one before it;
* a trade is for a day after the last committed day, and never for a day before the one
  already staged (``record_trade``): a day that is done stays done;
* a trade fills at the open, moved and charged by the run's costs (``costs``); a book
  written with costs records each fill's ``price`` and ``fee`` in ``this_action``;
* the market's trading rules (``TradeRules``, from the market the run trades): a buy is a
  whole number of lots, and so is a sell unless it sells the whole holding; under T+1 what
  was bought on a day (in any of its hourly slots) cannot be sold that day; an amount is
  whole, or has at most the market's decimal places (and holdings are kept rounded to them).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NotRequired

from pydantic import Field, StrictFloat, StrictInt, StrictStr, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from ai_trader.context import MOMENT_PATTERN
from ai_trader.costs import FREE, Costs
from ai_trader.errors import UserError, first_problem
from ai_trader.fsutil import atomic_write_jsonl, jsonl_line
from ai_trader.jsonl import BadLine, Lenient, loads
from ai_trader.jsonl import read_lenient as read_lenient_lines
from ai_trader.jsonl import read_strict as read_strict_lines
from ai_trader.layout import BookPaths

log = logging.getLogger(__name__)

CASH = "CASH"
NO_TRADE = {"action": "no_trade", "symbol": "", "amount": 0}
_TAIL_BYTES = 64 * 1024  # several whole rows (one is about 2.5 KB with 101 symbols)
_DATE_IN_TEXT = re.compile(r'"date"\s*:\s*"(\d{4}-\d{2}-\d{2}(?: \d{2}:\d{2}:\d{2})?)"')


class TradeRejected(Exception):
    """A trade the rules do not allow; the message is meant for the model to read."""


# --- pure rules ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TradeRules:
    """A market's trading rules, as the ledger applies them (``market.base.Market`` states
    them): ``lot`` shares a lot, ``settlement_days`` (1: T+1), ``decimals`` (0: whole)."""

    lot: int = 1
    settlement_days: int = 0
    decimals: int = 0
    unit: str = "shares"


WHOLE_SHARES = TradeRules()


def initial_row(init_date: str, symbols: Iterable[str], cash: float) -> dict[str, Any]:
    positions: dict[str, float] = dict.fromkeys(symbols, 0)
    positions[CASH] = float(cash)
    return {"date": init_date, "id": 0, "positions": positions}


def whole_shares(amount: object) -> int:
    """The amount as a positive whole number of shares, or TradeRejected saying why not."""
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        raise TradeRejected(f"amount must be a positive whole number of shares, got {amount!r}")
    if isinstance(amount, float) and (not math.isfinite(amount) or not amount.is_integer()):
        raise TradeRejected(f"amount must be a whole number of shares, got {amount!r}")
    if amount <= 0:
        raise TradeRejected(f"amount must be positive, got {amount!r}")
    return int(amount)


@dataclass(frozen=True)
class Fill:
    """One trade as it filled: the positions after it, the price a share, and the fee."""

    positions: dict[str, float]
    price: float
    fee: float


def check_amount(
    rules: TradeRules, action: str, symbol: str, amount: float, held: float, bought_today: float
) -> None:
    """TradeRejected, in one line, when ``rules`` forbid the amount (see the module)."""
    if rules.decimals and round(amount, rules.decimals) != amount:
        raise TradeRejected(
            f"amount {amount!r} has more than {rules.decimals} decimal places: "
            f"{symbol} trades in steps of {10**-rules.decimals:.{rules.decimals}f}"
        )
    if rules.lot > 1 and amount % rules.lot and not (action == "sell" and amount == held):
        what = "a buy" if action == "buy" else "a sell of less than the whole holding"
        raise TradeRejected(
            f"{symbol} trades in lots of {rules.lot} {rules.unit}: {what} must be a multiple "
            f"of {rules.lot}, got {amount}"
        )
    settling = action == "sell" and rules.settlement_days and bought_today > 0
    if settling and amount > held - bought_today:
        raise TradeRejected(
            f"T+{rules.settlement_days}: {_number(bought_today)} of the {_number(held)} {symbol} "
            f"held were bought today and cannot be sold before the next trading day; "
            f"at most {_number(held - bought_today)} can be sold today"
        )


def _number(value: float) -> str:
    return f"{value:g}" if not float(value).is_integer() else str(int(value))


def fill_trade(
    positions: Mapping[str, float],
    action: str,
    symbol: str,
    amount: float,
    open_price: float,
    costs: Costs = FREE,
    rules: TradeRules = WHOLE_SHARES,
    bought_today: float = 0,
) -> Fill:
    """One trade at the day's open under ``costs`` (``costs`` says how a fill and its fee
    are priced) and the market's ``rules``: long only, cash never below 0.
    ``bought_today`` is how much of ``symbol`` the day's earlier trades bought (T+1)."""
    after = dict(positions)
    held: float = int(after.get(symbol, 0)) if not rules.decimals else after.get(symbol, 0)
    cash = float(after.get(CASH, 0.0))
    if action not in ("buy", "sell"):
        raise TradeRejected(f"unknown action {action!r}")
    if rules != WHOLE_SHARES:
        check_amount(rules, action, symbol, amount, held, bought_today)
    price = costs.fill_price(action, open_price)
    gross = round(price * amount, 4)
    fee = costs.fee(gross)
    if action == "buy":
        if gross + fee > cash + 1e-9:
            raise TradeRejected(
                f"insufficient cash: buying {amount} {symbol} {_at(price, open_price, costs)} "
                f"costs {_with_fee(gross, fee, costs)}, cash is {cash:.2f}"
            )
        after[symbol] = _held(held + amount, rules)
        after[CASH] = round(cash - gross - fee, 4)
    else:
        if amount > held:
            raise TradeRejected(f"insufficient shares: selling {amount} {symbol}, holding {held}")
        if fee > cash + gross + 1e-9:
            raise TradeRejected(
                f"insufficient cash for the fee: selling {amount} {symbol} "
                f"{_at(price, open_price, costs)} yields {gross:.2f} and the fee is {fee:.2f} "
                f"({costs.describe()}), cash is {cash:.2f}"
            )
        after[symbol] = _held(held - amount, rules)
        after[CASH] = round(cash + gross - fee, 4)
    return Fill(after, price, fee)


def _held(value: float, rules: TradeRules) -> float:
    # Fractional holdings are kept to the market's decimals, so 0.1 + 0.2 stays 0.3.
    return round(value, rules.decimals) if rules.decimals else value


def _at(price: float, open_price: float, costs: Costs) -> str:
    if price == open_price:
        return f"at {price}"
    return f"at {price} (the open {open_price} with {costs.slippage_bps:g} bp slippage)"


def _with_fee(gross: float, fee: float, costs: Costs) -> str:
    if costs.free:
        return f"{gross:.2f}"
    return f"{gross:.2f} plus a fee of {fee:.2f} ({costs.describe()}) = {gross + fee:.2f}"


def apply_trade(
    positions: Mapping[str, float], action: str, symbol: str, amount: int, price: float
) -> dict[str, float]:
    """The positions after one fill at ``price`` with no costs."""
    return fill_trade(positions, action, symbol, amount, price).positions


# --- the book on disk ---------------------------------------------------------------------

# Far beyond any real book (a quadrillion shares or dollars): a larger amount is damage,
# not a position, and valuing it would lose the cents or overflow to infinity.
MAX_AMOUNT = 1e15
# A JSON number as the book writes it (shares are whole, cash has cents); never a boolean
# or a string. The bounds sit on each branch so pydantic's core checks them: on the union
# they would cost a Python call per number.
_BOUNDS = {"ge": -MAX_AMOUNT, "le": MAX_AMOUNT}
Amount = Annotated[
    Annotated[StrictInt, Field(**_BOUNDS)]
    | Annotated[StrictFloat, Field(allow_inf_nan=False, **_BOUNDS)],
    Field(union_mode="left_to_right"),
]


class Action(TypedDict):
    action: StrictStr
    symbol: NotRequired[StrictStr]
    amount: NotRequired[Amount]
    price: NotRequired[Amount]  # the fill price a share, in a book written with costs
    fee: NotRequired[Amount]  # the commission paid, in a book written with costs


class PositionRow(TypedDict):
    """One line of ``position.jsonl``: the original AI-Trader shape. The opening row has no
    ``this_action``; every later row records one trade (or ``no_trade``) and the positions
    after it."""

    date: Annotated[str, Field(strict=True, pattern=MOMENT_PATTERN)]
    id: StrictInt
    positions: dict[str, Amount]
    this_action: NotRequired[Action]


_ROW = TypeAdapter(PositionRow)


def _why(error: ValidationError) -> str:
    """The first problem of a row the model refused, in the book's own words."""
    loc, _, _ = first_problem(error)
    if not loc:
        return "expected a JSON object"
    if loc[0] == "positions" and len(loc) > 1:
        symbol = loc[1]
        # A number is tried as an int, then as a float: say what is wrong with the float.
        found = error.errors(include_url=False)
        kinds = {p["type"] for p in found if tuple(p["loc"][:2]) == loc[:2]}
        if "finite_number" in kinds:
            return f"positions[{symbol!r}] is not a finite number"
        if kinds & {"less_than_equal", "greater_than_equal"}:
            return f"positions[{symbol!r}] is beyond {MAX_AMOUNT:g} and cannot be a holding"
        return f"positions[{symbol!r}] is not a number"
    if loc[0] == "this_action":
        return "invalid 'this_action'"
    return f"missing or invalid {loc[0]!r}"


def check_row(row: object) -> dict[str, Any]:
    """``row`` when it is a usable position row; BadLine says why not. The row is returned
    as it was read (ints stay ints), because the book is written back from it."""
    try:
        _ROW.validate_python(row)
    except ValidationError as error:
        raise BadLine(_why(error)) from None
    assert isinstance(row, dict)
    return _within_rules(row)


def _within_rules(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` when its positions keep the book's rules; BadLine naming the first broken."""
    positions = row["positions"]
    if CASH not in positions:
        raise BadLine(f"positions has no {CASH!r}")
    for name, amount in positions.items():
        if amount < 0:
            what = "cash" if name == CASH else "shares"
            raise BadLine(f"positions[{name!r}] is {amount}: negative {what} break the book")
    return row


def _check_row(row: object, where: str) -> dict[str, Any]:
    try:
        return check_row(row)
    except BadLine as exc:
        raise UserError(f"{where}: {exc}") from None


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number a book can hold")


def parse_row(line: str) -> Any:
    """One line of a book as JSON; NaN and Infinity (which json accepts) are refused, and
    so is nesting too deep to parse (BadLine)."""
    return loads(line, parse_constant=_reject_constant)


def read_line(line: str) -> dict[str, Any]:
    """One line of ``position.jsonl`` as a usable row, or BadLine saying why not.

    The rows come from pydantic's own JSON parser, which is several times faster on a long
    book; a line it refuses, or one naming NaN or Infinity (which it would read as numbers),
    is read again the strict way, for the same verdict and message as ``Ledger.rows``.
    """
    if "NaN" not in line and "Infinity" not in line:
        try:
            row: dict[str, Any] = dict(_ROW.validate_json(line))
        except ValidationError:
            pass
        else:
            return _within_rules(row)
    try:
        return check_row(parse_row(line))
    except json.JSONDecodeError:
        raise BadLine("not valid JSON") from None


def last_line(path: Path) -> bytes | None:
    """The last non-blank line of ``path`` (with its line end, if it has one), read from the
    file's tail: b"" when there is none, None when the tail holds no whole line."""
    with path.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(max(0, size - _TAIL_BYTES))
        tail = handle.read()
    lines = [line for line in tail.splitlines(keepends=True) if line.strip()]
    if not lines:
        return b""
    # The chunk's first line may be cut by the seek; only trust a line that is whole.
    return lines[-1] if size <= _TAIL_BYTES or len(lines) > 1 else None


def back_in_time(day: str, before: str) -> str:
    return f"dated {day}, before the row above it ({before}); the days of a book never go back"


def ordered_reader(after: str | None = None) -> Callable[[str], dict[str, Any]]:
    """``read_line`` for one pass over a book's lines in order: it also refuses (BadLine) a
    row dated before the last row it accepted (or before ``after``, the last row already
    read)."""
    last = after

    def read(line: str) -> dict[str, Any]:
        nonlocal last
        row = read_line(line)
        if last is not None and row["date"] < last:
            raise BadLine(back_in_time(row["date"], last))
        last = row["date"]
        return row

    return read


def read_strict(path: Path) -> list[dict[str, Any]]:
    """A book for reading only (the report's): every row, in order, or UserError naming the
    first line that breaks the rules. Unlike ``Ledger.rows`` it never repairs, so it never
    writes, and its rows come from pydantic's parser (faster; keys in the model's order)."""
    return read_strict_lines(path, ordered_reader())


def read_lenient(path: Path) -> Lenient[dict[str, Any]]:
    """The lenient read (the dashboard's): every usable row of a ``position.jsonl``, each
    bad line skipped and reported. The file is never changed (no repair here)."""
    return read_lenient_lines(path, ordered_reader())


class Ledger:
    """The position book of one model signature under ``log_path/<signature>/``."""

    def __init__(self, signature_dir: Path) -> None:
        self.root = signature_dir
        self.paths = BookPaths(signature_dir)
        self.position_file = self.paths.position_file
        self.pending_file = self.paths.pending_file

    def log_file(self, day: str) -> Path:
        return self.paths.log_file(day)

    # reading

    def rows(self) -> list[dict[str, Any]]:
        """Committed rows, repairing a truncated last line (see ``_repair``)."""
        try:
            text = self.position_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        lines = text.splitlines()
        rows: list[dict[str, Any]] = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{self.position_file}:{number}"
            try:
                row = parse_row(line)
            except json.JSONDecodeError:
                if number == len(lines):
                    return self._repair(rows, line)
                raise UserError(f"{where}: not valid JSON; fix or remove that line") from None
            except BadLine as exc:
                raise UserError(f"{where}: {exc}; fix or remove that line") from None
            checked = _check_row(row, where)
            if rows and checked["date"] < rows[-1]["date"]:
                raise UserError(f"{where}: {back_in_time(checked['date'], rows[-1]['date'])}")
            rows.append(checked)
        return rows

    def _repair(self, rows: list[dict[str, Any]], broken: str) -> list[dict[str, Any]]:
        # A half-written last line means its day is not trustworthy: drop that whole
        # day (or, when the date cannot be read, the last intact day) so the next
        # run redoes it from the previous day's end.
        found = _DATE_IN_TEXT.search(broken)
        day = found.group(1) if found else (rows[-1]["date"] if rows else None)
        kept = [row for row in rows if row["date"] != day]
        log.warning(
            "%s: the last line is truncated; dropping %s so that day is redone",
            self.position_file,
            f"day {day}" if day else "it",
        )
        atomic_write_jsonl(self.position_file, kept)
        return kept

    def last_date(self) -> str | None:
        rows = self.rows()
        return rows[-1]["date"] if rows else None

    def last_row(self) -> dict[str, Any] | None:
        """The newest committed row, read from the file's tail: every trade needs it, and
        parsing a long history each time would make trades slower day by day."""
        try:
            line = last_line(self.position_file)
        except FileNotFoundError:
            return None
        if line:
            try:
                return _check_row(parse_row(line.decode()), f"{self.position_file}:last line")
            except (ValueError, UserError):
                pass  # truncated or odd: let rows() repair or report it
        rows = self.rows()
        return rows[-1] if rows else None

    def committed(self) -> tuple[dict[str, float], int]:
        row = self.last_row()
        if row is None:
            raise UserError(f"{self.position_file} does not exist; the run was not initialised")
        return dict(row["positions"]), int(row["id"])

    def same_day_rows(self, slot: str) -> list[dict[str, Any]]:
        """The committed trade rows of ``slot``'s calendar day, for an hourly slot (none for
        a day: a daily book commits a day once, after its trades)."""
        if len(slot) <= len("YYYY-MM-DD"):
            return []
        day = slot[:10]
        return [row for row in self.rows() if row["date"][:10] == day and "this_action" in row]

    def pending(self, day: str) -> list[dict[str, Any]]:
        """Trades staged for ``day``, in order; a stage left from another day is ignored."""
        try:
            data = self.pending_file.read_bytes()
        except FileNotFoundError:
            return []
        if data.strip() and not data.endswith(b"\n"):
            # Each trade appends one whole line; a cut one was never confirmed.
            raise self._unreadable("its last line is cut")
        rows = [
            self._staged_row(line, f"line {number}")
            for number, line in enumerate(data.splitlines(), start=1)
            if line.strip()
        ]
        if not rows or rows[0]["date"] != day:
            return []
        if any(row["date"] != day for row in rows):
            raise self._unreadable("it holds trades of more than one day")
        return rows

    def last_staged(self, day: str) -> dict[str, Any] | None:
        """The newest trade staged for ``day``, read from the stage's tail: a busy day's
        stage grows with every trade, and each trade needs only its last row."""
        try:
            line = last_line(self.pending_file)
        except FileNotFoundError:
            return None
        if line is None or (line and not line.endswith(b"\n")):
            # No whole line in the tail, or a cut one: the whole stage, read strictly,
            # says what is wrong.
            staged = self.pending(day)
            return staged[-1] if staged else None
        if not line:
            return None
        row = self._staged_row(line, "last line")
        return row if row["date"] == day else None

    def staged_day(self) -> str | None:
        """The day the stage is for, read leniently (the dashboard's): None when there is
        no stage or its first line names no day."""
        try:
            with self.pending_file.open("rb") as handle:
                row = parse_row(handle.readline(_TAIL_BYTES).decode())
        except (OSError, ValueError):
            return None
        day = row.get("date") if isinstance(row, dict) else None
        return day if isinstance(day, str) else None

    def _staged_row(self, line: bytes, where: str) -> dict[str, Any]:
        try:
            return check_row(parse_row(line.decode()))
        except ValueError as exc:
            # Written a whole line at a time, so never half a row: an unreadable stage was
            # changed by someone else. Trading on as if it were empty would lose trades.
            raise self._unreadable(f"{where}: {exc}") from None

    def _unreadable(self, why: str) -> UserError:
        return UserError(f"{self.pending_file}: unreadable ({why}); the day is redone")

    def positions_for(self, day: str) -> tuple[dict[str, float], int]:
        """Positions and last id as they stand during ``day``: committed plus staged trades."""
        last = self.last_staged(day)
        if last is None:
            return self.committed()
        return dict(last["positions"]), int(last["id"])

    # writing

    def ensure_initialized(self, init_date: str, symbols: Iterable[str], cash: float) -> bool:
        """Write the opening row when the book is new; True when it did."""
        if self.rows():
            return False
        atomic_write_jsonl(self.position_file, [initial_row(init_date, symbols, cash)])
        return True

    def record_trade(
        self,
        day: str,
        action: str,
        symbol: str,
        amount: float,
        price: float,
        costs: Costs = FREE,
        rules: TradeRules = WHOLE_SHARES,
    ) -> dict[str, Any]:
        """Stage one trade for ``day`` at the open ``price`` under ``costs`` and the market's
        ``rules``; raises TradeRejected when the rules forbid it, and UserError when the day
        is not open to trading (done already, or before the stage)."""
        last = self.last_staged(day)
        if last is None:
            # The day's first trade (a stage of ``day`` would hold only ``day``): a stage of
            # a later day refuses it; one of an earlier day (begin_day drops it, but a day
            # that went by without a run leaves it) must not mix with this one.
            staged = self.staged_day()
            if staged is not None and staged > day:
                raise UserError(
                    f"{day} is before the day already staged ({staged}); "
                    "a trade is never dated back"
                )
            done = self.last_row()
            if done is not None and done["date"] >= day:
                raise UserError(
                    f"{day} is done: the book is committed up to {done['date']}; "
                    "a trade can only be for a later day"
                )
            self.discard_pending()
            positions, last_id = self.committed()
        else:
            positions, last_id = dict(last["positions"]), int(last["id"])
        bought = 0.0
        if rules.settlement_days and action == "sell":
            # T+1: what the day's earlier trades bought of the symbol is not sellable yet:
            # those staged for ``day``, and for an hourly slot the day's committed slots.
            today = [*self.same_day_rows(day), *(self.pending(day) if last is not None else [])]
            bought = sum(
                row["this_action"]["amount"]
                for row in today
                if row["this_action"]["action"] == "buy"
                and row["this_action"].get("symbol") == symbol
            )
        filled = fill_trade(positions, action, symbol, amount, price, costs, rules, bought)
        this_action: dict[str, Any] = {"action": action, "symbol": symbol, "amount": amount}
        if not costs.free:
            # A free run's rows stay as they always were (fill = open, no fee).
            this_action.update(price=filled.price, fee=filled.fee)
        row = {
            "date": day,
            "id": last_id + 1,
            "this_action": this_action,
            "positions": filled.positions,
        }
        self._append_stage(jsonl_line(row).encode())
        return row

    def _append_stage(self, line: bytes) -> None:
        # One write of one whole line at the end: the day's earlier trades are not
        # rewritten, and no reader sees part of a line. Not flushed to the disk: no restart
        # reads a stage (every day begins by dropping it).
        fd = os.open(self.pending_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            written = os.write(fd, line)
        finally:
            os.close(fd)
        if written != len(line):
            raise OSError(f"{self.pending_file}: only {written} of {len(line)} bytes written")

    def begin_day(self, day: str) -> None:
        """Start ``day`` afresh: drop any stage and log left by an interrupted attempt."""
        self.discard_pending()
        self.log_file(day).unlink(missing_ok=True)

    def commit_day(self, day: str) -> list[dict[str, Any]]:
        """Move the day's staged trades (or one no_trade row) into position.jsonl, atomically."""
        rows = self.rows()
        if rows and rows[-1]["date"] >= day:
            # Committed before a crash removed the stage: nothing more to do.
            self.discard_pending()
            return []
        added = self.pending(day)
        if not added:
            positions, last_id = self.committed()
            added = [
                {
                    "date": day,
                    "id": last_id + 1,
                    "this_action": dict(NO_TRADE),
                    "positions": positions,
                }
            ]
        atomic_write_jsonl(self.position_file, [*rows, *added])
        self.discard_pending()
        return added

    def discard_pending(self) -> None:
        self.pending_file.unlink(missing_ok=True)

    def append_log(self, day: str, entry: Mapping[str, Any]) -> None:
        # The log is a record, not state: a plain append is enough, and begin_day
        # removes a partial log before a day is redone.
        path = self.log_file(day)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
