"""The model path and custom configs, through compose."""

from __future__ import annotations

import pytest
from conftest import Stack, short_config

from ai_trader.layout import BookPaths, books_dir

pytestmark = pytest.mark.container

MODEL = {"name": "stand-in", "basemodel": "gpt-stand-in", "signature": "llm", "enabled": True}


def test_a_scripted_model_looks_up_a_price_buys_and_the_trade_lands(stack: Stack) -> None:
    stack.standins.set_scenario(
        {
            "openai": {
                "script": [
                    {
                        "tool_calls": [
                            {
                                "name": "get_price_local",
                                "arguments": {"symbol": "NVDA", "date": "{today}"},
                            }
                        ]
                    },
                    {"tool_calls": [{"name": "buy", "arguments": {"symbol": "NVDA", "amount": 3}}]},
                    {"content": "Bought. <FINISH_SIGNAL>"},
                ]
            }
        }
    )
    config = short_config(end_date="2025-10-02", models=[MODEL])
    stack.up(AI_TRADER_CONFIG=stack.data_config("llm.json", config), OPENAI_API_KEY="sk-stand-in")
    assert stack.wait_exit() == 0, stack.logs_text()
    trades = [row for row in stack.positions("llm") if "this_action" in row]
    assert [r["this_action"] for r in trades] == [
        {"action": "buy", "symbol": "NVDA", "amount": 3},
        {"action": "buy", "symbol": "NVDA", "amount": 3},
    ]
    assert trades[-1]["positions"]["NVDA"] == 6
    bodies = stack.standins.stats()["openai"]["bodies"]
    offered = {tool["function"]["name"] for tool in bodies[0]["tools"]}
    assert {"add", "multiply", "get_information", "buy", "sell", "get_price_local"} <= offered


def test_compose_run_takes_a_custom_config(stack: Stack) -> None:
    config = short_config(end_date="2025-10-02")
    config["models"][0]["signature"] = "custom-run"
    volume = stack.mount_config("custom.json", config)
    done = stack.run("configs/custom.json", volumes=(volume,))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "config configs/custom.json" in done.stderr
    rows = stack.positions("custom-run")
    assert rows[-1]["date"] == "2025-10-02"


def test_compose_run_with_a_bad_config_prints_one_line_and_exits_non_zero(stack: Stack) -> None:
    volume = stack.mount_config("broken.json", {"date_range": "soon", "models": []})
    done = stack.run("configs/broken.json", volumes=(volume,))
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert done.returncode == 2
    assert errors[0].startswith("ai-trader run: error: config configs/broken.json: date_range")
    assert "Traceback" not in done.stderr


def test_compose_run_with_a_missing_config_names_it(stack: Stack) -> None:
    done = stack.run("configs/nope.json")
    assert done.returncode == 2
    assert "configs/nope.json not found" in done.stderr


def test_a_run_recorded_in_the_container_replays_there_to_the_same_book_with_no_request(
    stack: Stack,
) -> None:
    script = [
        {"tool_calls": [{"name": "buy", "arguments": {"symbol": "MSFT", "amount": 2}}]},
        {"content": "Done. <FINISH_SIGNAL>"},
    ]
    stack.standins.set_scenario({"openai": {"script": script}})
    sampling = {"temperature": 0, "seed": 11}
    recorder = {**MODEL, "signature": "rec", "responses": "record", **sampling}
    config = short_config(end_date="2025-10-03", models=[recorder])
    stack.up(AI_TRADER_CONFIG=stack.data_config("rec.json", config), OPENAI_API_KEY="sk-stand-in")
    assert stack.wait_exit() == 0, stack.logs_text()
    asked = stack.standins.stats()["openai"]["requests"]
    assert asked > 0

    replayer = {
        **MODEL,
        "signature": "rep",
        "responses": "replay",
        "responses_from": "/app/data/agent_data/rec/responses",
        **sampling,
    }
    config = short_config(end_date="2025-10-03", models=[replayer])
    stack.up(AI_TRADER_CONFIG=stack.data_config("rep.json", config))  # and no key at all
    assert stack.wait_exit() == 0, stack.logs_text()
    assert stack.standins.stats()["openai"]["requests"] == asked  # not one more
    assert stack.positions("rep") == stack.positions("rec")
    recorded = BookPaths(books_dir(stack.data) / "rec").position_file.read_bytes()
    assert BookPaths(books_dir(stack.data) / "rep").position_file.read_bytes() == recorded
