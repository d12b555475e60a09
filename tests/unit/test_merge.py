import json
import logging

import pytest

from ai_trader.errors import UserError
from ai_trader.layout import MERGED_NAME, price_file
from ai_trader.market.merge import merge


def bar(open_, close, high=None, low=None, volume="1000") -> dict:
    return {
        "1. open": open_,
        "2. high": high or max(open_, close, key=float),
        "3. low": low or min(open_, close, key=float),
        "4. close": close,
        "5. volume": volume,
    }


def reply(symbol: str, series: dict) -> dict:
    return {
        "Meta Data": {
            "1. Information": "Daily Prices (open, high, low, close) and Volumes",
            "2. Symbol": symbol,
            "3. Last Refreshed": max(series),
            "4. Output Size": "Compact",
            "5. Time Zone": "US/Eastern",
        },
        "Time Series (Daily)": series,
    }


def write(data_dir, symbol, payload) -> None:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    price_file(data_dir, symbol).write_text(text)


AAPL = {
    "2025-10-31": bar("270.0000", "272.5000"),
    "2025-10-30": bar("268.0000", "269.5000"),
}


@pytest.fixture
def data_dir(tmp_path):
    write(tmp_path, "AAPL", reply("AAPL", AAPL))
    write(tmp_path, "MSFT", reply("MSFT", {"2025-10-31": bar("500.0", "505.0")}))
    return tmp_path


def lines(data_dir) -> list[dict]:
    return [json.loads(line) for line in (data_dir / MERGED_NAME).read_text().splitlines()]


def test_writes_one_line_per_symbol_in_the_given_order(data_dir):
    report = merge(data_dir, ["MSFT", "AAPL"])
    assert report.path == data_dir / MERGED_NAME
    assert report.merged == ["MSFT", "AAPL"]
    assert [row["Meta Data"]["2. Symbol"] for row in lines(data_dir)] == ["MSFT", "AAPL"]


def test_keeps_the_files_meta_data(data_dir):
    merge(data_dir, ["AAPL"])
    assert lines(data_dir)[0]["Meta Data"] == reply("AAPL", AAPL)["Meta Data"]


def test_renames_open_and_close_to_buy_and_sell_price(data_dir):
    merge(data_dir, ["AAPL"])
    past = lines(data_dir)[0]["Time Series (Daily)"]["2025-10-30"]
    assert past == {
        "1. buy price": "268.0000",
        "2. high": "269.5000",
        "3. low": "268.0000",
        "4. sell price": "269.5000",
        "5. volume": "1000",
    }


def test_latest_day_keeps_only_the_buy_price(data_dir):
    merge(data_dir, ["AAPL"])
    assert lines(data_dir)[0]["Time Series (Daily)"]["2025-10-31"] == {"1. buy price": "270.0000"}


def test_latest_day_is_found_by_date_not_by_file_order(tmp_path):
    write(tmp_path, "AAPL", reply("AAPL", dict(reversed(AAPL.items()))))
    merge(tmp_path, ["AAPL"])
    assert lines(tmp_path)[0]["Time Series (Daily)"]["2025-10-31"] == {"1. buy price": "270.0000"}


def test_missing_file_is_listed_as_missing(data_dir):
    report = merge(data_dir, ["AAPL", "NVDA"])
    assert report.skipped == {"daily_prices_NVDA.json": "missing"}
    assert report.merged == ["AAPL"]


def test_malformed_json_is_skipped_with_one_warning_naming_the_file(data_dir, caplog):
    write(data_dir, "NVDA", "{ not json")
    caplog.set_level(logging.WARNING)
    report = merge(data_dir, ["AAPL", "NVDA"])
    assert "not valid JSON" in report.skipped["daily_prices_NVDA.json"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "daily_prices_NVDA.json" in warnings[0].getMessage()


def test_rate_limit_reply_saved_as_a_file_is_skipped(data_dir):
    write(data_dir, "NVDA", {"Note": "Thank you for using Alpha Vantage!"})
    report = merge(data_dir, ["AAPL", "NVDA"])
    assert "daily_prices_NVDA.json" in report.skipped
    assert [row["Meta Data"]["2. Symbol"] for row in lines(data_dir)] == ["AAPL"]


def test_file_without_time_series_is_skipped(data_dir):
    write(data_dir, "NVDA", {"Meta Data": {"2. Symbol": "NVDA"}})
    report = merge(data_dir, ["NVDA", "AAPL"])
    assert "Time Series (Daily)" in report.skipped["daily_prices_NVDA.json"]


def test_bar_without_numeric_close_is_skipped(data_dir):
    write(data_dir, "NVDA", reply("NVDA", {"2025-10-31": bar("1.0", "n/a", "1.0", "1.0")}))
    report = merge(data_dir, ["NVDA", "AAPL"])
    assert "4. close" in report.skipped["daily_prices_NVDA.json"]


def test_bar_without_open_is_skipped(data_dir):
    series = {"2025-10-31": {"2. high": "1", "3. low": "1", "4. close": "1", "5. volume": "1"}}
    write(data_dir, "NVDA", reply("NVDA", series))
    report = merge(data_dir, ["NVDA", "AAPL"])
    assert "1. open" in report.skipped["daily_prices_NVDA.json"]


def test_file_for_another_symbol_is_skipped(data_dir):
    write(data_dir, "NVDA", reply("AAPL", AAPL))
    report = merge(data_dir, ["NVDA", "AAPL"])
    assert "'AAPL'" in report.skipped["daily_prices_NVDA.json"]


def test_no_valid_file_raises_a_user_error_naming_the_folder(tmp_path):
    write(tmp_path, "AAPL", "garbage")
    with pytest.raises(UserError, match=str(tmp_path)):
        merge(tmp_path, ["AAPL", "MSFT"])


def test_existing_merged_file_is_left_intact_when_merging_fails(tmp_path):
    merged = tmp_path / MERGED_NAME
    merged.write_text('{"previous": true}\n')
    write(tmp_path, "AAPL", "garbage")
    with pytest.raises(UserError):
        merge(tmp_path, ["AAPL"])
    assert merged.read_text() == '{"previous": true}\n'
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_shows_progress(data_dir, capsys):
    merge(data_dir, ["AAPL", "MSFT"])
    assert "merge [2/2] MSFT" in capsys.readouterr().err


def test_a_corrupt_file_keeps_its_symbols_previous_line(data_dir):
    merge(data_dir, ["AAPL", "MSFT"])
    before = (data_dir / MERGED_NAME).read_text().splitlines()
    write(data_dir, "AAPL", "{corrupt")
    report = merge(data_dir, ["AAPL", "MSFT"])
    after = (data_dir / MERGED_NAME).read_text().splitlines()
    assert after == before
    assert list(report.kept) == ["daily_prices_AAPL.json"]
    assert list(report.malformed) == ["daily_prices_AAPL.json"]
    assert report.merged == ["MSFT"]


def test_a_deleted_file_keeps_its_symbols_previous_line_without_calling_it_malformed(data_dir):
    merge(data_dir, ["AAPL", "MSFT"])
    price_file(data_dir, "AAPL").unlink()
    report = merge(data_dir, ["AAPL", "MSFT"])
    assert len((data_dir / MERGED_NAME).read_text().splitlines()) == 2
    assert report.kept == {"daily_prices_AAPL.json": "missing"}
    assert report.malformed == {}


def test_a_corrupt_file_with_no_previous_line_is_reported_as_malformed(data_dir):
    write(data_dir, "AAPL", "{corrupt")
    report = merge(data_dir, ["AAPL", "MSFT"])
    assert list(report.malformed) == ["daily_prices_AAPL.json"]
    assert report.kept == {}


def test_a_day_that_is_not_a_calendar_date_is_skipped(data_dir):
    write(data_dir, "NVDA", reply("NVDA", {"2025-13-45": bar("1.0", "1.0")}))
    report = merge(data_dir, ["NVDA", "AAPL"])
    assert "'2025-13-45' is not a YYYY-MM-DD date" in report.skipped["daily_prices_NVDA.json"]


def test_a_boolean_price_is_skipped(data_dir):
    write(data_dir, "NVDA", reply("NVDA", {"2025-10-31": bar(True, "1.0", "1", "1")}))
    report = merge(data_dir, ["NVDA", "AAPL"])
    assert "1. open" in report.skipped["daily_prices_NVDA.json"]


def test_a_previous_line_the_price_book_would_refuse_is_not_kept(data_dir):
    (data_dir / MERGED_NAME).write_text(
        json.dumps({"Meta Data": {"2. Symbol": "NVDA"}, "Time Series (Daily)": {"x": 1}}) + "\n"
    )
    report = merge(data_dir, ["NVDA", "AAPL"])
    assert report.skipped == {"daily_prices_NVDA.json": "missing"}
    assert [row["Meta Data"]["2. Symbol"] for row in lines(data_dir)] == ["AAPL"]


# --- a symbol whose data ends before the rest ------------------------------------------------

STALE = {  # NVDA's fetch stopped a day early: its last day is not the data's newest
    "2025-10-29": bar("200.0000", "201.0000"),
    "2025-10-30": bar("202.0000", "207.0000"),
}


@pytest.fixture
def stale_data(data_dir):
    write(data_dir, "NVDA", reply("NVDA", STALE))
    write(data_dir, "QQQ", reply("QQQ", {d: bar("600.0", "610.0") for d in AAPL}))
    merge(data_dir, ["AAPL", "NVDA", "QQQ"])
    return data_dir


def test_a_symbol_that_ends_early_keeps_the_close_of_its_last_day(stale_data):
    nvda = next(line for line in lines(stale_data) if line["Meta Data"]["2. Symbol"] == "NVDA")
    assert nvda["Time Series (Daily)"]["2025-10-30"] == {
        "1. buy price": "202.0000",
        "2. high": "207.0000",
        "3. low": "202.0000",
        "4. sell price": "207.0000",
        "5. volume": "1000",
    }


def test_only_the_datas_newest_day_loses_its_close(stale_data):
    aapl = next(line for line in lines(stale_data) if line["Meta Data"]["2. Symbol"] == "AAPL")
    assert aapl["Time Series (Daily)"]["2025-10-31"] == {"1. buy price": "270.0000"}
    assert aapl["Time Series (Daily)"]["2025-10-30"]["4. sell price"] == "269.5000"


def test_the_stale_symbols_last_day_is_valued_at_its_close_and_the_next_is_a_gap(stale_data):
    from ai_trader.market.pricebook import PriceBook
    from ai_trader.valuation import value_book

    book = PriceBook.load(stale_data / MERGED_NAME)
    opening = {"date": "2025-10-28", "id": 0, "positions": {"NVDA": 0, "CASH": 1000.0}}
    bought = {
        "date": "2025-10-30",
        "id": 1,
        "this_action": {"action": "buy", "symbol": "NVDA", "amount": 2},
        "positions": {"NVDA": 2, "CASH": 596.0},
    }
    held = {**bought, "date": "2025-10-31", "id": 2, "this_action": {"action": "no_trade"}}
    valued = value_book([opening, bought, held], book)
    values = {point.date: point.value for point in valued.series}
    assert values["2025-10-30"] == pytest.approx(596.0 + 2 * 207.0)  # the close, not the open
    assert values["2025-10-31"] is None
    assert [(gap.date, gap.symbols) for gap in valued.gaps] == [("2025-10-31", ("NVDA",))]
