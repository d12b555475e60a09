"""Trap cleanup: every way out stops the services, reports a meaningful status, loses nothing."""

from __future__ import annotations

import json
import os

import pytest
from conftest import Stack, short_config

pytestmark = pytest.mark.container

SLOW_MODEL = {"name": "slow", "basemodel": "gpt-stand-in", "signature": "slow", "enabled": True}


def start_slow_run(stack: Stack, delay: float = 0.5) -> dict[str, str]:
    """A model answering in `delay` s per step: the run lasts long enough to stop midway."""
    stack.standins.set_scenario(
        {
            "openai": {
                "delay": delay,
                "script": [
                    {"tool_calls": [{"name": "buy", "arguments": {"symbol": "AAPL", "amount": 1}}]},
                    {"content": "done <FINISH_SIGNAL>"},
                ],
            }
        }
    )
    config = short_config(
        end_date="2025-10-31",
        models=[SLOW_MODEL],
        agent_config={"max_steps": 3, "max_retries": 0, "base_delay": 0},
    )
    run = {"AI_TRADER_CONFIG": stack.data_config("slow.json", config), "OPENAI_API_KEY": "sk-x"}
    stack.up(**run)
    stack.wait_for_log("slow [2/")  # two days committed, the third under way
    return run


def all_json_valid(stack: Stack) -> None:
    for path in stack.data.rglob("*.json"):
        json.loads(path.read_text())
    for path in stack.data.rglob("*.jsonl"):
        for line in path.read_text().splitlines():
            json.loads(line)


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


def test_stop_mid_run_leaves_every_file_valid_and_no_half_day(stack: Stack) -> None:
    start_slow_run(stack)
    stack.stop(timeout=10)
    stack.wait_exit()
    all_json_valid(stack)
    rows = stack.positions("slow")
    days = {row["date"] for row in rows if "this_action" in row}
    for day in days:
        # Every committed day carries its one scripted buy and nothing else.
        actions = [row["this_action"]["action"] for row in rows if row["date"] == day]
        assert actions == ["buy"], (day, actions)


def test_the_run_after_a_stop_resumes_without_duplicates(stack: Stack) -> None:
    run = start_slow_run(stack)
    stack.stop(timeout=10)
    stack.wait_exit()
    before = stack.positions("slow")
    stack.standins.set_scenario(
        {
            "openai": {
                "script": [
                    {"tool_calls": [{"name": "buy", "arguments": {"symbol": "AAPL", "amount": 1}}]},
                    {"content": "done <FINISH_SIGNAL>"},
                ]
            }
        }
    )
    stack.up(**run)  # the same container and config, started again
    assert stack.wait_exit() == 0, stack.logs_text()
    rows = stack.positions("slow")
    assert rows[: len(before)] == before
    dates = [row["date"] for row in rows if "this_action" in row]
    assert len(dates) == len(set(dates))  # one buy a day, none twice
    assert dates[-1] == "2025-10-31"


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
    stack.data.chmod(0o755)
    os.chown(stack.data, 0, 0)
    stack.up()
    code = stack.wait_exit()
    logs = stack.logs_text()
    assert code == 2, logs
    assert "is not writable by uid 1000" in logs
