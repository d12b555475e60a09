"""Trap cleanup: every way out stops the services, reports a meaningful status, loses nothing.

A run is stopped the ways users stop one: `docker compose stop`, `docker compose down` and
Ctrl-C on an attached `docker compose up`, never with a `--timeout` of ours, so the compose
file's own stop_grace_period decides. The engine's events say which signal it sent and the
exit code at `die`.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import engine
import pytest
from conftest import (
    HELD_REQUEST,
    REQUESTS_A_DAY,
    SERVICE,
    SLOW_MODEL,
    TWO_BUYS,
    Stack,
    buys_by_day,
    short_config,
    slow_config,
)

pytestmark = pytest.mark.container


ROUTES = ["compose-stop", "compose-down", "ctrl-c-on-compose-up"]


@dataclass
class Stopped:
    """What a user's stop left: the signal the engine sent, the exit code, the logs."""

    signal: int | None
    exit_code: int | None
    kill_signals: list[int]
    logs: str
    complete_days: int  # days the run had committed when it was stopped
    run: dict[str, str]  # the run's settings, to start it again


StoppedStack = tuple[Stack, Stopped]


def start_slow_run(stack: Stack, attached: bool) -> tuple[dict[str, str], Any]:
    """A model that stops answering between the third day's two buys (HELD_REQUEST): the
    run stays there until it is stopped.

    Returns the run's settings and, for an attached `compose up`, its process."""
    stack.standins.set_scenario({"openai": {"script": TWO_BUYS, "hold": HELD_REQUEST}})
    config = stack.data_config("slow.json", slow_config())
    run = {"AI_TRADER_CONFIG": config, "OPENAI_API_KEY": "sk-x"}
    process = None
    if attached:
        # `docker compose up ai-trader` in a terminal: attached, its logs on the screen.
        since = time.time()
        process = stack.compose.popen("up", "--no-deps", SERVICE, env=stack.run_env(run))
        deadline = time.monotonic() + 120
        while stack.find() is None:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "compose up never created the container"
            time.sleep(0.2)
        # Created is not started: logs followed before the start end at once, empty (a
        # detached `up` returns only once the container runs). Wait for the start event.
        engine.wait_event(stack.container().id, "start", since, timeout=120)
    else:
        stack.up(**run)
    return run, process


def wait_between_two_buys(stack: Stack) -> int:
    """Wait until the stand-in holds the model's request for a day's second buy, its first
    already placed. Returns how many days were complete then.

    The stop that follows cannot race the run: the held request is never answered, so the
    run is still between the two buys when the stop arrives, however long that takes (its
    model client would wait 120 s). It used to be a model answering in 0.5 s, and a stop
    that took longer than that to arrive found the day's second buy placed, or the day done.
    """
    deadline = time.monotonic() + 150  # the run's start and two days; a bound, not a pace
    while (stats := stack.standins.stats()["openai"])["held"] == 0:
        assert time.monotonic() < deadline, f"the run never reached the held request: {stats}"
        time.sleep(0.05)
    assert stats["requests"] == HELD_REQUEST, stats
    return (HELD_REQUEST - 1) // REQUESTS_A_DAY


def stop_as_a_user(stack: Stack, route: str) -> Stopped:
    """Start a slow run, then stop it between two buys the way `route` says, with no
    timeout of ours: the compose file's stop_grace_period decides."""
    run, attached = start_slow_run(stack, attached=route == "ctrl-c-on-compose-up")
    box = stack.container()
    follower = engine.LogFollower(box)  # the logs outlive a `down`, which removes the container
    follower.start()
    complete = wait_between_two_buys(stack)
    since = time.time()
    if route == "compose-stop":
        stack.stop()
    elif route == "compose-down":
        # `docker compose down` for this one service: the shared stand-ins stay up.
        stack.compose("down", SERVICE, env=stack.env)
        assert stack.find() is None
    else:
        assert attached is not None
        attached.send_signal(signal.SIGINT)
        attached.communicate(timeout=120)
    engine.wait_event(box.id, "die", since, timeout=60)
    follower.join(timeout=30)
    record = engine.container_events(box.id, since)
    sent, code = engine.exit_signal(record)
    kills = [int(e.attributes.get("signal", 0)) for e in record if e.action == "kill"]
    return Stopped(sent, code, kills, follower.text(), complete, run)


@pytest.fixture(
    scope="module",
    # One stop a route, read by both tests below: its status first, then the resume on
    # the same folder. The group keeps a route's two tests on one xdist worker.
    params=[pytest.param(r, marks=pytest.mark.xdist_group(f"cleanup-{r}")) for r in ROUTES],
)
def stopped_stack(new_stack: Any, request: pytest.FixtureRequest) -> Iterator[StoppedStack]:
    current = new_stack()
    try:
        yield current, stop_as_a_user(current, request.param)
    finally:
        current.down()


@pytest.fixture
def stopped(stopped_stack: StoppedStack) -> Stopped:
    return stopped_stack[1]


def all_json_valid(stack: Stack) -> None:
    for path in stack.data.rglob("*.json"):
        json.loads(path.read_text())
    for path in stack.data.rglob("*.jsonl"):
        for line in path.read_text().splitlines():
            json.loads(line)


def test_a_user_stop_ends_through_the_cleanup_with_the_status_of_its_signal(
    stopped: Stopped,
) -> None:
    assert stopped.signal in (signal.SIGINT, signal.SIGTERM), stopped
    assert signal.SIGKILL not in stopped.kill_signals, stopped.logs  # the grace period held
    assert stopped.exit_code == 128 + stopped.signal, stopped.logs  # 130 or 143, never 137
    name = signal.Signals(stopped.signal).name
    assert f"received {name}" in stopped.logs
    assert "cleanup: stopping the services" in stopped.logs
    assert "serve: all services stopped" in stopped.logs  # the services shut down, not killed
    assert f"cleanup: done; exit status {stopped.exit_code}" in stopped.logs


def test_after_a_user_stop_the_book_is_whole_and_the_next_run_resumes(
    stopped_stack: StoppedStack,
) -> None:
    stack, stopped = stopped_stack
    all_json_valid(stack)
    before = stack.positions("slow")
    days = buys_by_day(before)
    assert len(days) == stopped.complete_days, days  # the day under way left nothing behind
    assert set(days.values()) == {2}, days  # every committed day holds both of its buys
    stack.standins.set_scenario({"openai": {"script": TWO_BUYS}})
    stack.up(**stopped.run)  # the same config, started again
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


def test_services_that_die_while_the_model_thinks_stop_the_container_at_once(
    stack: Stack, record_property: Any
) -> None:
    """The entrypoint waits on the services and the agent together: when the services die
    while the agent waits on a slow model, the container stops then, with one error line,
    not at the agent's next tool call. The model here answers after an hour, so a container
    that waited for the agent's next call would still be running when the wait gives up."""
    stack.standins.set_scenario({"openai": {"delay": 3600}})
    config = short_config(end_date="2025-10-31", models=[SLOW_MODEL])
    stack.up(AI_TRADER_CONFIG=stack.data_config("slow.json", config), OPENAI_API_KEY="sk-x")
    stack.wait_until(lambda: stack.standins.stats()["openai"]["requests"] >= 1)
    box = stack.container()
    since = time.time()
    serve = engine.find_process(box, "python -m ai_trader serve")
    engine.signal_process(box, serve.pid, signal.SIGKILL)
    assert stack.wait_exit(timeout=120) == 4  # 4: the services failed or died
    died = engine.wait_event(box.id, "die", since, timeout=30)
    record_property("seconds_from_kill_to_die", round(died.time - since, 3))
    logs = stack.logs_text()
    errors = [line for line in logs.splitlines() if " error: " in line]
    assert len(errors) == 1, logs
    assert errors[0].endswith("entrypoint: error: the services exited unexpectedly (status 137)")
    assert "cleanup: stopping the agent" in logs
    assert "Traceback" not in logs
    assert stack.standins.stats()["openai"]["requests"] == 1  # the model never answered
