"""The markets: each one object holding its universe, calendar, cash, rules and metrics'
periods; the registry a config names them by; their calendars and samples."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from ai_trader.agent.builtin import buy_amount
from ai_trader.config import load_config
from ai_trader.costs import FREE, Costs
from ai_trader.errors import UserError
from ai_trader.ledger import CASH, TradeRejected, TradeRules, fill_trade
from ai_trader.market.calendar import EVERY_DAY, NYSE, SSE
from ai_trader.market.cn import CN_DAILY, CN_HOURLY, SSE_50
from ai_trader.market.crypto import CRYPTO_DAILY
from ai_trader.market.markets import MARKETS, market_by_key, market_for, market_of_books
from ai_trader.market.merge import check_reply
from ai_trader.market.sample import generate_sample, sample_payload
from ai_trader.market.universe import NASDAQ_100
from ai_trader.market.us import US_DAILY, US_HOURLY
from ai_trader.services.trade import trade_rules

CN_RULES = trade_rules(CN_DAILY)
CRYPTO_RULES = trade_rules(CRYPTO_DAILY)

# --- the registry ---------------------------------------------------------------------------


def test_a_config_that_names_no_market_trades_the_us_daily():
    assert market_for(None, None) is US_DAILY


@pytest.mark.parametrize("name", ["us", "cn", "crypto"])
def test_each_market_is_found_by_its_name(name: str):
    assert market_for(name, "daily").name == name


def test_an_unknown_market_is_one_line_naming_the_known_ones():
    with pytest.raises(UserError) as caught:
        market_for("jp", None, where="config c.json")
    assert str(caught.value) == "config c.json: market: unknown market 'jp' (known: us, cn, crypto)"


def test_an_unknown_frequency_is_one_line_naming_the_known_ones():
    with pytest.raises(UserError) as caught:
        market_for("us", "weekly", where="config c.json")
    assert str(caught.value) == (
        "config c.json: frequency: unknown frequency 'weekly' (known: daily, hourly)"
    )


def test_a_frequency_a_market_does_not_trade_yet_is_refused_saying_what_it_trades():
    with pytest.raises(UserError) as refused:
        market_for("crypto", "hourly")
    assert str(refused.value) == (
        "config: frequency: market 'crypto' does not trade hourly in this version "
        "(it trades: daily)"
    )


def test_a_market_key_that_names_no_market_finds_none():
    assert market_by_key("jp") is None


# --- what each market holds -----------------------------------------------------------------


def test_the_us_market_is_the_nasdaq_100_against_qqq_with_10000_dollars():
    market = US_DAILY
    assert (market.symbols, market.benchmark) == (NASDAQ_100, "QQQ")
    assert (market.currency, market.initial_cash, market.periods_per_year) == ("USD", 10000, 252)
    assert (market.lot_size, market.settlement_days, market.decimals) == (1, 0, 0)


def test_the_cn_market_is_the_sse_50_in_lots_of_100_at_t_plus_1_with_100000_yuan():
    market = CN_DAILY
    assert (len(market.symbols), market.benchmark) == (50, "000016.SH")
    assert (market.currency, market.initial_cash, market.periods_per_year) == ("CNY", 1e5, 242)
    assert (market.lot_size, market.settlement_days, market.decimals) == (100, 1, 0)


def test_the_crypto_market_trades_fractional_coins_every_day_with_50000_usdt():
    market = CRYPTO_DAILY
    assert (market.currency, market.initial_cash, market.periods_per_year) == ("USDT", 5e4, 365)
    assert (market.lot_size, market.settlement_days, market.decimals) == (1, 0, 8)
    assert market.calendar is EVERY_DAY


def test_the_sse_50_lists_50_distinct_shanghai_symbols():
    assert len(set(SSE_50)) == 50
    assert all(symbol.endswith(".SH") and symbol[:6].isdigit() for symbol in SSE_50)


def test_no_market_trades_its_own_benchmark():
    assert all(m.benchmark not in m.symbols for m in MARKETS.values())


# --- calendars ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "closed",
    [
        date(2025, 1, 29),  # Spring Festival
        date(2025, 10, 1),  # National Day
        date(2025, 10, 8),  # a weekday moved into the golden week
        date(2025, 9, 28),  # a Sunday China works to make up the holiday: the SSE is shut
        date(2025, 10, 11),  # a Saturday China works: the SSE is shut
    ],
)
def test_the_sse_is_closed_on_its_holidays_and_every_weekend(closed: date):
    assert not SSE.is_trading_day(closed)


def test_the_sse_opens_again_after_the_national_day_week():
    assert SSE.is_trading_day(date(2025, 10, 9))


def test_the_sse_trades_on_a_us_holiday():
    assert not NYSE.is_trading_day(date(2025, 7, 4))
    assert SSE.is_trading_day(date(2025, 7, 4))


def test_crypto_trades_on_saturdays_and_christmas():
    assert EVERY_DAY.is_trading_day(date(2025, 10, 25))
    assert EVERY_DAY.is_trading_day(date(2025, 12, 25))


def test_a_calendar_counts_back_its_own_trading_days():
    assert EVERY_DAY.days_ending(date(2025, 10, 26), 3) == [
        date(2025, 10, 24), date(2025, 10, 25), date(2025, 10, 26)
    ]  # fmt: skip
    assert SSE.days_ending(date(2025, 10, 9), 2) == [date(2025, 9, 30), date(2025, 10, 9)]


# --- the trading rules, as the ledger applies them --------------------------------------------

CN_BOOK = {CASH: 100_000.0, "600519.SH": 0}


def test_an_sse_buy_of_50_shares_is_refused():
    with pytest.raises(TradeRejected, match="lots of 100 shares: a buy must be a multiple"):
        fill_trade(CN_BOOK, "buy", "600519.SH", 50, 10.0, rules=CN_RULES)


def test_an_sse_buy_of_100_shares_fills():
    after = fill_trade(CN_BOOK, "buy", "600519.SH", 100, 10.0, rules=CN_RULES).positions
    assert (after["600519.SH"], after[CASH]) == (100, 99_000.0)


def test_an_sse_sell_of_an_odd_lot_short_of_the_holding_is_refused():
    book = {CASH: 0.0, "600519.SH": 150}
    with pytest.raises(TradeRejected, match="a sell of less than the whole holding"):
        fill_trade(book, "sell", "600519.SH", 30, 10.0, rules=CN_RULES)


def test_an_sse_sell_of_the_whole_odd_holding_fills():
    book = {CASH: 0.0, "600519.SH": 150}
    after = fill_trade(book, "sell", "600519.SH", 150, 10.0, rules=CN_RULES).positions
    assert (after["600519.SH"], after[CASH]) == (0, 1500.0)


def test_t_plus_1_refuses_selling_what_was_bought_today():
    book = {CASH: 0.0, "600519.SH": 100}
    with pytest.raises(TradeRejected, match=r"^T\+1: 100 of the 100 600519.SH held were bought"):
        fill_trade(book, "sell", "600519.SH", 100, 10.0, rules=CN_RULES, bought_today=100)


def test_t_plus_1_lets_the_shares_held_from_before_today_be_sold():
    book = {CASH: 0.0, "600519.SH": 300}
    after = fill_trade(book, "sell", "600519.SH", 200, 10.0, rules=CN_RULES, bought_today=100)
    assert after.positions["600519.SH"] == 100


def test_0_0015_btc_can_be_bought():
    after = fill_trade({CASH: 50_000.0}, "buy", "BTC", 0.0015, 60_000.0, rules=CRYPTO_RULES)
    assert (after.positions["BTC"], after.positions[CASH]) == (0.0015, 49_910.0)


def test_fractional_holdings_stay_rounded_to_the_markets_decimals():
    after = fill_trade({CASH: 100.0, "BTC": 0.1}, "buy", "BTC", 0.2, 1.0, rules=CRYPTO_RULES)
    assert after.positions["BTC"] == 0.3


def test_an_amount_finer_than_the_markets_decimals_is_refused():
    with pytest.raises(TradeRejected, match="more than 8 decimal places"):
        fill_trade({CASH: 100.0}, "buy", "BTC", 0.000000001, 1.0, rules=CRYPTO_RULES)


def test_a_market_without_settlement_lets_a_buy_be_sold_the_same_day():
    rules = TradeRules()
    after = fill_trade({CASH: 0.0, "NVDA": 5}, "sell", "NVDA", 5, 1.0, rules=rules, bought_today=5)
    assert after.positions["NVDA"] == 0


# --- the built-in strategy's sizing ---------------------------------------------------------


def test_the_builtin_buys_whole_lots_in_a_lot_market():
    assert buy_amount(FREE, 10_000.0, 33.0, lot=100) == 300


def test_the_builtin_buys_fractional_coins_within_its_budget():
    assert buy_amount(FREE, 1000.0, 60_000.0, decimals=8) == 0.01666666


def test_the_builtin_fractional_size_leaves_room_for_the_fee():
    costs = Costs(commission_bps=10, min_commission=5.0)
    amount = buy_amount(costs, 1000.0, 60_000.0, decimals=8)
    gross = round(60_000.0 * amount, 4)
    assert gross + costs.fee(gross) <= 1000.0 < round(60_000.0 * (amount + 1e-7), 4) + 5.0


# --- the samples ----------------------------------------------------------------------------


def test_the_cn_sample_is_labelled_synthetic_in_shanghai_time():
    meta = sample_payload("600519.SH", [date(2025, 10, 9)], 1, CN_DAILY)["Meta Data"]
    assert meta["6. Note"].startswith("SYNTHETIC")
    assert meta["5. Time Zone"] == "Asia/Shanghai"


def test_the_cn_sample_has_bars_only_on_sse_trading_days(tmp_path):
    generate_sample(["600519.SH"], tmp_path, days=30, market=CN_DAILY)
    payload = json.loads((tmp_path / "daily_prices_600519.SH.json").read_text())
    days = sorted(payload["Time Series (Daily)"])
    assert days == [d.isoformat() for d in SSE.days_ending(date(2025, 10, 31), 30)]
    assert "2025-10-08" not in days
    assert "2025-10-11" not in days


def test_the_crypto_sample_has_a_bar_every_day(tmp_path):
    generate_sample(["BTC"], tmp_path, days=14, market=CRYPTO_DAILY)
    payload = json.loads((tmp_path / "daily_prices_BTC.json").read_text())
    series = payload["Time Series (Daily)"]
    assert len(series) == 14
    assert "2025-10-25" in series


@pytest.mark.parametrize("market", [CN_DAILY, CRYPTO_DAILY], ids=["cn", "crypto"])
def test_a_markets_sample_is_the_same_bytes_on_every_run(tmp_path, market):
    symbol = market.symbols[0]
    for folder in ("a", "b"):
        generate_sample([symbol], tmp_path / folder, days=20, market=market)
    name = f"daily_prices_{symbol}.json"
    assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.mark.parametrize("market", [CN_DAILY, CRYPTO_DAILY], ids=["cn", "crypto"])
def test_a_markets_sample_passes_the_merges_own_checks(market):
    symbol = market.benchmark
    days = market.calendar.days_ending(date(2025, 10, 31), 10)
    assert check_reply(symbol, sample_payload(symbol, days, 7, market))["Meta Data"]


# --- the example configs --------------------------------------------------------------------

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize(
    ("name", "market"),
    [
        ("cn_daily_config.json", CN_DAILY),
        ("crypto_daily_config.json", CRYPTO_DAILY),
        ("us_hourly_config.json", US_HOURLY),
        ("cn_hourly_config.json", CN_HOURLY),
    ],
)
def test_each_markets_example_config_names_its_market_and_its_cash(name, market):
    config = load_config(CONFIGS / name)
    assert market_for(config.market, config.frequency) is market
    assert config.agent_config.initial_cash == market.initial_cash


# --- the market of a folder of books ----------------------------------------------------------


def test_books_whose_manifests_name_no_market_are_us_books():
    assert market_of_books([None, {"models": []}], "books") is US_DAILY


def test_books_whose_manifests_name_cn_are_cn_books():
    assert market_of_books([None, {"market": "cn"}], "books") is CN_DAILY


def test_books_of_two_markets_in_one_folder_are_one_line_refused():
    with pytest.raises(UserError, match=r"^books: books of several markets \(cn, us\)"):
        market_of_books([{"market": "cn"}, {}], "books")


# --- the US daily tools, as before markets ----------------------------------------------------


def test_the_us_daily_tools_are_listed_byte_for_byte_as_before_markets(services):
    """Names, descriptions and schemas of every tool of the four US daily services, against
    their listing before markets existed (``us_daily_tools.json``): a recorded run's
    responses are keyed on them."""
    from support import tool_listing

    listed = {
        name: tool_listing(services.url(name)) for name in ("math", "search", "trade", "prices")
    }
    expected = json.loads((Path(__file__).with_name("us_daily_tools.json")).read_text())
    assert listed == expected
