import json
import re

import pytest
from pydantic import TypeAdapter, ValidationError

from ai_trader.errors import UserError
from ai_trader.layout import MERGED_NAME
from ai_trader.market import pricebook
from ai_trader.market.merge import merge
from ai_trader.market.pricebook import PriceBook
from ai_trader.market.sample import generate_sample


def row(symbol: str, series: dict) -> str:
    return json.dumps({"Meta Data": {"2. Symbol": symbol}, "Time Series (Daily)": series})


FULL = {
    "1. buy price": "10.0",
    "2. high": "12.0",
    "3. low": "9.5",
    "4. sell price": "11.0",
    "5. volume": "1000",
}


@pytest.fixture
def book(tmp_path) -> PriceBook:
    path = tmp_path / MERGED_NAME
    path.write_text(
        "\n".join(
            [
                row("AAPL", {"2025-10-31": {"1. buy price": "12.5"}, "2025-10-30": FULL}),
                row("QQQ", {"2025-10-31": {"1. buy price": "600"}, "2025-10-29": FULL}),
            ]
        )
        + "\n"
    )
    return PriceBook.load(path)


def test_symbols_are_those_in_the_file(book):
    assert book.symbols == frozenset({"AAPL", "QQQ"})


def test_dates_are_the_sorted_union_of_all_trading_days(book):
    assert book.dates() == ["2025-10-29", "2025-10-30", "2025-10-31"]


def test_past_bar_has_all_five_fields_as_floats(book):
    assert book.bar("AAPL", "2025-10-30") == {
        "open": 10.0,
        "high": 12.0,
        "low": 9.5,
        "close": 11.0,
        "volume": 1000.0,
    }


def test_latest_bar_has_only_the_open(book):
    assert book.bar("AAPL", "2025-10-31") == {"open": 12.5}
    assert book.close("AAPL", "2025-10-31") is None


def test_open_and_close_of_a_past_day(book):
    assert book.open("AAPL", "2025-10-30") == 10.0
    assert book.close("AAPL", "2025-10-30") == 11.0


def test_unknown_symbol_or_day_gives_none(book):
    assert book.bar("TSLA", "2025-10-30") is None
    assert book.bar("AAPL", "2025-10-29") is None
    assert book.open("TSLA", "2025-10-30") is None
    assert book.close("AAPL", "1999-01-01") is None


def test_bar_is_a_copy_the_caller_may_change(book):
    book.bar("AAPL", "2025-10-30")["open"] = 0.0
    assert book.open("AAPL", "2025-10-30") == 10.0


def test_previous_day_of_a_trading_day(book):
    assert book.previous_day("2025-10-31") == "2025-10-30"


def test_previous_day_of_a_non_trading_day(book):
    assert book.previous_day("2025-11-02") == "2025-10-31"


def test_previous_day_of_the_first_day_is_none(book):
    assert book.previous_day("2025-10-29") is None


def test_missing_file_tells_the_user_to_run_merge(tmp_path):
    with pytest.raises(UserError, match="ai-trader merge") as info:
        PriceBook.load(tmp_path / MERGED_NAME)
    assert str(tmp_path / MERGED_NAME) in str(info.value)


def test_malformed_line_is_named_by_file_and_line_number(tmp_path):
    path = tmp_path / MERGED_NAME
    path.write_text(row("AAPL", {"2025-10-30": FULL}) + "\n{ broken\n")
    with pytest.raises(UserError, match=r"merged\.jsonl, line 2"):
        PriceBook.load(path)


def test_non_numeric_price_is_named_by_line_number(tmp_path):
    path = tmp_path / MERGED_NAME
    path.write_text(row("AAPL", {"2025-10-30": {**FULL, "4. sell price": "n/a"}}) + "\n")
    with pytest.raises(UserError, match=r"line 1: AAPL 2025-10-30 '4. sell price'"):
        PriceBook.load(path)


def test_line_without_symbol_is_malformed(tmp_path):
    path = tmp_path / MERGED_NAME
    path.write_text(json.dumps({"Time Series (Daily)": {}}) + "\n")
    with pytest.raises(UserError, match="line 1"):
        PriceBook.load(path)


def test_blank_lines_are_ignored(tmp_path):
    path = tmp_path / MERGED_NAME
    path.write_text("\n" + row("AAPL", {"2025-10-30": FULL}) + "\n\n")
    assert PriceBook.load(path).symbols == frozenset({"AAPL"})


def test_loads_what_merge_writes_from_the_sample(tmp_path):
    generate_sample(["AAPL", "QQQ"], tmp_path, days=5)
    book = PriceBook.load(merge(tmp_path, ["AAPL", "QQQ"]).path)
    days = book.dates()
    assert len(days) == 5
    assert days[-1] == "2025-10-31"
    assert set(book.bar("QQQ", days[-1])) == {"open"}
    assert set(book.bar("QQQ", days[-2])) == {"open", "high", "low", "close", "volume"}


# --- the lenient read (the dashboard's) ----------------------------------------------------


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{ broken", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ("[" * 100_000 + "]" * 100_000, "not valid JSON"),
        (json.dumps({"Meta Data": {}}), '"2. Symbol"'),
        (row("X", {"2025-10-30": {**FULL, "4. sell price": True}}), "'4. sell price' is not a"),
        (row("X", {"2025-10-30": {**FULL, "4. sell price": "NaN"}}), "not a finite number"),
        (row("X", {"2025-10-30": {**FULL, "4. sell price": 1e400}}), "not a finite number"),
        (row("X", {"2025-10-30": {"4. sell price": "1"}}), "X 2025-10-30: no open price"),
        (row("X", {"30/10/2025": FULL}), "'30/10/2025' is not a YYYY-MM-DD date"),
        (row("X", {"2025-10-30": [1]}), "the bar is not an object"),
    ],
)
def test_the_lenient_read_skips_a_bad_line_and_reports_file_line_and_reason(tmp_path, line, reason):
    path = tmp_path / MERGED_NAME
    path.write_text(row("AAPL", {"2025-10-30": FULL}) + "\n" + line + "\n")
    book, skipped = PriceBook.load_lenient(path)
    assert book is not None
    assert book.symbols == frozenset({"AAPL"})
    ((file, number, why),) = [(s.file, s.line, s.reason) for s in skipped]
    assert (file, number) == (str(path), 2)
    assert reason in why
    with pytest.raises(UserError, match=rf"line 2: .*{re.escape(reason)}"):
        PriceBook.load(path)  # the strict read refuses the same line, for the same reason


def test_the_lenient_read_of_a_missing_file_is_no_book(tmp_path):
    assert PriceBook.load_lenient(tmp_path / MERGED_NAME) == (None, [])


def test_the_lenient_read_of_an_unreadable_file_is_reported(tmp_path):
    path = tmp_path / MERGED_NAME
    path.write_bytes(b"\xff\xfe not utf-8")
    book, (skipped,) = PriceBook.load_lenient(path)
    assert book is None
    assert (skipped.file, skipped.line) == (str(path), None)
    assert "cannot read" in skipped.reason


def test_the_sample_is_marked_synthetic_and_market_data_is_not(tmp_path):
    generate_sample(["AAPL", "QQQ"], tmp_path, days=5)
    assert PriceBook.load(merge(tmp_path, ["AAPL", "QQQ"]).path).synthetic is True
    path = tmp_path / "real.jsonl"
    path.write_text(row("AAPL", {"2025-10-30": FULL}) + "\n")
    assert PriceBook.load(path).synthetic is False


# --- the row model, built from its definition -------------------------------------------------
# The module builds its row model once, on import. Building it again here tests the
# definition itself, not only the copy made before any test ran.

RAW = {  # Alpha Vantage's own names, as a fetched daily file has them
    "1. open": "10.0",
    "2. high": "12.0",
    "3. low": "9.5",
    "4. close": "11.0",
    "5. volume": "1000",
}
BAR = {"open": 10.0, "high": 12.0, "low": 9.5, "close": 11.0, "volume": 1000.0}


@pytest.fixture
def line_model() -> TypeAdapter:
    return pricebook._line_model(pricebook.Price)


def test_the_row_model_reads_the_merged_and_the_raw_names_into_one_bar(line_model):
    merged = line_model.validate_json(row("X", {"2025-10-30": FULL}))
    assert merged == {"Meta Data": {"2. Symbol": "X"}, "Time Series (Daily)": {"2025-10-30": BAR}}
    assert line_model.validate_json(row("X", {"2025-10-30": RAW})) == merged


def test_the_row_model_reads_a_newest_day_with_only_its_open(line_model):
    line = line_model.validate_json(row("X", {"2025-10-31": {"1. buy price": 12.5}}))
    assert line["Time Series (Daily)"] == {"2025-10-31": {"open": 12.5}}


def test_the_row_model_keeps_the_note_of_the_metadata(line_model):
    text = json.dumps({"Meta Data": {"2. Symbol": "X", "6. Note": "SYNTHETIC"},
                       "Time Series (Daily)": {}})  # fmt: skip
    assert line_model.validate_json(text)["Meta Data"]["6. Note"] == "SYNTHETIC"


@pytest.mark.parametrize(
    "line",
    [
        json.dumps({"Meta Data": {"2. Symbol": ""}, "Time Series (Daily)": {}}),
        json.dumps({"Meta Data": {"2. Symbol": 5}, "Time Series (Daily)": {}}),
        json.dumps({"Meta Data": {"2. Symbol": "X"}}),
        row("X", {"2025-10-30": {**FULL, "1. buy price": True}}),
        row("X", {"2025-10-30": {**FULL, "2. high": "NaN"}}),
        row("X", {"2025-10-30": {**FULL, "3. low": "Infinity"}}),
        row("X", {"2025-10-30": {**FULL, "4. sell price": "a lot"}}),
        row("X", {"2025-10-30": {**FULL, "5. volume": False}}),
        row("X", {"2025-10-30": {"4. sell price": "1"}}),
        row("X", {"2025-1-30": FULL}),
    ],
)
def test_the_row_model_refuses_a_line_the_book_cannot_use(line_model, line):
    with pytest.raises(ValidationError):
        line_model.validate_json(line)
