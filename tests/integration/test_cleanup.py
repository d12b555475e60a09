"""Trap cleanup: every way out stops the services, reports a meaningful status, loses nothing."""

from __future__ import annotations

import json
import os
import time

import pytest
from conftest import Stack, short_config

pytestmark = pytest.mark.container

SLOW_MODEL = {"name": "slow", "basemodel": "gpt-stand-in", "signature": "slow", "enabled": True}
BUY = {"tool_calls": [{"name": "buy", "arguments": {"symbol": "AAPL", "amount": 1}}]}
# Each day: buy, buy, finish. Three model requests a day, so a day that was cut short
# shows up as a day with one buy.
TWO_BUYS = [BUY, BUY, {"content": "done <FINISH_SIGNAL>"}]
REQUESTS_A_DAY = len(TWO_BUYS)


def start_slow_run(stack: Stack, delay: float = 0.5) -> dict[str, str]:
    """A model answering in `delay` s per step: the run lasts long enough to stop midway."""
    stack.standins.set_scenario({"openai": {"delay": delay, "script": TWO_BUYS}})
    config = short_config(
        end_date="2025-10-31",
        models=[SLOW_MODEL],
        # Cash for two buys on every day of the range.
        agent_config={"max_steps": 5, "max_retries": 0, "base_delay": 0, "initial_cash": 1e6},
    )
    run = {"AI_TRADER_CONFIG": stack.data_config("slow.json", config), "OPENAI_API_KEY": "sk-x"}
    stack.up(**run)
    stack.wait_for_log("slow [2/")  # two days committed, the third under way
    return run


def stop_between_two_buys(stack: Stack) -> int:
    """Stop while the model thinks about a day's second buy, its first already placed.

    Returns how many days were complete then."""
    deadline = time.monotonic() + 30
    while (requests := stack.standins.stats()["openai"]["requests"]) % REQUESTS_A_DAY != 2:
        assert time.monotonic() < deadline, "the run never reached a day's second request"
        time.sleep(0.05)
    stack.stop(timeout=10)
    stack.wait_exit()
    return requests // REQUESTS_A_DAY


def all_json_valid(stack: Stack) -> None:
    for path in stack.data.rglob("*.json"):
        json.loads(path.read_text())
    for path in stack.data.rglob("*.jsonl"):
        for line in path.read_text().splitlines():
            json.loads(line)


def buys_by_day(rows: list[dict]) -> dict[str, int]:
    days: dict[str, int] = {}
    for row in rows:
        if row.get("this_action", {}).get("action") == "buy":
            days[row["date"]] = days.get(row["date"], 0) + 1
    return days


def test_stop_mid_run_runs_the_cleanup_and_exits_143_not_137(stack: Stack) -> None:
    start_slow_run(stack)
    took = stack.stop(timeout=10)
    code = stack.wait_exit()
    logs = stack.logs_text()
    print(f"docker compose stop took {took:.2f} s")  # a figure for the record, not a pass mark
    assert code == 143, logs
    assert "received SIGTERM" in logs
    assert "cleanup: stopping the services" in logs
    assert "serve: all services stopped" in logs  # the services shut down, not killed


def test_a_day_cut_short_by_a_stop_is_not_in_the_book(stack: Stack) -> None:
    start_slow_run(stack)
    complete = stop_between_two_buys(stack)
    all_json_valid(stack)
    days = buys_by_day(stack.positions("slow"))
    assert len(days) == complete, days  # the day under way left nothing behind
    assert set(days.values()) == {2}, days  # every committed day holds both of its buys


def test_the_run_after_a_stop_resumes_without_duplicates(stack: Stack) -> None:
    run = start_slow_run(stack)
    stop_between_two_buys(stack)
    before = stack.positions("slow")
    stack.standins.set_scenario({"openai": {"script": TWO_BUYS}})
    stack.up(**run)  # the same container and config, started again
    assert stack.wait_exit() == 0, stack.logs_text()
    rows = stack.positions("slow")
    assert rows[: len(before)] == before
    days = buys_by_day(rows)
    assert set(days.values()) == {2}, days  # the interrupted day redone once, not twice
    assert max(days) == "2025-10-31"


def test_a_bad_config_stops_the_container_with_a_one_line_error(stack: Stack) -> None:
    bad = short_config()
    del bad["date_range"]["end_date"]
    stack.up(AI_TRADER_CONFIG=stack.data_config("bad.json", bad))
    code = stack.wait_exit()
    logs = stack.logs_text()
    assert code == 2, logs
    assert "date_range.end_date" in logs
    assert "Traceback" not in logs
    assert "cleanup: stopping the services" in logs


def test_a_failing_model_api_stops_the_services_and_exits_non_zero(stack: Stack) -> None:
    stack.standins.set_scenario({"openai": {"always_fail": True}})
    config = short_config(
        models=[SLOW_MODEL], agent_config={"max_steps": 3, "max_retries": 1, "base_delay": 0}
    )
    stack.up(AI_TRADER_CONFIG=stack.data_config("failing.json", config), OPENAI_API_KEY="sk-x")
    code = stack.wait_exit()
    logs = stack.logs_text()
    assert code == 1, logs  # the run failed; the input was fine
    assert "the API failed 2 time(s)" in logs
    assert "Traceback" not in logs
    assert "cleanup: stopping the services" in logs
    assert "serve: all services stopped" in logs


def test_unwritable_data_folder_is_a_clear_error(stack: Stack) -> None:
    # A user's folder without the write bit: the run takes its owner, who cannot write it.
    # (A folder root owns would be handed over instead: see test_users.py.)
    stack.data.chmod(0o555)
    if os.geteuid() == 0:
        os.chown(stack.data, 1234, 1234)
    stack.up()
    code = stack.wait_exit()
    logs = stack.logs_text()
    assert code == 2, logs
    assert "is not writable by uid" in logs
