import json

import pytest

from ai_trader.errors import UserError
from ai_trader.market.merge import merge
from ai_trader.market.pricebook import PriceBook
from ai_trader.market.sample import generate_sample
from ai_trader.market.universe import MERGED_NAME


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
