"""Hourly markets (US and SSE-50): their slots, the sample, no look-ahead within a day over
real MCP, T+1 across the slots of a day, and whole offline runs over the real CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from support import Services, cli_env, run_cli, tool_error, tool_value

from ai_trader.agent.builtin import Move, plan_sells
from ai_trader.agent.runner import trading_days
from ai_trader.context import RunContext
from ai_trader.errors import UserError
from ai_trader.layout import BookPaths, books_dir, merged_file, price_file
from ai_trader.market.cn import CN_HOURLY
from ai_trader.market.markets import market_for
from ai_trader.market.merge import merge
from ai_trader.market.pricebook import PriceBook
from ai_trader.market.sample import generate_sample
from ai_trader.market.us import US_DAILY, US_HOURLY

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
STOCK = "600519.SH"
DAY = "2025-10-29"
FIRST, SECOND, LAST = f"{DAY} 10:30:00", f"{DAY} 11:30:00", f"{DAY} 15:00:00"
NEXT_DAY_FIRST = "2025-10-30 10:30:00"


# --- the markets ------------------------------------------------------------------------------


def test_us_hourly_trades_six_slots_a_day_over_1512_periods_a_year():
    market = market_for("us", "hourly")
    assert market is US_HOURLY
    assert market.slots == ("10:00:00", "11:00:00", "12:00:00", "13:00:00", "14:00:00", "15:00:00")
    assert market.periods_per_year == 252 * 6


def test_cn_hourly_trades_the_four_sse_slots_under_t_plus_1_in_lots_of_100():
    market = market_for("cn", "hourly")
    assert market is CN_HOURLY
    assert market.slots == ("10:30:00", "11:30:00", "14:00:00", "15:00:00")
    assert (market.lot_size, market.settlement_days, market.periods_per_year) == (100, 1, 968)


# --- which slots a run trades -----------------------------------------------------------------

SLOTS = [f"2025-10-{d} {t}" for d in ("20", "21") for t in ("10:30:00", "15:00:00")]


def test_no_slot_of_the_init_date_is_traded():
    assert trading_days(SLOTS, "2025-10-20", "2025-10-21") == SLOTS[2:]


def test_every_slot_of_the_end_date_is_traded():
    assert trading_days(SLOTS, "", "2025-10-21") == SLOTS


def test_a_book_committed_through_a_slot_resumes_at_the_next_slot():
    assert trading_days(SLOTS, SLOTS[1], "2025-10-21") == SLOTS[2:]


def test_daily_days_are_chosen_as_before():
    days = ["2025-10-20", "2025-10-21", "2025-10-22"]
    assert trading_days(days, "2025-10-20", "2025-10-21") == ["2025-10-21"]


# --- the sample and the price file ------------------------------------------------------------


def test_the_hourly_sample_has_each_slot_of_each_sse_trading_day(tmp_path: Path):
    generate_sample([STOCK], tmp_path, market=CN_HOURLY)
    payload = json.loads(price_file(tmp_path, STOCK).read_text())
    slots = sorted(payload["Time Series (60min)"])
    days = CN_HOURLY.calendar.days_ending(date(2025, 10, 31), CN_HOURLY.sample.days)
    assert slots == sorted(CN_HOURLY.moments(days))
    assert "SYNTHETIC" in payload["Meta Data"]["6. Note"]


def test_the_hourly_sample_is_byte_identical_when_made_twice(tmp_path: Path):
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        folder.mkdir()
        generate_sample([STOCK], folder, market=CN_HOURLY)
    assert price_file(first, STOCK).read_bytes() == price_file(second, STOCK).read_bytes()


def test_an_hourly_merge_keeps_only_the_open_of_the_newest_slot(tmp_path: Path):
    generate_sample([STOCK], tmp_path, market=CN_HOURLY)
    merge(tmp_path, [STOCK], CN_HOURLY.series_key)
    book = PriceBook.load(merged_file(tmp_path))
    assert book.hourly
    assert set(book.bar(STOCK, "2025-10-31 15:00:00") or {}) == {"open"}
    assert set(book.bar(STOCK, "2025-10-31 14:00:00") or {}) >= {"open", "close"}


def test_an_hourly_merge_reports_a_daily_file_as_unusable(tmp_path: Path):
    generate_sample(["AAPL"], tmp_path, market=US_DAILY)
    generate_sample(["QQQ"], tmp_path, market=US_HOURLY)
    report = merge(tmp_path, ["AAPL", "QQQ"], US_HOURLY.series_key)
    assert report.merged == ["QQQ"]
    assert report.skipped["daily_prices_AAPL.json"] == (
        "it holds 'Time Series (Daily)', not the 'Time Series (60min)' this market trades on"
    )


def test_a_merged_file_mixing_daily_and_hourly_bars_is_refused_in_one_line(tmp_path: Path):
    daily, hourly = tmp_path / "daily", tmp_path / "hourly"
    for folder, market in ((daily, US_DAILY), (hourly, US_HOURLY)):
        folder.mkdir()
        generate_sample(["QQQ"], folder, market=market)
        merge(folder, ["QQQ"], market.series_key)
    mixed = tmp_path / "merged.jsonl"
    mixed.write_bytes(merged_file(daily).read_bytes() + merged_file(hourly).read_bytes())
    with pytest.raises(UserError) as refused:
        PriceBook.load(mixed)
    assert str(refused.value).startswith(f"{mixed} mixes daily and hourly bars;")


# --- the built-in strategy under T+1 ----------------------------------------------------------


def test_the_strategy_sells_only_what_t_plus_1_has_not_locked_in_whole_lots():
    fell = [Move(STOCK, -0.01)]
    assert plan_sells(fell, {STOCK: 350}, {STOCK: 200}, lot=100) == [(STOCK, 100)]


def test_the_strategy_does_not_sell_a_holding_bought_in_an_earlier_slot_today():
    assert plan_sells([Move(STOCK, -0.01)], {STOCK: 200}, {STOCK: 200}, lot=100) == []


# --- no look-ahead within a day, over MCP -----------------------------------------------------


def context_at(context: RunContext, slot: str) -> RunContext:
    return RunContext(context.signature, slot, context.books, context.token,
                      market=context.market)  # fmt: skip


def price(services: Services, context: RunContext, slot: str) -> Any:
    return tool_value(services.url("prices"), "get_price_local", {"symbol": STOCK, "date": slot},
                      context)  # fmt: skip


def test_a_slot_sees_the_whole_bar_of_an_earlier_slot_of_its_day(cn_hourly_services: Services):
    session = cn_hourly_services.start_session(market=CN_HOURLY, today=SECOND)
    assert set(price(cn_hourly_services, session.context, FIRST)["ohlcv"]) >= {"open", "close"}


def test_a_slot_sees_only_the_open_of_its_own_bar(cn_hourly_services: Services):
    session = cn_hourly_services.start_session(market=CN_HOURLY, today=SECOND)
    assert set(price(cn_hourly_services, session.context, SECOND)["ohlcv"]) == {"open"}


def test_a_slot_cannot_see_a_later_slot_of_its_own_day(cn_hourly_services: Services):
    session = cn_hourly_services.start_session(market=CN_HOURLY, today=SECOND)
    error = tool_error(cn_hourly_services.url("prices"), "get_price_local",
                       {"symbol": STOCK, "date": LAST}, session.context)  # fmt: skip
    assert error == f"{LAST} is after today ({SECOND}): future prices are not available"


def test_the_hourly_prices_tool_asks_for_a_slot_not_a_day(cn_hourly_services: Services):
    session = cn_hourly_services.start_session(market=CN_HOURLY, today=SECOND)
    error = tool_error(cn_hourly_services.url("prices"), "get_price_local",
                       {"symbol": STOCK, "date": DAY}, session.context)  # fmt: skip
    assert error.startswith("invalid arguments: date")


def test_a_daily_context_is_refused_by_the_hourly_services(cn_hourly_services: Services):
    session = cn_hourly_services.start_session(today=DAY)  # a US daily run's context
    error = tool_error(cn_hourly_services.url("trade"), "buy", {"symbol": STOCK, "amount": 100},
                       session.context)  # fmt: skip
    assert error == (
        "this trade service serves the cn-hourly market, the run trades us: serve with --market us"
    )


# --- T+1 across the slots of a day, over MCP --------------------------------------------------


def bought_in_the_first_slot(services: Services) -> Any:
    session = services.start_session(cash=1e5, market=CN_HOURLY, today=FIRST)
    tool_value(services.url("trade"), "buy", {"symbol": STOCK, "amount": 100}, session.context)
    session.ledger.commit_day(FIRST)
    return session


def test_a_later_slot_of_the_day_of_purchase_cannot_sell_it(cn_hourly_services: Services):
    session = bought_in_the_first_slot(cn_hourly_services)
    error = tool_error(cn_hourly_services.url("trade"), "sell", {"symbol": STOCK, "amount": 100},
                       context_at(session.context, SECOND))  # fmt: skip
    assert error.startswith(f"T+1: 100 of the 100 {STOCK} held were bought today")
    assert not session.ledger.pending_file.exists()


def test_the_first_slot_of_the_next_day_can_sell_it(cn_hourly_services: Services):
    session = bought_in_the_first_slot(cn_hourly_services)
    answer = tool_value(cn_hourly_services.url("trade"), "sell",
                        {"symbol": STOCK, "amount": 100},
                        context_at(session.context, NEXT_DAY_FIRST))  # fmt: skip
    assert STOCK not in answer["positions"]


def test_a_us_hourly_slot_can_sell_what_an_earlier_slot_bought(us_hourly_services: Services):
    first, second = "2025-10-29 10:00:00", "2025-10-29 11:00:00"
    session = us_hourly_services.start_session(market=US_HOURLY, today=first)
    url = us_hourly_services.url("trade")
    tool_value(url, "buy", {"symbol": "AAPL", "amount": 3}, session.context)
    session.ledger.commit_day(first)
    answer = tool_value(url, "sell", {"symbol": "AAPL", "amount": 3},
                        context_at(session.context, second))  # fmt: skip
    assert "AAPL" not in answer["positions"]


# --- whole offline runs -----------------------------------------------------------------------


def run_config(services: Services, name: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    """`ai-trader run` of an example config with its books in a new folder."""
    config = json.loads((CONFIGS / name).read_text())
    books = services.new_books()
    config["log_config"] = {"log_path": str(books)}
    path = books.parent / f"{books.name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config))
    signature = config["models"][0]["signature"]
    return run_cli("run", str(path), env=services.env, timeout=300), books / signature


def rows_of(book: Path) -> list[dict[str, Any]]:
    lines = BookPaths(book).position_file.read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def us_hourly_run(us_hourly_services: Services):
    return run_config(us_hourly_services, "us_hourly_config.json")


@pytest.fixture(scope="module")
def cn_hourly_run(cn_hourly_services: Services):
    return run_config(cn_hourly_services, "cn_hourly_config.json")


def test_an_offline_us_hourly_run_ends_well(us_hourly_run):
    result, _ = us_hourly_run
    assert result.returncode == 0, result.stderr


def test_an_offline_us_hourly_run_trades_every_slot_of_each_nyse_day(us_hourly_run):
    _, book = us_hourly_run
    slots = sorted({row["date"] for row in rows_of(book)[1:]})
    days = [f"2025-10-{d}" for d in ("21", "22", "23", "24", "27", "28", "29", "30", "31")]
    assert slots == US_HOURLY.moments([date.fromisoformat(day) for day in days])


def test_the_hourly_runs_summary_counts_slots(us_hourly_run):
    result, _ = us_hourly_run
    header = result.stdout.splitlines()[0].split()
    assert header[:3] == ["signature", "slots", "final"]
    assert result.stdout.splitlines()[1].split()[1] == str(9 * 6)


def test_an_offline_cn_hourly_run_never_sells_what_it_bought_that_day(cn_hourly_run):
    result, book = cn_hourly_run
    assert result.returncode == 0, result.stderr
    bought: dict[tuple[str, str], float] = {}
    for row in rows_of(book)[1:]:
        action, day = row["this_action"], row["date"][:10]
        key = (day, action.get("symbol", ""))
        if action["action"] == "buy":
            bought[key] = bought.get(key, 0) + action["amount"]
        elif action["action"] == "sell":
            held_before = row["positions"].get(action["symbol"], 0) + action["amount"]
            assert action["amount"] <= held_before - bought.get(key, 0)


def test_an_offline_cn_hourly_run_buys_in_whole_lots(cn_hourly_run):
    _, book = cn_hourly_run
    buys = [r["this_action"]["amount"] for r in rows_of(book)[1:]
            if r["this_action"]["action"] == "buy"]  # fmt: skip
    assert buys
    assert all(amount % 100 == 0 for amount in buys)


def test_a_second_hourly_run_finds_every_slot_done(us_hourly_services: Services, us_hourly_run):
    _, book = us_hourly_run
    before = BookPaths(book).position_file.read_bytes()
    config = book.parent.parent / f"{book.parent.name}.json"
    again = run_cli("run", str(config), env=us_hourly_services.env, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stderr
    assert BookPaths(book).position_file.read_bytes() == before


def test_the_us_hourly_report_annualises_over_1512_periods(
    us_hourly_services: Services, us_hourly_run
):
    _, book = us_hourly_run
    done = run_cli("report", "--books", str(book.parent), "--format", "json",
                   env=us_hourly_services.env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["periods_per_year"] == 1512


def test_the_us_hourly_markdown_report_counts_slots(us_hourly_services: Services, us_hourly_run):
    _, book = us_hourly_run
    done = run_cli("report", "--books", str(book.parent), "--format", "md",
                   env=us_hourly_services.env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "| # | model | period | slots | final value |" in done.stdout


def test_the_cn_hourly_dashboard_annualises_over_968_periods(cn_hourly_data, cn_hourly_run,
                                                             tmp_path: Path):  # fmt: skip
    from ai_trader.dashboard import data

    _, book = cn_hourly_run
    shutil.copy(merged_file(cn_hourly_data.data_dir), merged_file(tmp_path))
    shutil.copytree(book.parent, books_dir(tmp_path))
    (model,) = data.summarise(tmp_path)["signatures"]
    assert model["metrics"]["model"]["periods_per_year"] == 968


# --- the wrong data for the config ------------------------------------------------------------


def test_a_daily_config_on_hourly_prices_is_one_line_and_exit_2(us_hourly_data, tmp_path: Path):
    config = tmp_path / "daily.json"
    config.write_text(json.dumps({
        "date_range": {"init_date": "2025-10-20", "end_date": "2025-10-31"},
        "models": [{"name": "m", "basemodel": "builtin/momentum", "signature": "m"}],
    }))  # fmt: skip
    env = cli_env({"DATA_DIR": str(us_hourly_data.data_dir)})
    result = run_cli("run", str(config), env=env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"ai-trader run: error: {merged_file(us_hourly_data.data_dir)} holds hourly bars, and "
        "the config trades us (daily): fetch and merge with --market us, into a data folder of "
        "its own"
    ]


def test_fetch_for_us_hourly_refuses_a_folder_of_daily_us_prices(offline_data):
    env = cli_env({"DATA_DIR": str(offline_data.data_dir)})
    result = run_cli("fetch", "--market", "us-hourly", env=env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"ai-trader fetch: error: {offline_data.data_dir} holds daily prices of the us market "
        "(daily_prices_AAPL.json); a us-hourly run needs a data folder of its own (one data "
        "folder per market and frequency)"
    ]
