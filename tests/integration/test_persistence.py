"""Persistence across restarts: positions and logs survive; a rerun resumes, no duplicates."""

from __future__ import annotations

import time

import pytest
from conftest import Stack

pytestmark = pytest.mark.container

SHORT = {"END_DATE": "2025-10-08"}


def assert_consistent(rows: list[dict]) -> None:
    """One opening row, ids strictly increasing, no (date, id) twice, dates in order."""
    ids = [row["id"] for row in rows]
    assert ids == sorted(set(ids)), ids
    dates = [row["date"] for row in rows]
    assert dates == sorted(dates)
    assert rows[0]["id"] == 0
    assert "this_action" not in rows[0]


def test_a_finished_run_exits_zero_and_does_not_start_again(stack: Stack) -> None:
    stack.up(**SHORT)
    assert stack.wait_exit() == 0, stack.logs_text()
    time.sleep(3)
    state = stack.inspect()
    assert state["State"]["Status"] == "exited"
    assert state["RestartCount"] == 0


def test_positions_survive_a_restart_and_the_rerun_adds_nothing(stack: Stack) -> None:
    stack.up(**SHORT)
    assert stack.wait_exit() == 0, stack.logs_text()
    before = stack.positions()
    stack.restart()
    assert stack.wait_exit() == 0, stack.logs_text()
    assert stack.positions() == before
    assert "nothing to do" in stack.logs_text()


def test_positions_and_logs_survive_down_then_up(stack: Stack) -> None:
    stack.up(**SHORT)
    assert stack.wait_exit() == 0, stack.logs_text()
    before = stack.positions()
    day_logs = sorted(p.parent.name for p in stack.data.glob("agent_data/*/log/*/log.jsonl"))
    stack.down()
    assert stack.container_id() == ""
    stack.up(**SHORT)
    assert stack.wait_exit() == 0, stack.logs_text()
    assert stack.positions() == before
    assert (
        sorted(p.parent.name for p in stack.data.glob("agent_data/*/log/*/log.jsonl")) == day_logs
    )
    runs = (stack.logs / "entrypoint.log").read_text().count("starting; config")
    assert runs == 2


def day_logs(stack: Stack) -> dict[str, bytes]:
    return {
        path.parent.name: path.read_bytes()
        for path in stack.data.glob("agent_data/*/log/*/log.jsonl")
    }


def test_a_longer_range_resumes_after_the_last_completed_day(stack: Stack) -> None:
    stack.up(END_DATE="2025-10-03")
    assert stack.wait_exit() == 0, stack.logs_text()
    first = stack.positions()
    first_logs = day_logs(stack)
    stack.down()
    stack.up(END_DATE="2025-10-08")
    assert stack.wait_exit() == 0, stack.logs_text()
    rows = stack.positions()
    assert rows[: len(first)] == first
    new_days = sorted({row["date"] for row in rows[len(first) :]})
    assert new_days == ["2025-10-06", "2025-10-07", "2025-10-08"]
    assert_consistent(rows)
    # A completed day is not traded again, not even in its log (a redo the ledger then
    # refuses would still replace the day's log with trades that never happened).
    logs = day_logs(stack)
    assert {day: logs.get(day) for day in first_logs} == first_logs
