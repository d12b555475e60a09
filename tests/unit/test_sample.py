import hashlib
import json
import logging
from datetime import date

import pytest

from ai_trader.layout import price_file
from ai_trader.market.sample import generate_sample
from ai_trader.market.universe import ALL_SYMBOLS

SYMBOLS = ["AAPL", "MSFT", "QQQ"]


def load(data_dir, symbol) -> dict:
    return json.loads(price_file(data_dir, symbol).read_text())


def test_same_inputs_give_byte_identical_files(tmp_path):
    generate_sample(SYMBOLS, tmp_path / "a")
    generate_sample(SYMBOLS, tmp_path / "b")
    for symbol in SYMBOLS:
        assert (
            price_file(tmp_path / "a", symbol).read_bytes()
            == price_file(tmp_path / "b", symbol).read_bytes()
        )


def test_output_matches_the_recorded_digest(tmp_path):
    # Pins the bytes across machines and Python versions (the tests run on each supported one).
    generate_sample(["AAPL"], tmp_path)
    digest = hashlib.sha256(price_file(tmp_path, "AAPL").read_bytes()).hexdigest()
    assert digest == "cbb2dcbe85664fb015c17d695a2166d4beb1522a0832c2696d6d0a96578fa1bf"


def test_a_symbols_series_does_not_depend_on_the_other_symbols(tmp_path):
    generate_sample(["AAPL"], tmp_path / "alone")
    generate_sample(["MSFT", "AAPL"], tmp_path / "with")
    assert load(tmp_path / "alone", "AAPL") == load(tmp_path / "with", "AAPL")


def test_a_different_seed_gives_different_prices(tmp_path):
    generate_sample(["AAPL"], tmp_path / "a")
    generate_sample(["AAPL"], tmp_path / "b", seed=1)
    assert load(tmp_path / "a", "AAPL") != load(tmp_path / "b", "AAPL")


def test_metadata_says_the_data_is_synthetic(tmp_path):
    generate_sample(["AAPL"], tmp_path)
    assert "SYNTHETIC" in load(tmp_path, "AAPL")["Meta Data"]["6. Note"]


def test_logs_once_that_the_data_is_synthetic(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    generate_sample(SYMBOLS, tmp_path)
    synthetic = [r for r in caplog.records if "SYNTHETIC" in r.getMessage()]
    assert len(synthetic) == 1
    assert synthetic[0].levelno == logging.WARNING


def test_metadata_has_alpha_vantages_keys(tmp_path):
    generate_sample(["AAPL"], tmp_path)
    meta = load(tmp_path, "AAPL")["Meta Data"]
    assert list(meta) == [
        "1. Information",
        "2. Symbol",
        "3. Last Refreshed",
        "4. Output Size",
        "5. Time Zone",
        "6. Note",
    ]
    assert meta["2. Symbol"] == "AAPL"
    assert meta["3. Last Refreshed"] == "2025-10-31"


def test_series_has_the_requested_number_of_weekdays_newest_first(tmp_path):
    generate_sample(["AAPL"], tmp_path, days=30)
    days = list(load(tmp_path, "AAPL")["Time Series (Daily)"])
    assert len(days) == 30
    assert days == sorted(days, reverse=True)
    assert days[0] == "2025-10-31"
    assert all(date.fromisoformat(d).weekday() < 5 for d in days)


def test_an_end_on_a_weekend_ends_the_series_on_friday(tmp_path):
    generate_sample(["AAPL"], tmp_path, end=date(2025, 11, 2), days=5)
    assert next(iter(load(tmp_path, "AAPL")["Time Series (Daily)"])) == "2025-10-31"


def test_bars_have_alpha_vantages_string_fields(tmp_path):
    generate_sample(["AAPL"], tmp_path)
    for bar in load(tmp_path, "AAPL")["Time Series (Daily)"].values():
        assert list(bar) == ["1. open", "2. high", "3. low", "4. close", "5. volume"]
        assert all(isinstance(v, str) for v in bar.values())
        assert all(len(bar[k].split(".")[1]) == 4 for k in list(bar)[:4])
        assert bar["5. volume"].isdigit()


def test_high_and_low_bound_open_and_close(tmp_path):
    generate_sample(list(ALL_SYMBOLS), tmp_path)
    for symbol in ALL_SYMBOLS:
        for bar in load(tmp_path, symbol)["Time Series (Daily)"].values():
            o, h, lo, c = (float(bar[k]) for k in ("1. open", "2. high", "3. low", "4. close"))
            assert h >= max(o, c)
            assert 0 < lo <= min(o, c)


def test_symbols_get_distinct_plausible_price_levels(tmp_path):
    generate_sample(list(ALL_SYMBOLS), tmp_path)
    latest = {}
    for symbol in ALL_SYMBOLS:
        series = load(tmp_path, symbol)["Time Series (Daily)"]
        latest[symbol] = float(next(iter(series.values()))["4. close"])
    assert len(set(latest.values())) == len(ALL_SYMBOLS)
    assert all(1 < price < 5000 for price in latest.values())
    assert 300 < latest["QQQ"] < 1200


def real_data(symbol: str) -> str:
    return json.dumps(
        {
            "Meta Data": {"2. Symbol": symbol, "3. Last Refreshed": "2025-11-03"},
            "Time Series (Daily)": {"2025-11-03": {"1. open": "10.0", "4. close": "11.0"}},
        }
    )


def test_a_usable_file_of_real_data_is_never_overwritten(tmp_path):
    real = price_file(tmp_path, "AAPL")
    real.write_text(real_data("AAPL"))
    written = generate_sample(SYMBOLS, tmp_path)
    assert real.read_text() == real_data("AAPL")
    assert written == ["MSFT", "QQQ"]


@pytest.mark.parametrize(
    "content",
    ['{"real": true}', "{not json", real_data("MSFT"), "", "\udcff"],
    ids=["no-series", "corrupt", "another-symbol", "empty", "not-utf8"],
)
def test_an_unusable_file_is_replaced_by_the_sample(tmp_path, content: str):
    path = price_file(tmp_path, "AAPL")
    path.write_bytes(content.encode("utf-8", "surrogateescape"))
    assert generate_sample(["AAPL"], tmp_path) == ["AAPL"]
    assert load(tmp_path, "AAPL")["Meta Data"]["2. Symbol"] == "AAPL"


def test_an_older_synthetic_sample_is_regenerated(tmp_path):
    generate_sample(["AAPL"], tmp_path, seed=1)
    assert generate_sample(["AAPL"], tmp_path) == ["AAPL"]
    assert generate_sample(["AAPL"], tmp_path) == []


def test_the_sample_follows_the_nyse_calendar(tmp_path):
    generate_sample(["QQQ"], tmp_path)
    days = set(load(tmp_path, "QQQ")["Time Series (Daily)"])
    assert len(days) == 90
    assert min(days) == "2025-06-26"
    for holiday in ("2025-07-04", "2025-09-01"):  # Independence Day, Labor Day
        assert holiday not in days
    assert "2025-07-03" in days  # an early close is a trading day


def test_returns_nothing_when_every_file_exists(tmp_path):
    generate_sample(SYMBOLS, tmp_path)
    assert generate_sample(SYMBOLS, tmp_path) == []


def test_zero_days_is_refused(tmp_path):
    with pytest.raises(ValueError, match="days"):
        generate_sample(["AAPL"], tmp_path, days=0)
