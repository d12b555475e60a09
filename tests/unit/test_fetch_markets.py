"""Real prices for the crypto and China A-share markets: `ai-trader fetch --market crypto|cn`
as a child process against the local stand-ins of Alpha Vantage's DIGITAL_CURRENCY_DAILY and
Tushare Pro's HTTP API (reached through ALPHAVANTAGE_BASE_URL and TUSHARE_BASE_URL), then
`merge --market` and a whole offline-strategy `run` of the market's example config on what
was fetched; and the fetch's rules (retries, bad replies, the incremental skip, BASKET's
refusal, Tushare's errors) against the same stand-ins."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from support import cli_env, run_cli, running_services, service_env

from ai_trader.layout import BookPaths, merged_file, price_file
from ai_trader.market import alphavantage, tushare
from ai_trader.market.basket import BasketRefused, basket_payload
from ai_trader.market.cn import CN_DAILY
from ai_trader.market.crypto import COINS, CRYPTO_DAILY
from ai_trader.market.us import US_HOURLY
from standins import StandIns

ROOT = Path(__file__).resolve().parents[2]
KEY = "av-key-7731"
TOKEN = "tushare-token-5512"  # noqa: S105 - the stand-in's, no one's real token
DAY = 24 * 3600
# The stand-ins' newest days: past the example configs' last day (2025-10-31).
CRYPTO_LAST = "2025-11-03"
SSE_LAST = "2025-10-31"
SCENARIO = {
    "last_refreshed": CRYPTO_LAST,
    "tushare": {"tokens": [TOKEN], "last_trade_date": SSE_LAST},
}


@pytest.fixture(scope="module")
def standins() -> Iterator[StandIns]:
    with StandIns(SCENARIO) as running:
        yield running


@pytest.fixture
def fresh(standins: StandIns) -> StandIns:
    """The module's stand-ins with the scenario and counters as new."""
    standins.set_scenario(SCENARIO)
    return standins


def crypto_env(standins: StandIns, data_dir: Path) -> dict[str, str]:
    return cli_env(
        {
            "DATA_DIR": str(data_dir),
            "ALPHAADVANTAGE_API_KEY": KEY,
            "ALPHAVANTAGE_BASE_URL": standins.alphavantage_url,
            "ALPHAVANTAGE_MIN_INTERVAL": "0",
        }
    )


def cn_env(standins: StandIns, data_dir: Path, token: str = TOKEN) -> dict[str, str]:
    return cli_env(
        {
            "DATA_DIR": str(data_dir),
            "TUSHARE_TOKEN": token,
            "TUSHARE_BASE_URL": standins.tushare_url,
            "TUSHARE_MIN_INTERVAL": "0",
        }
    )


def read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


@dataclass
class Fetched:
    data_dir: Path
    fetch: subprocess.CompletedProcess[str]
    merge: subprocess.CompletedProcess[str]
    stats: dict[str, Any]


def fetch_and_merge(env: dict[str, str], data_dir: Path, market: str, s: StandIns) -> Fetched:
    s.set_scenario(SCENARIO)
    fetch = run_cli("fetch", "--market", market, env=env)
    stats = s.stats()
    merge = run_cli("merge", "--market", market, env=env)
    return Fetched(data_dir, fetch, merge, stats)


@pytest.fixture(scope="module")
def crypto_data(standins: StandIns, tmp_path_factory: pytest.TempPathFactory) -> Fetched:
    data_dir = tmp_path_factory.mktemp("crypto-real")
    return fetch_and_merge(crypto_env(standins, data_dir), data_dir, "crypto", standins)


@pytest.fixture(scope="module")
def cn_data(standins: StandIns, tmp_path_factory: pytest.TempPathFactory) -> Fetched:
    data_dir = tmp_path_factory.mktemp("cn-real")
    return fetch_and_merge(cn_env(standins, data_dir), data_dir, "cn", standins)


def run_example(data: Fetched, market: str, config_name: str, folder: Path) -> dict[str, Any]:
    """`serve --market` over the fetched data, then `run` of the repository's example config
    (its own models and dates; only the books' folder set): the result and the book's rows."""
    log = folder / "serve.log"
    with running_services(service_env(data.data_dir), log, market=market) as services:
        books = services.new_books()
        config = read(ROOT / "configs" / config_name)
        config["log_config"] = {"log_path": str(books)}
        path = folder / config_name
        path.write_text(json.dumps(config), encoding="utf-8")
        result = run_cli("run", str(path), env=services.env, timeout=300)
        (model,) = config["models"]
        position = BookPaths(books / model["signature"]).position_file
        rows = (
            [json.loads(line) for line in position.read_text().splitlines()]
            if (position.exists())
            else []
        )
    return {"result": result, "rows": rows, "config": config}


@pytest.fixture(scope="module")
def crypto_run(crypto_data: Fetched, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_example(crypto_data, "crypto", "crypto_daily_config.json",
                       tmp_path_factory.mktemp("crypto-run"))  # fmt: skip


@pytest.fixture(scope="module")
def cn_run(cn_data: Fetched, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_example(cn_data, "cn", "cn_daily_config.json", tmp_path_factory.mktemp("cn-run"))


# --- crypto: the whole path ----------------------------------------------------------------


def test_crypto_fetch_with_a_key_writes_every_coin_and_the_basket(crypto_data: Fetched):
    assert crypto_data.fetch.returncode == 0, crypto_data.fetch.stderr
    assert all(price_file(crypto_data.data_dir, s).is_file() for s in CRYPTO_DAILY.all_symbols)


def test_crypto_fetch_asks_digital_currency_daily_once_per_coin(crypto_data: Fetched):
    by_symbol = crypto_data.stats["alphavantage"]["by_symbol"]
    assert by_symbol == dict.fromkeys(COINS, 1)


def test_a_coins_file_is_our_daily_shape_with_the_replys_own_prices(
    crypto_data: Fetched, fresh: StandIns
):
    import httpx

    stored = read(price_file(crypto_data.data_dir, "ETH"))
    reply = httpx.get(fresh.alphavantage_url, params={
        "function": "DIGITAL_CURRENCY_DAILY", "symbol": "ETH", "market": "USD", "apikey": "x"
    }).json()  # fmt: skip
    assert stored["Time Series (Daily)"] == reply["Time Series (Digital Currency Daily)"]
    assert stored["Meta Data"]["2. Symbol"] == "ETH"
    assert stored["Meta Data"]["3. Last Refreshed"] == f"{CRYPTO_LAST} 00:00:00"
    assert "prices in US dollars, standing in for USDT" in stored["Meta Data"]["6. Source"]


def test_the_crypto_merge_takes_the_fetched_files(crypto_data: Fetched):
    assert crypto_data.merge.returncode == 0, crypto_data.merge.stderr
    lines = merged_file(crypto_data.data_dir).read_text().splitlines()
    assert sorted(json.loads(line)["Meta Data"]["2. Symbol"] for line in lines) == sorted(
        CRYPTO_DAILY.all_symbols
    )


def test_the_basket_opens_at_1000_on_the_first_day_every_coin_has(crypto_data: Fetched):
    series = read(price_file(crypto_data.data_dir, "BASKET"))["Time Series (Daily)"]
    first = min(series)
    assert first == min(read(price_file(crypto_data.data_dir, "BTC"))["Time Series (Daily)"])
    assert series[first]["1. open"] == "1000.0000"


def test_a_basket_days_return_is_the_mean_of_the_coins_returns(crypto_data: Fetched):
    day, previous = "2025-10-20", "2025-10-19"
    series = read(price_file(crypto_data.data_dir, "BASKET"))["Time Series (Daily)"]
    returns = []
    for coin in COINS:
        bars = read(price_file(crypto_data.data_dir, coin))["Time Series (Daily)"]
        returns.append(float(bars[day]["4. close"]) / float(bars[previous]["4. close"]))
    basket = float(series[day]["4. close"]) / float(series[previous]["4. close"])
    assert basket == pytest.approx(sum(returns) / len(returns), rel=1e-6)


def test_an_example_crypto_run_trades_the_fetched_prices_to_the_end(crypto_run):
    result, rows = crypto_run["result"], crypto_run["rows"]
    assert result.returncode == 0, result.stderr
    assert rows[0]["positions"]["CASH"] == 50_000.0
    assert rows[-1]["date"] == crypto_run["config"]["date_range"]["end_date"]


# --- crypto: the fetch's rules --------------------------------------------------------------


def test_a_second_crypto_fetch_asks_nothing_for_current_files(fresh: StandIns, tmp_path: Path):
    env = crypto_env(fresh, tmp_path)
    assert run_cli("fetch", "--market", "crypto", env=env).returncode == 0
    fresh.reset()
    again = run_cli("fetch", "--market", "crypto", env=env)
    assert again.returncode == 0, again.stderr
    assert fresh.stats()["alphavantage"]["requests"] == 0


def test_the_basket_is_refused_in_one_line_when_a_coin_failed(fresh: StandIns, tmp_path: Path):
    fresh.set_scenario({**SCENARIO, "coins": [c for c in COINS if c != "DOT"]})
    result = run_cli("fetch", "--market", "crypto", env=crypto_env(fresh, tmp_path))
    assert result.returncode == 1
    refusals = [line for line in result.stderr.splitlines() if "BASKET" in line]
    assert refusals == ["fetch: BASKET not written: DOT has no price file"]
    assert not price_file(tmp_path, "BASKET").exists()


def crypto_fetch(s: StandIns, data_dir: Path, sleeps: list[float], **options: Any):
    settings: dict[str, Any] = {
        "api_key": KEY, "base_url": s.alphavantage_url, "min_interval": 0,
        "today": date(2025, 11, 4), "sleep": sleeps.append, "progress": False,
        "series": alphavantage.DIGITAL_CURRENCY_DAILY,
    }  # fmt: skip
    settings.update(options)
    return alphavantage.fetch_all(["BTC"], data_dir, **settings)


def test_a_rate_limited_crypto_reply_is_retried_with_backoff(fresh: StandIns, tmp_path: Path):
    fresh.set_scenario({**SCENARIO, "rate_limit": {"BTC": 1}, "information": {"BTC": 1}})
    sleeps: list[float] = []
    report = crypto_fetch(fresh, tmp_path, sleeps)
    assert report.fetched == ["BTC"]
    assert fresh.stats()["alphavantage"]["by_symbol"] == {"BTC": 3}
    assert sleeps == [2.0, 4.0]


def test_a_bad_crypto_reply_never_replaces_a_good_file(fresh: StandIns, tmp_path: Path):
    crypto_fetch(fresh, tmp_path, [])
    good = price_file(tmp_path, "BTC")
    age(good, 2 * DAY)
    before = good.read_bytes()
    fresh.set_scenario({**SCENARIO, "coins": ["ETH"]})  # BTC now gets "Invalid API call"
    report = crypto_fetch(fresh, tmp_path, [], today=date(2025, 11, 10))
    assert report.errors["BTC"].startswith("Invalid API call")
    assert good.read_bytes() == before


def test_crypto_freshness_counts_weekends(fresh: StandIns, tmp_path: Path):
    # Refreshed on Friday and fetched again on Monday: current for the NYSE, not for crypto.
    fresh.set_scenario({**SCENARIO, "last_refreshed": "2025-10-31"})
    crypto_fetch(fresh, tmp_path, [])
    age(price_file(tmp_path, "BTC"), 2 * DAY)
    fresh.reset()
    report = crypto_fetch(fresh, tmp_path, [], today=date(2025, 11, 3))
    assert report.current == []
    assert fresh.stats()["alphavantage"]["by_symbol"] == {"BTC": 1}


def test_a_reply_for_another_quote_currency_is_not_written(tmp_path: Path):
    reply = {
        "Meta Data": {"2. Digital Currency Code": "BTC", "4. Market Code": "EUR"},
        "Time Series (Digital Currency Daily)": {"2025-11-03": {"1. open": "1", "4. close": "1"}},
    }
    with pytest.raises(alphavantage.Failed, match="its market is 'EUR', not 'USD'"):
        alphavantage.crypto_daily_file("BTC", reply)


def test_the_basket_starts_on_the_first_day_every_coin_has(fresh: StandIns, tmp_path: Path):
    fresh.set_scenario({**SCENARIO, "coin_first_day": {"SOL": "2025-10-01"}})
    alphavantage.fetch_all(
        COINS, tmp_path, api_key=KEY, base_url=fresh.alphavantage_url, min_interval=0,
        progress=False, series=alphavantage.DIGITAL_CURRENCY_DAILY,
    )  # fmt: skip
    series = basket_payload(tmp_path, COINS, "BASKET")["Time Series (Daily)"]
    assert min(series) == "2025-10-01"
    assert series["2025-10-01"]["1. open"] == "1000.0000"


def test_the_basket_is_refused_for_an_unusable_coin_file(tmp_path: Path):
    for coin in ("BTC", "ETH"):
        price_file(tmp_path, coin).write_text("{ truncated")
    with pytest.raises(BasketRefused, match="BTC's price file is unreadable"):
        basket_payload(tmp_path, ["BTC", "ETH"], "BASKET")


# --- China A-shares: the whole path ---------------------------------------------------------


def test_cn_fetch_with_a_token_writes_every_stock_and_the_index(cn_data: Fetched):
    assert cn_data.fetch.returncode == 0, cn_data.fetch.stderr
    assert all(price_file(cn_data.data_dir, s).is_file() for s in CN_DAILY.all_symbols)


def test_cn_fetch_asks_daily_for_stocks_and_index_daily_for_the_index(cn_data: Fetched):
    bodies = cn_data.stats["tushare"]["bodies"]
    apis = {body["params"]["ts_code"]: body["api_name"] for body in bodies}
    assert len(bodies) == len(CN_DAILY.all_symbols)
    assert apis["000016.SH"] == "index_daily"
    assert {apis[s] for s in CN_DAILY.symbols} == {"daily"}
    assert all(body["token_given"] for body in bodies)


def test_a_stocks_file_holds_sse_sessions_with_volume_in_shares(cn_data: Fetched):
    stored = read(price_file(cn_data.data_dir, "600519.SH"))
    october = [day for day in stored["Time Series (Daily)"] if day.startswith("2025-10")]
    assert min(october) == "2025-10-09"  # the National Day holiday closed 1 to 8 October
    assert stored["Meta Data"]["3. Last Refreshed"] == SSE_LAST
    assert stored["Meta Data"]["6. Source"].startswith("Tushare Pro daily")


def test_a_stocks_volume_is_tushares_lots_times_100(cn_data: Fetched, fresh: StandIns):
    import httpx

    reply = httpx.post(fresh.tushare_url, json={
        "api_name": "daily", "token": TOKEN, "fields": "trade_date,vol",
        "params": {"ts_code": "600519.SH", "start_date": "20251031", "end_date": "20251031"},
    }).json()  # fmt: skip
    ((_, lots),) = reply["data"]["items"]
    stored = read(price_file(cn_data.data_dir, "600519.SH"))
    assert stored["Time Series (Daily)"][SSE_LAST]["5. volume"] == str(round(lots * 100))


def test_the_cn_merge_takes_the_fetched_files(cn_data: Fetched):
    assert cn_data.merge.returncode == 0, cn_data.merge.stderr
    assert len(merged_file(cn_data.data_dir).read_text().splitlines()) == 51


def test_an_example_cn_run_trades_the_fetched_prices_to_the_end(cn_run):
    result, rows = cn_run["result"], cn_run["rows"]
    assert result.returncode == 0, result.stderr
    assert rows[0]["positions"]["CASH"] == 100_000.0
    assert rows[-1]["date"] == cn_run["config"]["date_range"]["end_date"]


# --- China A-shares: the fetch's rules ------------------------------------------------------


def test_a_token_tushare_refuses_is_one_line_and_exit_1(fresh: StandIns, tmp_path: Path):
    result = run_cli("fetch", "--market", "cn", env=cn_env(fresh, tmp_path, "not-a-token"))
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert errors == [
        "ai-trader fetch: error: Tushare refused the token (TUSHARE_TOKEN): "
        "您的token不对，请确认。 (code 40101)"
    ]
    assert "Traceback" not in result.stderr
    assert fresh.stats()["tushare"]["requests"] == 1


def test_a_refused_token_overwrites_nothing(fresh: StandIns, tmp_path: Path):
    good = price_file(tmp_path, "600519.SH")
    bars = {"2020-01-02": {"1. open": "1", "4. close": "1"}}
    good.write_text(
        json.dumps({"Meta Data": {"2. Symbol": "600519.SH"}, "Time Series (Daily)": bars})
    )
    age(good, 30 * DAY)
    before = sorted((p.name, p.read_bytes()) for p in tmp_path.glob("daily_prices_*"))
    run_cli("fetch", "--market", "cn", env=cn_env(fresh, tmp_path, "not-a-token"))
    assert sorted((p.name, p.read_bytes()) for p in tmp_path.glob("daily_prices_*")) == before


def test_too_few_points_for_the_index_fail_it_alone_in_one_line(fresh: StandIns, tmp_path: Path):
    fresh.set_scenario({**SCENARIO, "tushare": {**SCENARIO["tushare"], "points": 120}})
    result = run_cli("fetch", "--market", "cn", env=cn_env(fresh, tmp_path))
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if "fetch: 000016.SH:" in line]
    assert lines == [
        "fetch: 000016.SH: Tushare refused index_daily: 抱歉，您没有接口访问权限，权限的具体详情"
        "访问：https://tushare.pro/document/1?doc_id=108。 (code 40203)"
    ]
    assert not price_file(tmp_path, "000016.SH").exists()
    assert all(price_file(tmp_path, s).is_file() for s in CN_DAILY.symbols)


def test_the_token_never_reaches_the_logs(fresh: StandIns, tmp_path: Path):
    fresh.set_scenario({**SCENARIO, "tushare": {**SCENARIO["tushare"], "points": 120}})
    result = run_cli("-v", "fetch", "--market", "cn", env=cn_env(fresh, tmp_path))
    assert "HTTP Request: POST" in result.stderr  # httpx did log its requests
    assert TOKEN not in result.stderr + result.stdout


def test_a_second_cn_fetch_asks_nothing_for_current_files(fresh: StandIns, tmp_path: Path):
    env = cn_env(fresh, tmp_path)
    assert run_cli("fetch", "--market", "cn", env=env).returncode == 0
    fresh.reset()
    again = run_cli("fetch", "--market", "cn", env=env)
    assert again.returncode == 0, again.stderr
    assert fresh.stats()["tushare"]["requests"] == 0


def cn_fetch(s: StandIns, data_dir: Path, sleeps: list[float], **options: Any):
    settings: dict[str, Any] = {
        "index": "000016.SH", "token": TOKEN, "base_url": s.tushare_url, "min_interval": 0,
        "today": date(2025, 11, 3), "sleep": sleeps.append, "progress": False,
    }  # fmt: skip
    settings.update(options)
    return tushare.fetch_all(["600519.SH"], data_dir, **settings)


def test_a_rate_limited_tushare_reply_is_retried_with_backoff(fresh: StandIns, tmp_path: Path):
    section = {
        **SCENARIO["tushare"],
        "rate_limit": {"600519.SH": 1},
        "http_error": {"600519.SH": 1},
    }
    fresh.set_scenario({**SCENARIO, "tushare": section})
    sleeps: list[float] = []
    report = cn_fetch(fresh, tmp_path, sleeps)
    assert report.fetched == ["600519.SH"]
    assert fresh.stats()["tushare"]["by_code"] == {"600519.SH": 3}
    assert sleeps == [2.0, 4.0]


def test_a_bad_tushare_reply_never_replaces_a_good_file(fresh: StandIns, tmp_path: Path):
    cn_fetch(fresh, tmp_path, [])
    good = price_file(tmp_path, "600519.SH")
    age(good, 2 * DAY)
    before = good.read_bytes()
    # No session in the window asked for (a stock suspended for years, say): Tushare
    # answers code 0 and no rows.
    fresh.set_scenario(
        {**SCENARIO, "tushare": {**SCENARIO["tushare"], "last_trade_date": "2022-01-04"}}
    )
    report = cn_fetch(fresh, tmp_path, [], today=date(2025, 11, 10))
    assert report.errors["600519.SH"].startswith("unusable reply")
    assert good.read_bytes() == before


def test_cn_freshness_follows_the_sse_calendar(fresh: StandIns, tmp_path: Path):
    # The SSE was closed 1 to 8 October 2025 (the NYSE was open): on the 9th, data up to
    # 30 September is current, and nothing is asked.
    fresh.set_scenario(
        {**SCENARIO, "tushare": {**SCENARIO["tushare"], "last_trade_date": "2025-09-30"}}
    )
    cn_fetch(fresh, tmp_path, [], today=date(2025, 10, 9))
    age(price_file(tmp_path, "600519.SH"), 3 * DAY)
    fresh.reset()
    report = cn_fetch(fresh, tmp_path, [], today=date(2025, 10, 9))
    assert report.current == ["600519.SH"]
    assert fresh.stats()["tushare"]["requests"] == 0


def test_a_reply_holding_another_stock_is_not_written():
    data = {"fields": list(tushare.FIELDS),
            "items": [["600036.SH", "20251031", 1.0, 1.0, 1.0, 1.0, 10.0]]}  # fmt: skip
    with pytest.raises(tushare.Failed, match=r"it holds '600036\.SH', not '600519\.SH'"):
        tushare.daily_file("600519.SH", "daily", data)


def test_the_cn_fetch_without_a_token_says_which_variable_to_set(tmp_path: Path):
    result = run_cli("fetch", "--market", "cn", env=cli_env({"DATA_DIR": str(tmp_path)}))
    assert result.returncode == 0
    assert "fetch: no Tushare token (set TUSHARE_TOKEN); offline SYNTHETIC sample: 51" in (
        result.stderr
    )


def test_the_crypto_fetch_without_a_key_says_which_variable_to_set(tmp_path: Path):
    result = run_cli("fetch", "--market", "crypto", env=cli_env({"DATA_DIR": str(tmp_path)}))
    assert result.returncode == 0
    assert (
        "fetch: no Alpha Vantage key (set ALPHAADVANTAGE_API_KEY); offline SYNTHETIC sample: 11"
        in result.stderr
    )


def test_a_tushare_token_file_is_read_like_the_other_keys(fresh: StandIns, tmp_path: Path):
    secret = tmp_path / "token"
    secret.write_text(f"{TOKEN}\n")
    data_dir = tmp_path / "data"
    env = {k: v for k, v in cn_env(fresh, data_dir).items() if k != "TUSHARE_TOKEN"}
    result = run_cli("fetch", "--market", "cn", env={**env, "TUSHARE_TOKEN_FILE": str(secret)})
    assert result.returncode == 0, result.stderr
    assert {body["token_given"] for body in fresh.stats()["tushare"]["bodies"]} == {True}


def test_a_cn_sample_gives_way_to_real_prices_once_the_token_is_set(
    fresh: StandIns, tmp_path: Path
):
    sample = run_cli("fetch", "--market", "cn", env=cli_env({"DATA_DIR": str(tmp_path)}))
    assert sample.returncode == 0, sample.stderr
    real = run_cli("fetch", "--market", "cn", env=cn_env(fresh, tmp_path))
    assert real.returncode == 0, real.stderr
    assert fresh.stats()["tushare"]["requests"] == 51
    assert read(price_file(tmp_path, "600519.SH"))["Meta Data"]["3. Last Refreshed"] == SSE_LAST


def test_a_crypto_sample_gives_way_to_real_prices_once_the_key_is_set(
    fresh: StandIns, tmp_path: Path
):
    sample = run_cli("fetch", "--market", "crypto", env=cli_env({"DATA_DIR": str(tmp_path)}))
    assert sample.returncode == 0, sample.stderr
    real = run_cli("fetch", "--market", "crypto", env=crypto_env(fresh, tmp_path))
    assert real.returncode == 0, real.stderr
    assert fresh.stats()["alphavantage"]["requests"] == len(COINS)
    basket = read(price_file(tmp_path, "BASKET"))["Meta Data"]
    assert basket["6. Source"] == "derived by ai-trader from the coins' price files"


# --- US hourly: TIME_SERIES_INTRADAY at 60min -------------------------------------------------

US_HOURLY_SCENARIO = {"symbols": list(US_HOURLY.all_symbols), "last_refreshed": "2025-10-31"}


@pytest.fixture(scope="module")
def us_hourly_data(standins: StandIns, tmp_path_factory: pytest.TempPathFactory) -> Fetched:
    data_dir = tmp_path_factory.mktemp("us-hourly-real")
    env = crypto_env(standins, data_dir)  # the same Alpha Vantage settings
    standins.set_scenario(US_HOURLY_SCENARIO)
    fetch = run_cli("fetch", "--market", "us-hourly", env=env)
    stats = standins.stats()
    merge = run_cli("merge", "--market", "us-hourly", env=env)
    return Fetched(data_dir, fetch, merge, stats)


def test_us_hourly_fetch_with_a_key_writes_every_symbol(us_hourly_data: Fetched):
    assert us_hourly_data.fetch.returncode == 0, us_hourly_data.fetch.stderr
    stored = [price_file(us_hourly_data.data_dir, s) for s in US_HOURLY.all_symbols]
    assert all(path.is_file() for path in stored)


def test_us_hourly_fetch_asks_intraday_once_per_symbol(us_hourly_data: Fetched):
    by_symbol = us_hourly_data.stats["alphavantage"]["by_symbol"]
    assert by_symbol == dict.fromkeys(US_HOURLY.all_symbols, 1)


def test_a_us_hourly_file_keeps_the_replys_bars_at_the_markets_slots_only(
    us_hourly_data: Fetched, fresh: StandIns
):
    import httpx

    fresh.set_scenario(US_HOURLY_SCENARIO)
    reply = httpx.get(fresh.alphavantage_url, params={
        "function": "TIME_SERIES_INTRADAY", "symbol": "AAPL", "interval": "60min",
        "outputsize": "full", "extended_hours": "false", "apikey": "x",
    }).json()["Time Series (60min)"]  # fmt: skip
    stored = read(price_file(us_hourly_data.data_dir, "AAPL"))
    kept = {moment: bar for moment, bar in reply.items() if moment[11:] != "16:00:00"}
    assert stored["Time Series (60min)"] == kept
    assert stored["Meta Data"]["7. Source"] == alphavantage.HOURLY_SOURCE


def test_the_us_hourly_config_runs_on_fetched_hourly_prices(
    us_hourly_data: Fetched, tmp_path: Path
):
    assert us_hourly_data.merge.returncode == 0, us_hourly_data.merge.stderr
    done = run_example(us_hourly_data, "us-hourly", "us_hourly_config.json", tmp_path)
    assert done["result"].returncode == 0, done["result"].stderr
    slots = {row["date"] for row in done["rows"][1:]}
    assert len(slots) == 9 * 6  # 2025-10-21 to 2025-10-31, six slots a weekday
    assert done["rows"][-1]["date"] == "2025-10-31 15:00:00"


def test_an_intraday_reply_of_another_interval_is_never_written():
    reply = {"Meta Data": {"2. Symbol": "AAPL", "4. Interval": "30min"},
             "Time Series (60min)": {"2025-10-31 10:00:00": {"1. open": "1"}}}  # fmt: skip
    with pytest.raises(alphavantage.Failed, match="its interval is '30min', not '60min'"):
        alphavantage.hourly_file(US_HOURLY.slots, "AAPL", reply)


def test_an_intraday_reply_with_no_bar_at_the_slots_is_never_written():
    reply = {"Meta Data": {"2. Symbol": "AAPL", "4. Interval": "60min"},
             "Time Series (60min)": {"2025-10-31 16:00:00": {"1. open": "1"}}}  # fmt: skip
    with pytest.raises(alphavantage.Failed, match="no bar at the market's slots"):
        alphavantage.hourly_file(US_HOURLY.slots, "AAPL", reply)


def test_a_second_us_hourly_fetch_asks_nothing_for_current_files(fresh: StandIns, tmp_path: Path):
    env = crypto_env(fresh, tmp_path)
    fresh.set_scenario(US_HOURLY_SCENARIO)
    assert run_cli("fetch", "--market", "us-hourly", env=env).returncode == 0
    fresh.reset()
    again = run_cli("fetch", "--market", "us-hourly", env=env)
    assert again.returncode == 0, again.stderr
    assert fresh.stats()["alphavantage"]["requests"] == 0


def test_a_us_sample_written_a_moment_ago_is_replaced_once_a_key_is_set(
    fresh: StandIns, tmp_path: Path
):
    offline = run_cli("fetch", env=cli_env({"DATA_DIR": str(tmp_path)}))
    assert offline.returncode == 0, offline.stderr
    fresh.set_scenario(US_HOURLY_SCENARIO)  # every US symbol known
    fetched = run_cli("fetch", env=crypto_env(fresh, tmp_path))
    assert fetched.returncode == 0, fetched.stderr
    assert fresh.stats()["alphavantage"]["requests"] == len(US_HOURLY.all_symbols)
    assert "6. Note" not in read(price_file(tmp_path, "AAPL"))["Meta Data"]
