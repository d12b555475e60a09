from pathlib import Path

from ai_trader.layout import MERGED_NAME, price_file
from ai_trader.market.universe import ALL_SYMBOLS, BENCHMARK, NASDAQ_100


def test_nasdaq_100_has_101_distinct_tickers():
    assert len(NASDAQ_100) == 101
    assert len(set(NASDAQ_100)) == 101


def test_both_alphabet_share_classes_are_members():
    assert {"GOOG", "GOOGL"} <= set(NASDAQ_100)


def test_benchmark_is_qqq_and_not_a_constituent():
    assert BENCHMARK == "QQQ"
    assert BENCHMARK not in NASDAQ_100


def test_all_symbols_is_the_constituents_then_the_benchmark():
    assert (*NASDAQ_100, "QQQ") == ALL_SYMBOLS


def test_tickers_are_upper_case_without_spaces():
    assert all(s == s.strip().upper() and s.isalnum() for s in ALL_SYMBOLS)


def test_price_file_uses_the_original_file_name():
    assert price_file(Path("/d"), "AAPL") == Path("/d/daily_prices_AAPL.json")


def test_merged_file_name():
    assert MERGED_NAME == "merged.jsonl"
