import http.server
import json
import logging
import os
import threading
import time
from datetime import date

import httpx
import pytest
from support import closed_ports

from ai_trader.layout import price_file
from ai_trader.market import alphavantage
from ai_trader.market.alphavantage import FetchReport, fetch_all, fetch_order, is_current
from standins import StandIns

KEY = "sekrit-key-4242"
TODAY = date(2025, 11, 4)  # a Tuesday: data up to Monday 2025-11-03 is current
SYMBOLS = ["AAPL", "MSFT", "NVDA", "QQQ"]
DAY = 24 * 3600


@pytest.fixture
def standins():
    with StandIns({"symbols": SYMBOLS, "last_refreshed": "2025-11-03"}) as s:
        yield s


@pytest.fixture
def sleeps():
    return []


def fetch(standins, data_dir, sleeps, symbols=SYMBOLS, **overrides) -> FetchReport:
    options = {
        "api_key": KEY,
        "base_url": standins.alphavantage_url,
        "min_interval": 0,
        "today": TODAY,
        "sleep": sleeps.append,
        "progress": False,
    }
    options.update(overrides)
    return fetch_all(symbols, data_dir, **options)


def requests_for(standins, symbol) -> int:
    return standins.stats()["alphavantage"]["by_symbol"].get(symbol, 0)


def age(path, seconds) -> None:
    """Make a file look written ``seconds`` ago."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def payload(last_refreshed: str) -> dict:
    """A usable AAPL reply whose Meta Data says it was refreshed at ``last_refreshed``."""
    return {
        "Meta Data": {"2. Symbol": "AAPL", "3. Last Refreshed": last_refreshed},
        "Time Series (Daily)": {"2020-01-02": {"1. open": "1.0", "4. close": "1.0"}},
    }


# -- is_current -------------------------------------------------------------------------------

NOW = 1_800_000_000.0
OLD = NOW - 3 * DAY


def test_is_current_when_refreshed_on_the_last_trading_day_before_today():
    assert is_current(payload("2025-11-03"), OLD, date(2025, 11, 4), NOW, "AAPL")


def test_is_not_current_when_refreshed_before_the_last_trading_day():
    assert not is_current(payload("2025-10-31"), OLD, date(2025, 11, 4), NOW, "AAPL")


def test_is_current_on_monday_with_fridays_data():
    assert is_current(payload("2025-10-31"), OLD, date(2025, 11, 3), NOW, "AAPL")


def test_is_current_with_a_time_in_last_refreshed():
    assert is_current(payload("2025-11-03 16:00:01"), OLD, date(2025, 11, 4), NOW, "AAPL")


def test_is_current_when_written_within_twelve_hours_whatever_the_dates():
    assert is_current(payload("2020-01-02"), NOW - 11 * 3600, date(2025, 11, 4), NOW, "AAPL")


def test_is_not_current_when_written_thirteen_hours_ago_with_old_dates():
    assert not is_current(payload("2020-01-02"), NOW - 13 * 3600, date(2025, 11, 4), NOW, "AAPL")


def test_is_never_current_without_a_time_series():
    assert not is_current(
        {"Meta Data": {"3. Last Refreshed": "2025-11-03"}}, NOW, TODAY, NOW, "AAPL"
    )


def test_is_never_current_for_a_rate_limit_reply():
    assert not is_current({"Note": "Thank you for using Alpha Vantage!"}, NOW, TODAY, NOW, "AAPL")


def test_is_not_current_with_an_unreadable_last_refreshed():
    assert not is_current(payload("yesterday"), OLD, TODAY, NOW, "AAPL")


def test_is_current_after_a_holiday_with_the_last_trading_days_data():
    # Tuesday after Labor Day (Monday 2025-09-01): Friday's data is the newest there is.
    assert is_current(payload("2025-08-29"), OLD, date(2025, 9, 2), NOW, "AAPL")


def test_is_never_current_for_another_symbols_file():
    assert not is_current(payload("2025-11-03"), NOW, TODAY, NOW, "MSFT")


def test_is_never_current_with_a_price_the_merge_would_reject():
    broken = payload("2025-11-03")
    broken["Time Series (Daily)"]["2020-01-02"]["1. open"] = "0"
    assert not is_current(broken, NOW, TODAY, NOW, "AAPL")


# -- fetch_all against the stand-in ---------------------------------------------------------


def test_fetches_every_symbol_into_its_own_file(standins, tmp_path, sleeps):
    report = fetch(standins, tmp_path, sleeps)
    assert report.fetched == SYMBOLS
    assert report.errors == {}
    assert all(price_file(tmp_path, s).is_file() for s in SYMBOLS)


def test_writes_the_apis_json_unchanged(standins, tmp_path, sleeps):
    fetch(standins, tmp_path, sleeps, symbols=["AAPL"])
    direct = httpx.get(
        standins.alphavantage_url,
        params={"function": "TIME_SERIES_DAILY", "symbol": "AAPL", "apikey": "x"},
    ).json()
    assert json.loads(price_file(tmp_path, "AAPL").read_text()) == direct


def test_note_reply_is_retried_with_backoff_until_success(standins, tmp_path, sleeps):
    standins.set_scenario({"symbols": SYMBOLS, "rate_limit": {"AAPL": 2}})
    report = fetch(standins, tmp_path, sleeps, symbols=["AAPL"])
    assert report.fetched == ["AAPL"]
    assert requests_for(standins, "AAPL") == 3
    assert sleeps == [2.0, 4.0]


def test_information_reply_is_retried_until_success(standins, tmp_path, sleeps):
    standins.set_scenario({"symbols": SYMBOLS, "information": {"MSFT": 1}})
    report = fetch(standins, tmp_path, sleeps, symbols=["MSFT"])
    assert report.fetched == ["MSFT"]
    assert requests_for(standins, "MSFT") == 2


def test_http_503_is_retried_until_success(standins, tmp_path, sleeps):
    standins.set_scenario({"symbols": SYMBOLS, "http_error": {"NVDA": 2}})
    report = fetch(standins, tmp_path, sleeps, symbols=["NVDA"])
    assert report.fetched == ["NVDA"]
    assert requests_for(standins, "NVDA") == 3


def test_backoff_is_capped_at_a_minute(standins, tmp_path, sleeps):
    standins.set_scenario({"symbols": SYMBOLS, "rate_limit": {"AAPL": 7}})
    fetch(standins, tmp_path, sleeps, symbols=["AAPL"], max_attempts=8, backoff=10.0)
    assert sleeps == [10.0, 20.0, 40.0, 60.0, 60.0, 60.0, 60.0]


def test_persistent_rate_limit_is_recorded_after_max_attempts(standins, tmp_path, sleeps):
    standins.set_scenario({"symbols": SYMBOLS, "rate_limit": {"AAPL": 99}})
    report = fetch(standins, tmp_path, sleeps, symbols=["AAPL"], max_attempts=3)
    assert requests_for(standins, "AAPL") == 3
    assert "rate limited" in report.errors["AAPL"]
    assert not price_file(tmp_path, "AAPL").exists()


def test_remaining_symbols_are_not_requested_once_the_rate_limit_persists(
    standins, tmp_path, sleeps
):
    standins.set_scenario({"symbols": SYMBOLS, "information": {"MSFT": 99}})
    report = fetch(standins, tmp_path, sleeps, max_attempts=2)
    assert report.fetched == ["AAPL"]
    assert set(report.errors) == {"MSFT", "NVDA", "QQQ"}
    assert report.errors["NVDA"].startswith("not attempted")
    assert requests_for(standins, "NVDA") == 0


def test_error_message_for_one_symbol_is_recorded_while_the_rest_succeed(
    standins, tmp_path, sleeps
):
    report = fetch(standins, tmp_path, sleeps, symbols=["AAPL", "NOPE", "MSFT"])
    assert report.fetched == ["AAPL", "MSFT"]
    assert report.errors["NOPE"].startswith("Invalid API call")
    assert requests_for(standins, "NOPE") == 1  # an Error Message is not retried


def test_missing_api_key_is_reported_for_each_symbol(standins, tmp_path, sleeps):
    report = fetch(standins, tmp_path, sleeps, symbols=["AAPL"], api_key="")
    assert "apikey is invalid or missing" in report.errors["AAPL"]


def test_bad_reply_never_replaces_a_good_file(standins, tmp_path, sleeps):
    good = price_file(tmp_path, "AAPL")
    good.write_text(json.dumps(payload("2025-10-01")))
    age(good, 2 * DAY)
    before = good.read_bytes()
    standins.set_scenario({"symbols": SYMBOLS, "rate_limit": {"AAPL": 99}})
    report = fetch(standins, tmp_path, sleeps, symbols=["AAPL"], max_attempts=2)
    assert "AAPL" in report.errors
    assert good.read_bytes() == before


def test_error_message_never_replaces_a_good_file(standins, tmp_path, sleeps):
    good = price_file(tmp_path, "TSLA")  # not served by the stand-in
    good.write_text(json.dumps(payload("2025-10-01")))
    age(good, 2 * DAY)
    before = good.read_bytes()
    report = fetch(standins, tmp_path, sleeps, symbols=["TSLA"])
    assert "TSLA" in report.errors
    assert good.read_bytes() == before


def test_second_run_skips_current_files_without_any_request(standins, tmp_path, sleeps):
    fetch(standins, tmp_path, sleeps)
    standins.reset()
    report = fetch(standins, tmp_path, sleeps)
    assert report.current == SYMBOLS
    assert report.fetched == []
    assert standins.stats()["alphavantage"]["requests"] == 0


def test_file_written_within_twelve_hours_is_not_fetched_again(standins, tmp_path, sleeps):
    price_file(tmp_path, "AAPL").write_text(json.dumps(payload("2025-01-02")))
    report = fetch(standins, tmp_path, sleeps, symbols=["AAPL"])
    assert report.current == ["AAPL"]
    assert requests_for(standins, "AAPL") == 0


def test_stale_file_is_fetched_again(standins, tmp_path, sleeps):
    stale = price_file(tmp_path, "AAPL")
    stale.write_text(json.dumps(payload("2025-01-02")))
    age(stale, 2 * DAY)
    report = fetch(standins, tmp_path, sleeps, symbols=["AAPL"])
    assert report.fetched == ["AAPL"]
    assert json.loads(stale.read_text())["Meta Data"]["3. Last Refreshed"] == "2025-11-03"


def test_unreadable_file_is_fetched_again(standins, tmp_path, sleeps):
    price_file(tmp_path, "AAPL").write_text("{ truncated")
    report = fetch(standins, tmp_path, sleeps, symbols=["AAPL"])
    assert report.fetched == ["AAPL"]


def test_throttle_sleeps_the_min_interval_between_requests(standins, tmp_path, sleeps):
    fetch(standins, tmp_path, sleeps, symbols=["AAPL", "MSFT", "NVDA"], min_interval=12.0)
    assert len(sleeps) == 2  # none before the first request
    assert all(11.0 < s <= 12.0 for s in sleeps)


def test_no_throttle_when_min_interval_is_zero(standins, tmp_path, sleeps):
    fetch(standins, tmp_path, sleeps, min_interval=0)
    assert sleeps == []


def test_skipped_symbols_cost_no_throttle_wait(standins, tmp_path, sleeps):
    fetch(standins, tmp_path, sleeps, symbols=["AAPL"])
    fetch(standins, tmp_path, sleeps, symbols=["AAPL", "MSFT"], min_interval=12.0)
    assert sleeps == []


def test_api_key_never_appears_in_logs(standins, tmp_path, sleeps, caplog):
    caplog.set_level(logging.DEBUG)
    standins.set_scenario(
        {"symbols": SYMBOLS, "rate_limit": {"AAPL": 1}, "http_error": {"MSFT": 1}}
    )
    report = fetch(standins, tmp_path, sleeps, symbols=["AAPL", "MSFT", "NOPE"])
    assert report.fetched == ["AAPL", "MSFT"]
    assert any("HTTP Request" in r.getMessage() for r in caplog.records)  # httpx did log URLs
    assert KEY not in caplog.text
    assert KEY not in json.dumps(report.errors)


def test_connection_failure_is_retried_then_recorded(tmp_path, sleeps):
    # A port held closed (bound, never listening) for both attempts: nothing else can come
    # to answer on it, however busy the machine.
    with closed_ports(1) as (port,):
        report = fetch_all(
            ["AAPL"],
            tmp_path,
            api_key=KEY,
            base_url=f"http://127.0.0.1:{port}/query",
            min_interval=0,
            today=TODAY,
            max_attempts=2,
            sleep=sleeps.append,
            progress=False,
        )
    assert "ConnectError" in report.errors["AAPL"]
    assert sleeps == [2.0]


def mock_client(handler) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(handler))


def test_non_json_reply_is_an_error_for_that_symbol(tmp_path, sleeps):
    client = mock_client(lambda request: httpx.Response(200, text="<html>maintenance</html>"))
    report = fetch_all(
        ["AAPL"], tmp_path, api_key=KEY, base_url="http://127.0.0.1:9/query", min_interval=0,
        today=TODAY, client=client, sleep=sleeps.append, progress=False,
    )  # fmt: skip
    assert report.errors == {"AAPL": "reply is not JSON"}


def test_json_without_time_series_is_an_error_for_that_symbol(tmp_path, sleeps):
    client = mock_client(lambda request: httpx.Response(200, json={"Meta Data": {}}))
    report = fetch_all(
        ["AAPL"], tmp_path, api_key=KEY, base_url="http://127.0.0.1:9/query", min_interval=0,
        today=TODAY, client=client, sleep=sleeps.append, progress=False,
    )  # fmt: skip
    assert "Time Series (Daily)" in report.errors["AAPL"]
    assert not price_file(tmp_path, "AAPL").exists()


def test_http_404_is_an_error_without_retry(tmp_path, sleeps):
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(404, text="not found")

    report = fetch_all(
        ["AAPL"], tmp_path, api_key=KEY, base_url="http://127.0.0.1:9/query", min_interval=0,
        today=TODAY, client=mock_client(handler), sleep=sleeps.append, progress=False,
    )  # fmt: skip
    assert report.errors == {"AAPL": "HTTP 404"}
    assert len(calls) == 1


def test_request_carries_the_documented_query_parameters(tmp_path, sleeps):
    seen = []

    def handler(request):
        seen.append(dict(request.url.params))
        return httpx.Response(200, json=payload("2025-11-03"))

    fetch_all(
        ["AAPL"], tmp_path, api_key=KEY, base_url="http://127.0.0.1:9/query", min_interval=0,
        today=TODAY, client=mock_client(handler), sleep=sleeps.append, progress=False,
    )  # fmt: skip
    assert seen == [
        {"function": "TIME_SERIES_DAILY", "symbol": "AAPL", "outputsize": "compact", "apikey": KEY}
    ]


def test_progress_counts_symbols_on_stderr(standins, tmp_path, sleeps, capsys):
    fetch(standins, tmp_path, sleeps, progress=True)
    err = capsys.readouterr().err
    assert "fetch [1/4] AAPL" in err
    assert "fetch [4/4] QQQ" in err


def test_fetch_order_puts_missing_files_first_then_the_stalest():
    refreshed = {"AAPL": "2025-10-30", "MSFT": "", "NVDA": "2025-10-01", "QQQ": "2025-10-30"}
    order = fetch_order(["AAPL", "MSFT", "NVDA", "QQQ"], refreshed)
    assert order == ["MSFT", "NVDA", "AAPL", "QQQ"]


def test_fetch_order_drops_duplicates_and_keeps_the_given_order_among_equals():
    assert fetch_order(["B", "A", "B", "C"], {}) == ["B", "A", "C"]


def test_a_reply_the_merge_would_reject_never_replaces_a_good_file(tmp_path):
    good = {
        "Meta Data": {"2. Symbol": "AAPL", "3. Last Refreshed": "2020-01-02"},
        "Time Series (Daily)": {
            "2020-01-02": {"1. open": "10.0", "2. high": "11", "3. low": "9",
                           "4. close": "10.5", "5. volume": "100"}
        },
    }  # fmt: skip
    path = price_file(tmp_path, "AAPL")
    path.write_text(json.dumps(good))
    os.utime(path, (0, 0))  # old enough to be refreshed
    bad = json.loads(json.dumps(good))
    bad["Meta Data"]["3. Last Refreshed"] = "2020-01-03"
    bad["Time Series (Daily)"]["2020-01-02"]["1. open"] = "0.0000"

    def reply(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=bad)

    with httpx.Client(transport=httpx.MockTransport(reply)) as client:
        report = fetch_all(["AAPL"], tmp_path, api_key="k", base_url="http://av.test/query",
                           min_interval=0, client=client, progress=False)  # fmt: skip
    assert "unusable reply" in report.errors["AAPL"]
    assert json.loads(path.read_text()) == good


class _Drip(http.server.BaseHTTPRequestHandler):
    """A server that answers 200 and then feeds its JSON one byte at a time, slowly."""

    requests = 0

    def do_GET(self) -> None:
        type(self).requests += 1
        body = b'{"Meta Data": {"2. Symbol": "AAPL"}, "Time Series (Daily)": {}}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            for byte in body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass  # the client gave up, as it should

    def log_message(self, *args: object) -> None:
        pass


def test_a_drip_fed_reply_is_abandoned_at_the_deadline_and_retried(tmp_path, sleeps):
    _Drip.requests = 0  # the count is the class's: start it afresh for this run
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Drip)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        report = fetch_all(
            ["AAPL"], tmp_path, api_key=KEY, min_interval=0, today=TODAY,
            base_url=f"http://127.0.0.1:{server.server_address[1]}/query",
            sleep=sleeps.append, progress=False, max_attempts=2, deadline=0.5,
        )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    assert report.errors == {"AAPL": "gave up after 2 attempts: no complete reply within 0.5 s"}
    assert _Drip.requests == 2
    assert len(sleeps) == 1  # one backoff between the two attempts
    assert not price_file(tmp_path, "AAPL").exists()


def test_a_crypto_request_carries_the_documented_query_parameters(tmp_path, sleeps):
    seen = []

    def handler(request):
        seen.append(dict(request.url.params))
        return httpx.Response(200, json={"Error Message": "Invalid API call."})

    fetch_all(
        ["BTC"], tmp_path, api_key=KEY, base_url="http://127.0.0.1:9/query", min_interval=0,
        today=TODAY, client=mock_client(handler), sleep=sleeps.append, progress=False,
        series=alphavantage.DIGITAL_CURRENCY_DAILY,
    )  # fmt: skip
    assert seen == [
        {"function": "DIGITAL_CURRENCY_DAILY", "symbol": "BTC", "market": "USD", "apikey": KEY}
    ]
