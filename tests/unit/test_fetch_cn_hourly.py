"""Real hourly prices for the China A-share market: `ai-trader fetch --market cn-hourly` as a
child process against the local stand-in of Tushare Pro's minute APIs (`stk_mins` for the
stocks, `idx_mins` for the SSE-50 index, at 60min; reached through TUSHARE_BASE_URL), then
`merge --market cn-hourly` and a whole offline-strategy `run` of the market's example
config on what was fetched; and the fetch's rules for minute bars (the separately paid
permission, the slots kept, the incremental skip, bad replies) against the same stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import cli_env, run_cli
from test_fetch_markets import DAY, SSE_LAST, TOKEN, Fetched, age, cn_env, read, run_example

from ai_trader.layout import merged_file, price_file
from ai_trader.market import tushare
from ai_trader.market.cn import CN_HOURLY
from standins import StandIns

STOCK = "600519.SH"
INDEX = "000016.SH"
SLOTS = set(CN_HOURLY.slots)
# The account holds the minute permission; the newest session is the example's last day.
SECTION = {"tokens": [TOKEN], "last_trade_date": SSE_LAST, "minutes": True}
SCENARIO = {"tushare": SECTION}
REFUSED = (
    "ai-trader fetch: error: Tushare refused stk_mins: 抱歉，您没有接口访问权限，权限的具体"
    "详情访问：https://tushare.pro/document/1?doc_id=108。 (code 40203); minute bars need "
    "Tushare's separately paid minute permission"
)


@pytest.fixture(scope="module")
def standins() -> Iterator[StandIns]:
    with StandIns(SCENARIO) as running:
        yield running


@pytest.fixture
def fresh(standins: StandIns) -> StandIns:
    """The module's stand-ins with the scenario and counters as new."""
    standins.set_scenario(SCENARIO)
    return standins


def scenario(**tushare_keys: Any) -> dict[str, Any]:
    return {"tushare": {**SECTION, **tushare_keys}}


@pytest.fixture(scope="module")
def hourly_data(standins: StandIns, tmp_path_factory: pytest.TempPathFactory) -> Fetched:
    data_dir = tmp_path_factory.mktemp("cn-hourly-real")
    env = cn_env(standins, data_dir)
    standins.set_scenario(SCENARIO)
    fetch = run_cli("fetch", "--market", "cn-hourly", env=env)
    stats = standins.stats()
    merge = run_cli("merge", "--market", "cn-hourly", env=env)
    return Fetched(data_dir, fetch, merge, stats)


def minute_reply(s: StandIns, ts_code: str, day: str) -> list[dict[str, Any]]:
    """The stand-in's own 60min rows for ``ts_code`` on ``day``, as Tushare sends them."""
    data = httpx.post(s.tushare_url, json={
        "api_name": "idx_mins" if ts_code == INDEX else "stk_mins", "token": TOKEN,
        "fields": "", "params": {"ts_code": ts_code, "freq": "60min",
                                 "start_date": f"{day} 00:00:00", "end_date": f"{day} 23:59:59"},
    }).json()["data"]  # fmt: skip
    return [dict(zip(data["fields"], item, strict=True)) for item in data["items"]]


def hourly_fetch(s: StandIns, data_dir: Path, **options: Any) -> tushare.FetchReport:
    settings: dict[str, Any] = {
        "index": INDEX, "token": TOKEN, "base_url": s.tushare_url, "min_interval": 0,
        "today": date(2025, 11, 3), "sleep": lambda _: None, "progress": False,
        "feed": tushare.minutes(CN_HOURLY.slots),
    }  # fmt: skip
    settings.update(options)
    return tushare.fetch_all([STOCK], data_dir, **settings)


# --- the whole path -------------------------------------------------------------------------


def test_cn_hourly_fetch_with_the_minute_permission_writes_every_stock_and_the_index(
    hourly_data: Fetched,
):
    assert hourly_data.fetch.returncode == 0, hourly_data.fetch.stderr
    assert all(price_file(hourly_data.data_dir, s).is_file() for s in CN_HOURLY.all_symbols)


def test_cn_hourly_fetch_asks_stk_mins_for_stocks_and_idx_mins_for_the_index(
    hourly_data: Fetched,
):
    bodies = hourly_data.stats["tushare"]["bodies"]
    apis = {body["params"]["ts_code"]: body["api_name"] for body in bodies}
    assert len(bodies) == len(CN_HOURLY.all_symbols)
    assert apis[INDEX] == "idx_mins"
    assert {apis[s] for s in CN_HOURLY.symbols} == {"stk_mins"}
    assert {body["params"]["freq"] for body in bodies} == {"60min"}


def test_cn_hourly_fetch_asks_its_window_as_date_and_time(hourly_data: Fetched):
    params = hourly_data.stats["tushare"]["bodies"][0]["params"]
    assert params["start_date"].endswith(" 00:00:00")
    assert params["end_date"].endswith(" 23:59:59")


def test_a_cn_hourly_file_holds_the_four_slots_of_each_sse_session(hourly_data: Fetched):
    series = read(price_file(hourly_data.data_dir, STOCK))["Time Series (60min)"]
    october = sorted(moment for moment in series if moment.startswith("2025-10"))
    assert october[0] == "2025-10-09 10:30:00"  # the National Day holiday closed 1 to 8 October
    assert {moment[11:] for moment in series} == SLOTS
    assert len(october) == 4 * len({moment[:10] for moment in october})


def test_a_cn_hourly_files_bars_are_the_replys_unadjusted_prices_and_shares(
    hourly_data: Fetched, fresh: StandIns
):
    rows = minute_reply(fresh, STOCK, SSE_LAST)
    stored = read(price_file(hourly_data.data_dir, STOCK))["Time Series (60min)"]
    expected = {
        row["trade_time"]: {
            "1. open": f"{row['open']:.4f}", "2. high": f"{row['high']:.4f}",
            "3. low": f"{row['low']:.4f}", "4. close": f"{row['close']:.4f}",
            "5. volume": str(round(row["vol"])),  # Tushare's minute vol is in shares already
        }
        for row in rows
    }  # fmt: skip
    assert {moment: stored[moment] for moment in expected} == expected


def test_a_cn_hourly_files_metadata_names_the_source_and_the_last_bar(hourly_data: Fetched):
    meta = read(price_file(hourly_data.data_dir, INDEX))["Meta Data"]
    assert meta["2. Symbol"] == INDEX
    assert meta["3. Last Refreshed"] == f"{SSE_LAST} 15:00:00"
    assert meta["4. Interval"] == "60min"
    assert meta["7. Source"].startswith("Tushare Pro idx_mins, freq=60min (unadjusted")


def test_the_cn_hourly_merge_takes_the_fetched_files(hourly_data: Fetched):
    assert hourly_data.merge.returncode == 0, hourly_data.merge.stderr
    assert len(merged_file(hourly_data.data_dir).read_text().splitlines()) == 51


def test_the_cn_hourly_config_runs_on_fetched_hourly_prices(hourly_data: Fetched, tmp_path: Path):
    assert hourly_data.merge.returncode == 0, hourly_data.merge.stderr
    done = run_example(hourly_data, "cn-hourly", "cn_hourly_config.json", tmp_path)
    assert done["result"].returncode == 0, done["result"].stderr
    moments = [row["date"] for row in done["rows"][1:]]
    assert len(set(moments)) == 9 * 4  # 2025-10-21 to 2025-10-31, four slots a session
    assert {moment[11:] for moment in moments} == SLOTS
    assert moments[-1] == f"{SSE_LAST} 15:00:00"


# --- the fetch's rules ----------------------------------------------------------------------


def test_no_minute_permission_is_one_line_and_exit_1(fresh: StandIns, tmp_path: Path):
    fresh.set_scenario(scenario(minutes=False))
    result = run_cli("fetch", "--market", "cn-hourly", env=cn_env(fresh, tmp_path))
    assert result.returncode == 1
    assert [line for line in result.stderr.splitlines() if "error" in line] == [REFUSED]
    assert "Traceback" not in result.stderr
    assert fresh.stats()["tushare"]["requests"] == 1


def test_no_minute_permission_overwrites_nothing(fresh: StandIns, tmp_path: Path):
    offline = run_cli("fetch", "--market", "cn-hourly", env=cli_env({"DATA_DIR": str(tmp_path)}))
    assert offline.returncode == 0, offline.stderr
    before = sorted((p.name, p.read_bytes()) for p in tmp_path.glob("daily_prices_*"))
    fresh.set_scenario(scenario(minutes=False))
    run_cli("fetch", "--market", "cn-hourly", env=cn_env(fresh, tmp_path))
    assert sorted((p.name, p.read_bytes()) for p in tmp_path.glob("daily_prices_*")) == before


def test_a_second_cn_hourly_fetch_asks_nothing_for_current_files(fresh: StandIns, tmp_path: Path):
    env = cn_env(fresh, tmp_path)
    assert run_cli("fetch", "--market", "cn-hourly", env=env).returncode == 0
    fresh.reset()
    again = run_cli("fetch", "--market", "cn-hourly", env=env)
    assert again.returncode == 0, again.stderr
    assert fresh.stats()["tushare"]["requests"] == 0


def test_a_bar_at_another_time_is_dropped(fresh: StandIns, tmp_path: Path):
    fresh.set_scenario(scenario(minute_times={STOCK: ["09:30:00", *CN_HOURLY.slots]}))
    served = {row["trade_time"][11:] for row in minute_reply(fresh, STOCK, SSE_LAST)}
    assert "09:30:00" in served  # the stand-in did send it
    assert hourly_fetch(fresh, tmp_path).fetched == [STOCK]
    series = read(price_file(tmp_path, STOCK))["Time Series (60min)"]
    assert {moment[11:] for moment in series} == SLOTS


def test_a_reply_for_another_symbol_is_never_written(fresh: StandIns, tmp_path: Path):
    hourly_fetch(fresh, tmp_path)
    good = price_file(tmp_path, STOCK)
    age(good, 2 * DAY)
    before = good.read_bytes()
    fresh.set_scenario(scenario(answer_for={STOCK: "600036.SH"}))
    report = hourly_fetch(fresh, tmp_path, today=date(2025, 11, 10))
    assert report.errors[STOCK] == "unusable reply: it holds '600036.SH', not '600519.SH'"
    assert good.read_bytes() == before


def test_a_reply_with_no_bar_at_a_slot_is_never_written(fresh: StandIns, tmp_path: Path):
    fresh.set_scenario(scenario(minute_times={STOCK: ["10:00:00", "13:30:00"]}))
    report = hourly_fetch(fresh, tmp_path)
    assert report.errors[STOCK] == (
        "unusable reply: no bar at the market's slots (10:30:00, 11:30:00, 14:00:00, 15:00:00)"
    )
    assert not price_file(tmp_path, STOCK).exists()


def test_cn_hourly_freshness_follows_the_sse_calendar(fresh: StandIns, tmp_path: Path):
    # The SSE was closed 1 to 8 October 2025: on the 9th, bars up to 30 September's 15:00
    # are current, and nothing is asked.
    fresh.set_scenario(scenario(last_trade_date="2025-09-30"))
    hourly_fetch(fresh, tmp_path, today=date(2025, 10, 9))
    age(price_file(tmp_path, STOCK), 3 * DAY)
    fresh.reset()
    report = hourly_fetch(fresh, tmp_path, today=date(2025, 10, 9))
    assert report.current == [STOCK]
    assert fresh.stats()["tushare"]["requests"] == 0


def test_the_token_never_reaches_the_logs_of_a_refused_minute_fetch(
    fresh: StandIns, tmp_path: Path
):
    fresh.set_scenario(scenario(minutes=False))
    result = run_cli("-v", "fetch", "--market", "cn-hourly", env=cn_env(fresh, tmp_path))
    assert "HTTP Request: POST" in result.stderr  # httpx did log its request
    assert TOKEN not in result.stderr + result.stdout
