"""One writer per signature, across containers: a second container that shares the data
folder cannot run a signature that a live run in the first one holds."""

from __future__ import annotations

import time

import pytest
from conftest import Stack, short_config

from ai_trader.layout import BookPaths, books_dir

pytestmark = pytest.mark.container

SLOW = {"name": "slow", "basemodel": "gpt-stand-in", "signature": "slow", "enabled": True}


def test_a_second_container_is_refused_a_signature_the_first_is_running(stack: Stack) -> None:
    # A model that answers in 20 s keeps the first run on its first day for a while.
    stack.standins.set_scenario({"openai": {"delay": 20.0}})
    config = stack.data_config(
        "slow.json",
        short_config(end_date="2025-10-31", models=[SLOW], agent_config={"max_steps": 1}),
    )
    stack.up(AI_TRADER_CONFIG=config, OPENAI_API_KEY="sk-x")
    lock = BookPaths(books_dir(stack.data) / "slow").lock_file
    deadline = time.monotonic() + 120
    while not (lock.is_file() and lock.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.2)
    holder = lock.read_text()
    first = stack.container()
    assert first.id[:12] in holder, holder  # the first container's hostname is its id

    second = stack.run(config, OPENAI_API_KEY="sk-x")

    output = second.stdout + second.stderr  # compose passes the container's output through
    assert second.returncode == 2, output
    refusals = [line for line in output.splitlines() if "ai-trader run: error:" in line]
    assert len(refusals) == 1, output
    assert "signature 'slow' is already being run by pid " in refusals[0]
    assert f" on {first.id[:12]} (since " in refusals[0]
    first.reload()
    assert first.status == "running"  # the first run goes on, untouched
