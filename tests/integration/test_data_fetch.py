"""Data fetch in the container: prices from the Alpha Vantage stand-in land on the host."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from conftest import Stack

from ai_trader.market.universe import ALL_SYMBOLS

pytestmark = pytest.mark.container

# Trading days the stand-in serves end on the most recent weekday; run the agent
# over the last few of them (a range with no trading day in the data is refused).
FETCH_RUN = {
    "ALPHAADVANTAGE_API_KEY": "integration-key",
    "INIT_DATE": (date.today() - timedelta(days=10)).isoformat(),
    "END_DATE": "2099-12-31",
}


def fetch_scenario(**extra: object) -> dict:
    return {"symbols": list(ALL_SYMBOLS), **extra}


def test_every_symbol_served_lands_in_the_host_data_folder(stack: Stack) -> None:
    stack.standins.set_scenario(fetch_scenario())
    stack.up(**FETCH_RUN)
    assert stack.wait_exit() == 0, stack.logs_text()
    for symbol in ALL_SYMBOLS:
        payload = json.loads((stack.data / f"daily_prices_{symbol}.json").read_text())
        assert payload["Meta Data"]["2. Symbol"] == symbol
        assert payload["Time Series (Daily)"]


def test_merged_jsonl_is_valid_with_one_line_per_symbol(stack: Stack) -> None:
    stack.standins.set_scenario(fetch_scenario())
    stack.up(**FETCH_RUN)
    assert stack.wait_exit() == 0, stack.logs_text()
    lines = (stack.data / "merged.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert sorted(row["Meta Data"]["2. Symbol"] for row in rows) == sorted(ALL_SYMBOLS)
    for row in rows:
        series = row["Time Series (Daily)"]
        latest = max(series)
        assert set(series[latest]) == {"1. buy price"}
        assert "4. sell price" in series[min(series)]


def test_a_rate_limit_reply_is_retried_until_the_data_arrives(stack: Stack) -> None:
    stack.standins.set_scenario(fetch_scenario(rate_limit={"AAPL": 1}, information={"MSFT": 1}))
    stack.up(**FETCH_RUN)
    assert stack.wait_exit() == 0, stack.logs_text()
    by_symbol = stack.standins.stats()["alphavantage"]["by_symbol"]
    assert by_symbol["AAPL"] == 2
    assert by_symbol["MSFT"] == 2
    assert (stack.data / "daily_prices_AAPL.json").is_file()


def test_a_second_start_downloads_nothing_that_is_current(stack: Stack) -> None:
    stack.standins.set_scenario(fetch_scenario())
    stack.up(**FETCH_RUN)
    assert stack.wait_exit() == 0, stack.logs_text()
    first = stack.standins.stats()["alphavantage"]["requests"]
    stack.up(**FETCH_RUN)  # the same container, started again
    assert stack.wait_exit() == 0, stack.logs_text()
    assert first == len(ALL_SYMBOLS)
    assert stack.standins.stats()["alphavantage"]["requests"] == first


def test_a_symbol_the_api_rejects_is_reported_and_the_run_goes_on(stack: Stack) -> None:
    served = [s for s in ALL_SYMBOLS if s != "TSLA"]
    stack.standins.set_scenario({"symbols": served})
    stack.up(**FETCH_RUN)
    assert stack.wait_exit() == 0
    logs = stack.logs_text()
    assert "TSLA" in logs
    assert "Invalid API call" in logs
    assert not (stack.data / "daily_prices_TSLA.json").exists()
    assert (stack.data / "daily_prices_NVDA.json").is_file()


def test_without_a_key_the_offline_sample_is_written_and_labelled_synthetic(stack: Stack) -> None:
    stack.up(END_DATE="2025-10-03")
    assert stack.wait_exit() == 0, stack.logs_text()
    payload = json.loads((stack.data / "daily_prices_QQQ.json").read_text())
    assert "SYNTHETIC" in json.dumps(payload["Meta Data"]).upper()
    assert "SYNTHETIC" in stack.logs_text()
    assert stack.standins.stats()["alphavantage"]["requests"] == 0
