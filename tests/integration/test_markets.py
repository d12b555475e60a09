"""Each market's offline default in the container, through compose as a user runs it:
`AI_TRADER_CONFIG=configs/cn_daily_config.json docker compose up` trades the SSE-50 with no
other setting, the crypto config the coins, the hourly configs their slots of each day;
and one data folder per market: a cn config pointed at a folder of US prices stops in
one line before writing anything."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from conftest import Stack

from ai_trader.layout import merged_file
from ai_trader.market.pricebook import PriceBook

pytestmark = pytest.mark.container

# Short ranges of each sample, through the environment's overrides of the image's configs.
LATE_OCTOBER = {"INIT_DATE": "2025-10-20", "END_DATE": "2025-10-31"}
CRYPTO_RANGE = {"INIT_DATE": "2025-10-20", "END_DATE": "2025-10-26"}


@dataclass
class MarketRun:
    status: int
    logs: str
    rows: list[dict[str, Any]]


def run_market(new_stack: Any, config: str, signature: str, dates: dict[str, str]) -> MarketRun:
    """`docker compose up` of the image's own config for a market, to its end."""
    stack: Stack = new_stack()
    try:
        stack.up(AI_TRADER_CONFIG=config, **dates)
        status = stack.wait_exit()
        logs = stack.logs_text()
        assert status == 0, logs
        return MarketRun(status, logs, stack.positions(signature))
    finally:
        stack.down()


@pytest.fixture(scope="module")
def cn_run(new_stack: Any) -> MarketRun:
    return run_market(
        new_stack, "configs/cn_daily_config.json", "builtin-momentum-cn", LATE_OCTOBER
    )


@pytest.fixture(scope="module")
def crypto_run(new_stack: Any) -> MarketRun:
    return run_market(
        new_stack, "configs/crypto_daily_config.json", "builtin-momentum-crypto", CRYPTO_RANGE
    )


@pytest.fixture(scope="module")
def cn_hourly_run(new_stack: Any) -> MarketRun:
    return run_market(
        new_stack, "configs/cn_hourly_config.json", "builtin-momentum-cn-hourly", LATE_OCTOBER
    )


@pytest.fixture(scope="module")
def us_hourly_run(new_stack: Any) -> MarketRun:
    return run_market(
        new_stack, "configs/us_hourly_config.json", "builtin-momentum-us-hourly", LATE_OCTOBER
    )


def trades(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r["this_action"] for r in rows[1:] if r["this_action"]["action"] != "no_trade"]


def summary_header(logs: str) -> str:
    headers = [line for line in logs.splitlines() if line.startswith("signature ")]
    assert len(headers) == 1, logs
    return headers[0]


def test_the_cn_config_alone_makes_the_container_fetch_and_serve_the_cn_market(cn_run):
    assert (
        "fetch: no Tushare token (set TUSHARE_TOKEN); offline SYNTHETIC sample: 51 file(s)"
        in cn_run.logs
    )


def test_the_cn_book_starts_with_100000_in_cash(cn_run):
    assert cn_run.rows[0]["positions"]["CASH"] == 100_000.0


def test_the_cn_book_holds_multiples_of_100_shares_only(cn_run):
    assert [t for t in trades(cn_run.rows) if t["action"] == "buy"], "the run bought nothing"
    held = [
        amount
        for row in cn_run.rows
        for symbol, amount in row["positions"].items()
        if symbol != "CASH"
    ]
    assert held
    assert all(amount % 100 == 0 for amount in held)


def test_the_cn_summary_is_against_the_sse_50_index(cn_run):
    assert "000016.SH" in summary_header(cn_run.logs)


def test_the_crypto_book_starts_with_50000_in_cash(crypto_run):
    assert crypto_run.rows[0]["positions"]["CASH"] == 50_000.0


def test_the_crypto_book_trades_fractional_amounts(crypto_run):
    buys = [t["amount"] for t in trades(crypto_run.rows) if t["action"] == "buy"]
    assert buys
    assert any(not float(amount).is_integer() for amount in buys)


def test_the_crypto_book_trades_the_weekend_too(crypto_run):
    assert {r["date"] for r in crypto_run.rows[1:]} >= {"2025-10-25", "2025-10-26"}


def test_the_crypto_summary_is_against_the_coin_basket(crypto_run):
    assert "BASKET" in summary_header(crypto_run.logs)


def test_the_cn_hourly_config_trades_the_four_sse_slots_of_each_day(cn_hourly_run):
    slots = {row["date"] for row in cn_hourly_run.rows[1:]}
    assert {slot[11:] for slot in slots} == {"10:30:00", "11:30:00", "14:00:00", "15:00:00"}
    assert len(slots) == 9 * 4  # the nine SSE days after 2025-10-20, through 2025-10-31


def test_the_cn_hourly_summary_is_against_the_sse_50_index(cn_hourly_run):
    assert "000016.SH" in summary_header(cn_hourly_run.logs)


def test_the_us_hourly_config_trades_six_slots_of_each_nyse_day(us_hourly_run):
    slots = {row["date"] for row in us_hourly_run.rows[1:]}
    assert {slot[11:] for slot in slots} == {f"{hour}:00:00" for hour in range(10, 16)}
    assert len(slots) == 9 * 6  # the nine NYSE days after 2025-10-20, through 2025-10-31


def test_prepare_with_a_config_prepares_that_markets_prices(stack: Stack):
    prepared = stack.run("prepare", "configs/cn_hourly_config.json")
    assert prepared.returncode == 0, prepared.stderr
    book = PriceBook.load(merged_file(stack.data))
    assert book.hourly
    assert "000016.SH" in book.symbols


def test_a_cn_config_on_a_folder_of_us_prices_stops_in_one_line_writing_nothing(stack: Stack):
    prepared = stack.run("prepare")  # the US prices, as the default run leaves them
    assert prepared.returncode == 0, prepared.stderr
    before = sorted(path.name for path in stack.data.iterdir())
    merged = merged_file(stack.data).read_bytes()
    done = stack.run("configs/cn_daily_config.json")
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert done.returncode == 2, done.stderr
    assert len(errors) == 1, done.stderr
    assert errors[0].endswith(
        "entrypoint: error: /app/data holds the us market's prices (102 file(s) such as "
        "daily_prices_AAPL.json); a cn run needs a data folder of its own "
        "(one data folder per market)"
    )
    assert sorted(path.name for path in stack.data.iterdir()) == before
    assert merged_file(stack.data).read_bytes() == merged
