"""Each market over the real CLI and real MCP, offline: `fetch --market`, `merge --market`
and `serve --market` in the session fixtures (conftest.py), the trade service's rules as
tool errors, and a whole `ai-trader run` of the built-in strategy per market."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support import Services, cli_env, run_cli, tool_error, tool_value

from ai_trader.context import RunContext
from ai_trader.dashboard import data
from ai_trader.dashboard.page import render_page
from ai_trader.layout import BookPaths, books_dir, merged_file
from ai_trader.market.cn import CN_DAILY
from ai_trader.market.crypto import CRYPTO_DAILY

SSE_DAY, SSE_NEXT = "2025-10-29", "2025-10-30"
STOCK = "600519.SH"


# --- the trade service's rules, over MCP ------------------------------------------------------


def test_an_sse_buy_of_50_shares_is_refused_in_one_line(cn_services: Services):
    session = cn_services.start_session(cash=1e5, market=CN_DAILY, today=SSE_DAY)
    error = tool_error(cn_services.url("trade"), "buy", {"symbol": STOCK, "amount": 50},
                       session.context)  # fmt: skip
    assert error.startswith(f"{STOCK} trades in lots of 100 shares: a buy must be a multiple")
    assert not session.ledger.pending_file.exists()


def test_an_sse_buy_of_100_shares_goes_through(cn_services: Services):
    session = cn_services.start_session(cash=1e5, market=CN_DAILY, today=SSE_DAY)
    answer = tool_value(cn_services.url("trade"), "buy", {"symbol": STOCK, "amount": 100},
                        session.context)  # fmt: skip
    assert answer["positions"][STOCK] == 100


def test_an_sse_sell_on_the_day_of_purchase_is_refused(cn_services: Services):
    session = cn_services.start_session(cash=1e5, market=CN_DAILY, today=SSE_DAY)
    url = cn_services.url("trade")
    tool_value(url, "buy", {"symbol": STOCK, "amount": 100}, session.context)
    error = tool_error(url, "sell", {"symbol": STOCK, "amount": 100}, session.context)
    assert error.startswith(f"T+1: 100 of the 100 {STOCK} held were bought today")


def test_an_sse_sell_the_next_trading_day_goes_through(cn_services: Services):
    session = cn_services.start_session(cash=1e5, market=CN_DAILY, today=SSE_DAY)
    url = cn_services.url("trade")
    tool_value(url, "buy", {"symbol": STOCK, "amount": 100}, session.context)
    session.ledger.commit_day(SSE_DAY)
    context = session.context
    next_day = RunContext(context.signature, SSE_NEXT, context.books, context.token,
                          market=context.market)  # fmt: skip
    answer = tool_value(url, "sell", {"symbol": STOCK, "amount": 100}, next_day)
    assert STOCK not in answer["positions"]


def test_a_us_call_to_the_cn_services_is_refused_naming_the_market(cn_services: Services):
    session = cn_services.start_session(cash=1e5, today=SSE_DAY)  # a US context
    error = tool_error(cn_services.url("trade"), "buy", {"symbol": STOCK, "amount": 100},
                       session.context)  # fmt: skip
    assert error == (
        "this trade service serves the cn market, the run trades us: serve with --market us"
    )


def test_the_cn_prices_service_answers_an_sse_symbol(cn_services: Services):
    session = cn_services.start_session(market=CN_DAILY, today=SSE_DAY)
    answer = tool_value(cn_services.url("prices"), "get_price_local",
                        {"symbol": STOCK, "date": SSE_DAY}, session.context)  # fmt: skip
    assert set(answer["ohlcv"]) == {"open"}


def test_0_0015_btc_can_be_bought(crypto_services: Services):
    session = crypto_services.start_session(cash=5e4, market=CRYPTO_DAILY, today="2025-10-25")
    answer = tool_value(crypto_services.url("trade"), "buy", {"symbol": "BTC", "amount": 0.0015},
                        session.context)  # fmt: skip
    assert (answer["amount"], answer["positions"]["BTC"]) == (0.0015, 0.0015)


def test_a_crypto_amount_finer_than_8_decimals_is_refused(crypto_services: Services):
    session = crypto_services.start_session(cash=5e4, market=CRYPTO_DAILY, today="2025-10-25")
    error = tool_error(crypto_services.url("trade"), "buy",
                       {"symbol": "BTC", "amount": 0.000000001}, session.context)  # fmt: skip
    assert "more than 8 decimal places" in error


def test_a_crypto_amount_written_as_a_string_is_refused(crypto_services: Services):
    session = crypto_services.start_session(cash=5e4, market=CRYPTO_DAILY, today="2025-10-25")
    error = tool_error(crypto_services.url("trade"), "buy", {"symbol": "BTC", "amount": "0.5"},
                       session.context)  # fmt: skip
    assert error.startswith("invalid arguments: amount")
    assert not session.ledger.pending_file.exists()


# --- a whole run per market -------------------------------------------------------------------


def write_config(folder: Path, log_path: Path, market: str, init: str, end: str) -> Path:
    path = folder / "config.json"
    model = {"name": "momentum", "basemodel": "builtin/momentum", "signature": "momentum"}
    config = {
        "market": market,
        "date_range": {"init_date": init, "end_date": end},
        "models": [model],
        "log_config": {"log_path": str(log_path)},
    }
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


@dataclass
class MarketRun:
    result: subprocess.CompletedProcess[str]
    rows: list[dict[str, Any]]
    books: Path

    def __iter__(self) -> Iterator[Any]:
        return iter((self.result, self.rows))


def run_market(services: Services, folder: Path, market: str, init: str, end: str) -> MarketRun:
    log_path = services.new_books()
    config = write_config(folder, log_path, market, init, end)
    result = run_cli("run", str(config), env=services.env, timeout=180)
    position = BookPaths(log_path / "momentum").position_file
    rows = (
        [json.loads(line) for line in position.read_text().splitlines()]
        if position.exists()
        else []
    )
    return MarketRun(result, rows, log_path)


def report_of(services: Services, run: MarketRun, fmt: str) -> str:
    done = run_cli("report", "--books", str(run.books), "--format", fmt, env=services.env)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def cn_run(cn_services: Services, tmp_path_factory: pytest.TempPathFactory):
    return run_market(
        cn_services, tmp_path_factory.mktemp("cn-run"), "cn", "2025-10-20", "2025-10-31"
    )


@pytest.fixture(scope="module")
def crypto_run(crypto_services: Services, tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("crypto-run")
    return run_market(crypto_services, folder, "crypto", "2025-10-20", "2025-10-31")


def trades(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r["this_action"] for r in rows[1:] if r["this_action"]["action"] != "no_trade"]


def test_an_offline_cn_run_ends_well_and_starts_with_100000_yuan(cn_run):
    result, rows = cn_run
    assert result.returncode == 0, result.stderr
    assert rows[0]["positions"]["CASH"] == 100_000.0


def test_an_offline_cn_run_trades_sse_days_only(cn_run):
    _, rows = cn_run
    assert {r["date"] for r in rows[1:]} == {
        "2025-10-21", "2025-10-22", "2025-10-23", "2025-10-24", "2025-10-27",
        "2025-10-28", "2025-10-29", "2025-10-30", "2025-10-31",
    }  # fmt: skip


def test_an_offline_cn_run_buys_in_whole_lots(cn_run):
    _, rows = cn_run
    buys = [t["amount"] for t in trades(rows) if t["action"] == "buy"]
    assert buys
    assert all(amount % 100 == 0 for amount in buys)


def test_an_offline_cn_run_sums_up_against_the_sse_50_index(cn_run):
    result, _ = cn_run
    assert "000016.SH" in result.stdout.splitlines()[0]


def test_an_offline_crypto_run_ends_well_and_starts_with_50000_usdt(crypto_run):
    result, rows = crypto_run
    assert result.returncode == 0, result.stderr
    assert rows[0]["positions"]["CASH"] == 50_000.0


def test_an_offline_crypto_run_trades_every_day_weekends_too(crypto_run):
    _, rows = crypto_run
    assert {r["date"] for r in rows[1:]} >= {"2025-10-25", "2025-10-26"}
    assert len({r["date"] for r in rows[1:]}) == 11


def test_an_offline_crypto_run_buys_fractional_coins(crypto_run):
    _, rows = crypto_run
    buys = [t["amount"] for t in trades(rows) if t["action"] == "buy"]
    assert buys
    assert any(not float(amount).is_integer() for amount in buys)


def test_the_cn_report_names_the_yuan_and_the_sse_50_index(cn_services: Services, cn_run):
    text = report_of(cn_services, cn_run, "md")
    assert "| final value (CNY) |" in text
    assert "Market: SSE-50 (cn, daily), money in CNY, against 000016.SH." in text


def test_the_cn_report_annualises_over_242_periods(cn_services: Services, cn_run):
    document = json.loads(report_of(cn_services, cn_run, "json"))
    assert document["periods_per_year"] == 242
    assert document["market"]["currency"] == "CNY"


def test_the_cn_reports_benchmark_row_is_the_sse_50_index(cn_services: Services, cn_run):
    document = json.loads(report_of(cn_services, cn_run, "json"))
    assert [row["model"] for row in document["rows"] if row["benchmark"]] == ["000016.SH"]


def test_the_crypto_report_annualises_over_365_days_in_usdt(crypto_services: Services, crypto_run):
    document = json.loads(report_of(crypto_services, crypto_run, "json"))
    assert (document["periods_per_year"], document["market"]["currency"]) == (365, "USDT")


@pytest.fixture(scope="module")
def cn_dashboard(cn_data, cn_run, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The dashboard's summary of a data folder holding the cn run's book and prices."""
    folder = tmp_path_factory.mktemp("cn-dashboard")
    shutil.copy(merged_file(cn_data.data_dir), merged_file(folder))
    shutil.copytree(cn_run.books, books_dir(folder))
    return data.summarise(folder)


def test_the_cn_dashboard_draws_the_sse_50_index(cn_dashboard):
    assert cn_dashboard["benchmark"]["symbol"] == "000016.SH"
    assert cn_dashboard["benchmark"]["points"]


def test_the_cn_dashboard_names_the_yuan(cn_dashboard):
    assert cn_dashboard["market"]["currency"] == "CNY"
    assert "<th class=num>value (CNY)</th>" in render_page(cn_dashboard)


def test_the_cn_dashboard_annualises_over_242_periods(cn_dashboard):
    (model,) = cn_dashboard["signatures"]
    assert model["metrics"]["model"]["periods_per_year"] == 242


def test_a_config_naming_an_unknown_market_is_one_line_and_exit_2(tmp_path: Path):
    config = write_config(tmp_path, tmp_path / "books", "jp", "2025-10-20", "2025-10-31")
    result = run_cli("run", str(config), env=cli_env({"DATA_DIR": str(tmp_path)}))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"ai-trader run: error: config {config}: market: unknown market 'jp' "
        "(known: us, cn, crypto)"
    ]


def test_merge_with_an_unknown_market_is_one_line_and_exit_2(tmp_path: Path):
    result = run_cli("merge", "--market", "jp", env=cli_env({"DATA_DIR": str(tmp_path)}))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "ai-trader merge: error: --market: unknown market 'jp' "
        "(known: us, us-hourly, cn, cn-hourly, crypto)"
    ]
