"""The stand-ins' own wire formats, checked with real clients (httpx, the openai SDK)."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
import openai
import pytest

from standins import StandIns

TESTS_DIR = Path(__file__).resolve().parents[1]
AUTH = {"Authorization": "Bearer test-key"}
SYSTEM = {"role": "system", "content": "You are a trader. Today is 2025-10-02."}
USER = {"role": "user", "content": "Trade."}
# One client for the module: building one per request (TLS context and all) costs ~0.1 s.
HTTP = httpx.Client()


@pytest.fixture(scope="module", autouse=True)
def _close_http_client():
    yield
    HTTP.close()


@pytest.fixture
def standins():
    with StandIns() as s:
        yield s


def av(s: StandIns, symbol: str, apikey: str = "k", **extra) -> httpx.Response:
    params = {"function": "TIME_SERIES_DAILY", "symbol": symbol, "apikey": apikey, **extra}
    return HTTP.get(s.alphavantage_url, params=params)


def client(s: StandIns, **options) -> openai.OpenAI:
    return openai.OpenAI(base_url=s.openai_base, api_key="test-key", http_client=HTTP, **options)


def chat(s: StandIns, messages, **options):
    return client(s, **options).chat.completions.create(model="gpt-stand-in", messages=messages)


# -- Alpha Vantage ----------------------------------------------------------------------------


def test_av_serves_a_compact_time_series_for_a_known_symbol(standins):
    body = av(standins, "AAPL").json()
    assert body["Meta Data"]["2. Symbol"] == "AAPL"
    assert len(body["Time Series (Daily)"]) == 100
    first = next(iter(body["Time Series (Daily)"].values()))
    assert list(first) == ["1. open", "2. high", "3. low", "4. close", "5. volume"]


def test_av_last_refreshed_defaults_to_the_weekday_before_today(standins):
    expected = date.today() - timedelta(days=1)
    while expected.weekday() >= 5:
        expected -= timedelta(days=1)
    assert av(standins, "AAPL").json()["Meta Data"]["3. Last Refreshed"] == expected.isoformat()


def test_av_last_refreshed_follows_the_scenario():
    with StandIns({"last_refreshed": "2025-10-31"}) as s:
        body = av(s, "QQQ").json()
    assert body["Meta Data"]["3. Last Refreshed"] == "2025-10-31"
    assert next(iter(body["Time Series (Daily)"])) == "2025-10-31"


def test_av_data_is_deterministic(standins):
    assert av(standins, "MSFT").json() == av(standins, "MSFT").json()


def test_av_missing_api_key_is_an_error_message(standins):
    assert "apikey is invalid or missing" in av(standins, "AAPL", apikey="").json()["Error Message"]


def test_av_unknown_symbol_is_an_invalid_api_call(standins):
    assert av(standins, "NOPE").json()["Error Message"].startswith("Invalid API call")


def test_av_rate_limit_sends_a_note_the_first_n_times():
    with StandIns({"rate_limit": {"AAPL": 2}}) as s:
        replies = [av(s, "AAPL").json() for _ in range(3)]
    assert ["Note" in r for r in replies] == [True, True, False]
    assert "Time Series (Daily)" in replies[2]


def test_av_information_is_sent_the_first_n_times():
    with StandIns({"information": {"AAPL": 1}}) as s:
        replies = [av(s, "AAPL").json() for _ in range(2)]
    assert "25 requests per day" in replies[0]["Information"]
    assert "Time Series (Daily)" in replies[1]


def test_av_http_error_answers_503_the_first_n_times():
    with StandIns({"http_error": {"AAPL": 1}}) as s:
        statuses = [av(s, "AAPL").status_code for _ in range(2)]
    assert statuses == [503, 200]


def test_av_counts_requests_per_symbol(standins):
    av(standins, "AAPL")
    av(standins, "AAPL")
    av(standins, "NOPE")
    assert standins.stats()["alphavantage"] == {"requests": 3, "by_symbol": {"AAPL": 2, "NOPE": 1}}


# -- OpenAI chat completions --------------------------------------------------------------------

PRICE_CALL = {"name": "get_price_local", "arguments": {"symbol": "AAPL", "date": "{today}"}}


def test_openai_client_gets_a_parsed_tool_call_with_today_filled_in():
    with StandIns({"openai": {"script": [{"tool_calls": [PRICE_CALL]}]}}) as s:
        reply = chat(s, [SYSTEM, USER])
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.function.name == "get_price_local"
    assert json.loads(call.function.arguments) == {"symbol": "AAPL", "date": "2025-10-02"}


def test_openai_step_is_the_number_of_assistant_messages():
    script = [{"content": "first"}, {"content": "second"}]
    with StandIns({"openai": {"script": script}}) as s:
        fresh = chat(s, [SYSTEM, USER])
        later = chat(s, [SYSTEM, USER, {"role": "assistant", "content": "first"}, USER])
    assert fresh.choices[0].message.content == "first"
    assert later.choices[0].message.content == "second"
    assert later.choices[0].finish_reason == "stop"


def test_openai_past_the_script_end_sends_the_finish_signal(standins):
    assert chat(standins, [SYSTEM, USER]).choices[0].message.content == "<FINISH_SIGNAL>"


def test_openai_reply_is_a_complete_chat_completion_object(standins):
    reply = chat(standins, [SYSTEM, USER])
    assert reply.object == "chat.completion"
    assert reply.id
    assert reply.model == "gpt-stand-in"
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_openai_without_bearer_key_answers_401_with_the_error_shape(standins):
    response = HTTP.post(
        f"{standins.openai_base}/chat/completions",
        json={"model": "gpt-stand-in", "messages": [USER]},
    )
    assert response.status_code == 401
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_openai_unknown_model_is_404_model_not_found(standins):
    with pytest.raises(openai.NotFoundError) as info:
        client(standins).chat.completions.create(model="gpt-nope", messages=[USER])
    assert info.value.code == "model_not_found"


def test_openai_fail_first_answers_500_then_recovers():
    with StandIns({"openai": {"fail_first": 1}}) as s:
        with pytest.raises(openai.InternalServerError):
            chat(s, [USER], max_retries=0)
        assert chat(s, [USER], max_retries=0).choices[0].message.content == "<FINISH_SIGNAL>"


def test_openai_always_fail_answers_500_every_time():
    with StandIns({"openai": {"always_fail": True}}) as s:
        for _ in range(2):
            with pytest.raises(openai.InternalServerError):
                chat(s, [USER], max_retries=0)


def test_openai_models_lists_the_scenarios_models():
    with StandIns({"openai": {"models": ["a", "b"]}}) as s:
        assert [m.id for m in client(s).models.list()] == ["a", "b"]
        assert client(s).models.retrieve("b").id == "b"


def test_openai_request_bodies_are_recorded(standins):
    chat(standins, [SYSTEM, USER])
    stats = standins.stats()["openai"]
    assert stats["requests"] == 1
    assert stats["bodies"][0]["messages"] == [SYSTEM, USER]


def test_openai_streaming_delivers_the_tool_call():
    with StandIns({"openai": {"script": [{"tool_calls": [PRICE_CALL]}]}}) as s:
        stream = client(s).chat.completions.create(
            model="gpt-stand-in", messages=[SYSTEM, USER], stream=True
        )
        chunks = list(stream)
    call = chunks[0].choices[0].delta.tool_calls[0]
    assert call.function.name == "get_price_local"
    assert json.loads(call.function.arguments)["date"] == "2025-10-02"
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


# -- Jina ---------------------------------------------------------------------------------------


def test_jina_search_without_key_answers_401(standins):
    response = HTTP.get(f"{standins.jina_search_url}/", params={"q": "chips"})
    assert response.status_code == 401
    assert response.json()["code"] == 401


def test_jina_search_answers_the_real_envelope(standins):
    body = HTTP.get(f"{standins.jina_search_url}/", params={"q": "chips"}, headers=AUTH).json()
    assert (body["code"], body["status"]) == (200, 20000)
    assert {"title", "url", "description", "date", "content"} <= set(body["data"][0])


def test_jina_search_defaults_include_a_past_and_a_future_article(standins):
    body = HTTP.get(f"{standins.jina_search_url}/", params={"q": "x"}, headers=AUTH).json()
    years = sorted(int(item["date"][:4]) for item in body["data"])
    assert years[0] < 2030 < years[-1]


def test_jina_search_takes_the_query_in_the_path_too(standins):
    assert HTTP.get(f"{standins.jina_search_url}/chips%20news", headers=AUTH).status_code == 200


def test_jina_search_results_follow_the_scenario():
    result = {"title": "T", "url": "https://e.com/a", "description": "D", "date": "2025-01-01",
              "content": "C"}  # fmt: skip
    with StandIns({"jina": {"results": [result]}}) as s:
        body = HTTP.get(f"{s.jina_search_url}/", params={"q": "x"}, headers=AUTH).json()
    assert [item["url"] for item in body["data"]] == ["https://e.com/a"]


def test_jina_reader_returns_the_page_of_a_known_result(standins):
    url = "https://news.example.com/2025/01/chips-rally"
    body = HTTP.get(f"{standins.jina_reader_url}/{url}").json()
    assert body["data"]["url"] == url
    assert body["data"]["publishedTime"].startswith("2025-01-15")
    assert body["data"]["content"]


def test_jina_counts_requests(standins):
    HTTP.get(f"{standins.jina_search_url}/", params={"q": "x"}, headers=AUTH)
    HTTP.get(f"{standins.jina_reader_url}/https://e.com/")
    assert standins.stats()["jina"] == {"requests": 2}


# -- control ------------------------------------------------------------------------------------


def test_control_health_answers_200(standins):
    assert HTTP.get(f"{standins.url}/_control/health").status_code == 200


def test_control_stats_over_http_match_the_python_api(standins):
    av(standins, "AAPL")
    assert HTTP.get(f"{standins.url}/_control/stats").json() == standins.stats()


def test_control_reset_zeroes_the_counters(standins):
    av(standins, "AAPL")
    assert HTTP.post(f"{standins.url}/_control/reset").status_code == 200
    assert standins.stats()["alphavantage"]["requests"] == 0


def test_control_scenario_replaces_the_scenario_and_resets_counters(standins):
    av(standins, "AAPL")
    response = HTTP.post(f"{standins.url}/_control/scenario", json={"symbols": ["TSLA"]})
    assert response.status_code == 200
    assert standins.stats()["alphavantage"]["requests"] == 0
    assert "Time Series (Daily)" in av(standins, "TSLA").json()
    assert "Error Message" in av(standins, "AAPL").json()


def test_control_scenario_rejects_a_non_object(standins):
    assert HTTP.post(f"{standins.url}/_control/scenario", json=[1]).status_code == 400


def test_unknown_path_is_404(standins):
    assert HTTP.get(f"{standins.url}/nowhere").status_code == 404


def start_process(*extra: str) -> tuple[subprocess.Popen, str]:
    """``python -m standins`` on a free port; returns the process and its base URL."""
    env = {**os.environ, "PYTHONPATH": str(TESTS_DIR)}
    process = subprocess.Popen(
        [sys.executable, "-m", "standins", "--host", "127.0.0.1", "--port", "0", *extra],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    banner = process.stderr.readline()
    found = re.search(r"(http://127\.0\.0\.1:\d+)$", banner.strip())
    if found is None:
        process.kill()
        process.wait()
        process.stderr.close()
        pytest.fail(f"no banner from the stand-ins process: {banner!r}")
    return process, found.group(1)


@pytest.fixture
def processes():
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()


def test_runs_as_a_process_and_stops_on_sigterm(processes):
    process, url = start_process()
    processes.append(process)
    assert HTTP.get(f"{url}/_control/health").status_code == 200
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0


def test_process_plays_the_scenario_file(processes, tmp_path):
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps({"symbols": ["TSLA"]}))
    process, url = start_process("--scenario", str(scenario))
    processes.append(process)
    params = {"function": "TIME_SERIES_DAILY", "symbol": "TSLA", "apikey": "k"}
    assert "Time Series (Daily)" in HTTP.get(f"{url}/alphavantage/query", params=params).json()


# -- holding chat requests ------------------------------------------------------------------


def chat_in_thread(standins: StandIns) -> tuple[threading.Thread, list]:
    answers: list = []
    worker = threading.Thread(target=lambda: answers.append(chat(standins, [SYSTEM, USER])))
    worker.start()
    return worker, answers


def wait_held(standins: StandIns, count: int, worker: threading.Thread) -> None:
    # The stand-in's own count of held requests: an event, not a clock.
    while standins.stats()["openai"]["held"] < count:
        assert worker.is_alive()
        time.sleep(0.01)


def test_a_held_chat_request_waits_unanswered_until_released(standins):
    standins.set_scenario({"openai": {"hold": True, "script": [{"content": "ok"}]}})
    worker, answers = chat_in_thread(standins)
    wait_held(standins, 1, worker)
    assert answers == []  # held: not answered
    standins.release()
    worker.join()
    assert answers[0].choices[0].message.content == "ok"
    assert standins.stats()["openai"]["held"] == 0


def test_hold_n_lets_the_first_requests_through_and_holds_from_the_nth(standins):
    standins.set_scenario({"openai": {"hold": 3, "script": [{"content": "ok"}]}})
    for _ in range(2):
        assert chat(standins, [SYSTEM, USER]).choices[0].message.content == "ok"
    assert standins.stats()["openai"]["held"] == 0
    worker, answers = chat_in_thread(standins)
    wait_held(standins, 1, worker)  # the third is held
    standins.release()
    worker.join()
    assert answers[0].choices[0].message.content == "ok"


# -- a slow model --------------------------------------------------------------------------


def wait_in_flight(standins: StandIns, count: int, workers: list[threading.Thread]) -> None:
    # The stand-in's own count of requests being answered: an event, not a clock. The
    # deadline only keeps a server that answers one request at a time from hanging the test.
    deadline = time.monotonic() + 60
    while standins.stats()["openai"]["in_flight"] < count:
        assert all(worker.is_alive() for worker in workers)
        if time.monotonic() > deadline:
            pytest.fail(f"never {count} chat requests in flight at once")
        time.sleep(0.01)


def test_delayed_chat_requests_wait_side_by_side_not_one_after_another():
    # A delay far longer than the test: both requests are in their delay at once, which a
    # server answering one request at a time could never show.
    with StandIns({"openai": {"delay": 3600, "script": [{"content": "ok"}]}}) as standins:
        started = [chat_in_thread(standins) for _ in range(2)]
        workers = [worker for worker, _ in started]
        wait_in_flight(standins, 2, workers)
        assert [answers for _, answers in started] == [[], []]
        assert standins.stats()["openai"]["max_in_flight"] == 2
        standins.stop()  # ends the delays: both are answered now
        for worker in workers:
            worker.join()
    assert [answers[0].choices[0].message.content for _, answers in started] == ["ok", "ok"]
    assert standins.stats()["openai"]["in_flight"] == 0


def test_max_in_flight_counts_from_the_last_reset(standins):
    chat(standins, [SYSTEM, USER])
    chat(standins, [SYSTEM, USER])
    assert standins.stats()["openai"]["max_in_flight"] == 1  # one after the other
    standins.reset()
    assert standins.stats()["openai"]["max_in_flight"] == 0
