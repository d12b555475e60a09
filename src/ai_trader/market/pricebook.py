"""``merged.jsonl``, the one price file: its row model, a strict and a lenient read, and
the answers the services, the agent and the dashboard ask of it.

The strict read (``PriceBook.load``) is for the agent and the services: any bad line is a
one-line error naming the file and the line. The lenient read (``PriceBook.load_lenient``)
is for the dashboard: a bad line is skipped and reported, the rest still loads. Both check
each line against the same row model, and everything is parsed into plain floats up front.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Final, NotRequired, Required, cast

from pydantic import AliasChoices, BeforeValidator, Field, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from ai_trader.errors import UserError, first_problem
from ai_trader.jsonl import BadLine, Lenient, Skipped, numbered, read_lenient

META_KEY: Final = "Meta Data"
SERIES_KEY: Final = "Time Series (Daily)"
# An hourly market's series (``market.base.SERIES_KEYS``): its bars are named by slot.
HOURLY_KEY: Final = "Time Series (60min)"
# The sample says so in its metadata note; real Alpha Vantage data never does.
SYNTHETIC_MARK = "SYNTHETIC"


def _not_a_bool(value: object) -> object:
    # pydantic's float takes true and false as 1 and 0; a price never is one.
    if isinstance(value, bool):
        raise ValueError("a boolean is not a price")
    return value


# A number as Alpha Vantage writes it (a string such as "270.1200") or a JSON number;
# never a boolean, NaN or infinity.
# (The finite check comes first, so pydantic's core runs it: after a Python validator it
# would be one more Python call per number.)
Price = Annotated[float, Field(allow_inf_nan=False), BeforeValidator(_not_a_bool)]
IsoDay = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")]
IsoSlot = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")]


def _field(*names: str) -> Any:
    return Field(validation_alias=AliasChoices(*names))


class Bar(TypedDict, total=False):
    """One day's bar as the book holds it; on the newest day only the open."""

    open: Required[float]
    high: float
    low: float
    close: float
    volume: float


# The row models are built at run time, so the two price checks below share one
# definition; what they produce is a PriceLine of Bars, the static types above and below.
_typed_dict: Any = TypedDict


def _bar_model(price: object) -> object:
    """The model a day's bar is read with: the merged names ("1. buy price") or the raw ones
    ("1. open") load into Bar's keys, each a ``price``."""
    return _typed_dict(
        "Bar",
        {
            "open": Required[Annotated[price, _field("1. buy price", "1. open")]],
            "high": Annotated[price, _field("2. high")],
            "low": Annotated[price, _field("3. low")],
            "close": Annotated[price, _field("4. sell price", "4. close")],
            "volume": Annotated[price, _field("5. volume")],
        },
        total=False,
    )


_Meta = TypedDict(
    "_Meta",
    {"2. Symbol": Annotated[str, Field(strict=True, min_length=1)], "6. Note": NotRequired[Any]},
)
# A line of merged.jsonl as the row model returns it.
PriceLine = TypedDict("PriceLine", {"Meta Data": _Meta, "Time Series (Daily)": dict[str, Bar]})


def _line_model(price: object, hourly: bool = False) -> TypeAdapter[PriceLine]:
    bar: Any = _bar_model(price)
    series = {HOURLY_KEY: dict[IsoSlot, bar]} if hourly else {SERIES_KEY: dict[IsoDay, bar]}
    model = _typed_dict("PriceLine", {"Meta Data": _Meta, **series})
    return cast(TypeAdapter[PriceLine], TypeAdapter(model))


_FAST = Annotated[float, Field(allow_inf_nan=False)]
_LINE = _line_model(Price)
# The same model without the boolean check, which is a Python call per number (millions on
# a long history): exact for a line in which no JSON true or false can occur.
_NO_BOOLEANS = _line_model(_FAST)
_HOURLY_LINE = _line_model(Price, hourly=True)
_HOURLY_NO_BOOLEANS = _line_model(_FAST, hourly=True)
# Field names in messages are the merged file's own.
_NAMES = {
    "open": "1. buy price",
    "high": "2. high",
    "low": "3. low",
    "close": "4. sell price",
    "volume": "5. volume",
}


def _why(text: str, error: ValidationError, series: str = SERIES_KEY) -> str:
    """The first problem of a line the row model refused, as one short phrase."""
    loc, kind, value = first_problem(error)
    if kind == "json_invalid":
        return f"not valid JSON ({error.errors(include_url=False)[0]['msg']})"
    if not loc:
        return "not a JSON object"
    if loc[0] == META_KEY:
        return 'no "Meta Data" / "2. Symbol"'
    doc = json.loads(text)  # valid JSON by now, and its symbol valid
    symbol = doc[META_KEY]["2. Symbol"]
    if len(loc) == 1:
        return f"{symbol}: no {series!r} object"
    day = loc[1]
    if len(loc) == 2:
        return f"{symbol} {day}: the bar is not an object"
    key = loc[2]
    if key == "[key]":
        shape = "YYYY-MM-DD HH:MM:SS slot" if series == HOURLY_KEY else "YYYY-MM-DD date"
        return f"{symbol}: {day!r} is not a {shape}"
    if kind == "missing":
        return f"{symbol} {day}: no open price"
    key = _NAMES.get(str(key), key)
    if kind == "finite_number":
        return f"{symbol} {day} {key!r} is not a finite number: {value!r}"
    return f"{symbol} {day} {key!r} is not a number: {value!r}"


def parse_line(text: str) -> PriceLine:
    """One line of ``merged.jsonl`` checked against the row model; BadLine says why not."""
    # A line holds an hourly series when it names one (an hourly market's file).
    hourly = HOURLY_KEY in text
    try:
        if "true" not in text and "false" not in text:
            return (_HOURLY_NO_BOOLEANS if hourly else _NO_BOOLEANS).validate_json(text)
        return (_HOURLY_LINE if hourly else _LINE).validate_json(text)
    except ValidationError as error:
        raise BadLine(_why(text, error, HOURLY_KEY if hourly else SERIES_KEY)) from None


class PriceBook:
    """Bars per symbol, daily or hourly (by slot); on the newest day (slot) of the data a
    symbol may have only its open."""

    def __init__(
        self,
        bars: dict[str, dict[str, dict[str, float]]],
        synthetic: bool = False,
        series_keys: frozenset[str] = frozenset(),
    ):
        self._bars = bars
        self._symbols = frozenset(bars)
        self._dates = sorted({day for series in bars.values() for day in series})
        self.synthetic = synthetic  # the offline sample, not market data
        # The series keys the lines held: one, or two in a file that mixes frequencies.
        self.series_keys = series_keys

    @property
    def hourly(self) -> bool:
        """Whether the bars are hourly slots (a file of hourly lines only)."""
        return self.series_keys == {HOURLY_KEY}

    @classmethod
    def from_lines(cls, lines: list[PriceLine]) -> PriceBook:
        bars: dict[str, dict[str, dict[str, float]]] = {}
        synthetic = False
        keys: set[str] = set()
        for line in lines:
            meta = line[META_KEY]
            key = HOURLY_KEY if HOURLY_KEY in line else SERIES_KEY
            keys.add(key)
            series = cast(dict[str, dict[str, float]], line[key])  # type: ignore[literal-required]
            bars.setdefault(meta["2. Symbol"], {}).update(series)
            note = meta.get("6. Note")
            synthetic = synthetic or (isinstance(note, str) and SYNTHETIC_MARK in note)
        return cls(bars, synthetic, frozenset(keys))

    @classmethod
    def load(cls, path: Path) -> PriceBook:
        """The strict read: a missing file or any bad line is a one-line UserError."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise UserError(
                f"Price file {path} not found: run `ai-trader merge` to create it"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"Cannot read price file {path}: {exc}") from None
        lines = []
        for number, line in numbered(text):
            try:
                lines.append(parse_line(line))
            except BadLine as exc:
                raise UserError(f"{path}, line {number}: {exc}") from None
        book = cls.from_lines(lines)
        if len(book.series_keys) > 1:
            raise UserError(
                f"{path} mixes daily and hourly bars; one data folder holds one market at one "
                "frequency (run `ai-trader merge` for the market the config names)"
            )
        return book

    @classmethod
    def load_lenient(cls, path: Path) -> tuple[PriceBook | None, list[Skipped]]:
        """The lenient read: the book from every usable line (None when the file is missing
        or unreadable) and the lines skipped, each with its file, line and reason."""
        found: Lenient[PriceLine] = read_lenient(path, parse_line)
        book = cls.from_lines(found.values) if found.values is not None else None
        return book, found.skipped

    @property
    def symbols(self) -> frozenset[str]:
        return self._symbols

    def dates(self) -> list[str]:
        """Every trading day any symbol has, sorted, as ISO strings."""
        return list(self._dates)

    @property
    def newest(self) -> str | None:
        """The newest day of the data: the one day whose close is not known yet."""
        return self._dates[-1] if self._dates else None

    def bar(self, symbol: str, day: str) -> dict[str, float] | None:
        """open/high/low/close/volume of ``symbol`` on ``day``; keys absent when unknown."""
        found = self._bars.get(symbol, {}).get(day)
        return dict(found) if found is not None else None

    def series(self, symbol: str) -> Mapping[str, Mapping[str, float]]:
        """Every bar of ``symbol`` by day, read-only (for walking a long history fast)."""
        return MappingProxyType(self._bars.get(symbol, {}))

    def open(self, symbol: str, day: str) -> float | None:
        return self._bars.get(symbol, {}).get(day, {}).get("open")

    def close(self, symbol: str, day: str) -> float | None:
        return self._bars.get(symbol, {}).get(day, {}).get("close")

    def previous_day(self, day: str) -> str | None:
        """The last trading day strictly before ``day`` (which need not be a trading day)."""
        index = bisect.bisect_left(self._dates, day)
        return self._dates[index - 1] if index > 0 else None
