"""Recorded responses and sampling settings (``agent.responses``): a request's key, record and
replay of whole runs against the stand-in model API, a replay with no network, and a record
that survives a kill the way the book does."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ai_trader.agent.responses import NotRecorded, Recording, read_record, request_key
from ai_trader.config import parse_config
from ai_trader.errors import UserError
from ai_trader.layout import BookPaths
from standins import StandIns
from unit.support import Services
from unit.test_end_to_end import DAYS, position_file, rows_of, run, write_config

SCRIPT = [
    {"tool_calls": [{"name": "get_price_local",
                     "arguments": {"symbol": "MSFT", "date": "{today}"}}]},
    {"tool_calls": [{"name": "buy", "arguments": {"symbol": "MSFT", "amount": 1}}]},
    {"content": "Done. <FINISH_SIGNAL>"},
]  # fmt: skip
REQUESTS_A_DAY = len(SCRIPT)
SAMPLING = {"temperature": 0, "top_p": 0.5, "seed": 7, "max_tokens": 64}
RECORDED_DAYS = DAYS[-3:]


# --- the key and the record ------------------------------------------------------------------


def test_a_requests_key_does_not_depend_on_the_order_of_its_keys():
    a = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "seed": 1}
    b = {"seed": 1, "messages": [{"content": "hi", "role": "user"}], "model": "m"}
    assert request_key(a) == request_key(b)


def test_a_requests_key_changes_with_any_sampling_parameter():
    base = {"model": "m", "messages": [], "tools": []}
    assert request_key(base) != request_key({**base, "temperature": 0})
    assert request_key({**base, "seed": 1}) != request_key({**base, "seed": 2})


def test_replay_answers_the_same_request_twice_in_the_order_it_was_recorded(tmp_path: Path):
    record = Recording("record", tmp_path)
    record.start_day("2025-10-01")
    record.keep("k", 1, {"id": "first"})
    record.keep("k", 2, {"id": "second"})
    record.commit("2025-10-01")
    replay = Recording("replay", tmp_path)
    replay.start_day("2025-10-01")
    assert [replay.recorded("k", 1)["id"], replay.recorded("k", 2)["id"]] == ["first", "second"]
    with pytest.raises(NotRecorded, match=r"step 3's request \(key k\) is not in the record"):
        replay.recorded("k", 3)


def test_recording_a_day_again_replaces_the_earlier_attempt(tmp_path: Path):
    record = Recording("record", tmp_path)
    for attempt in ("first", "second"):
        record.start_day("2025-10-01")
        record.keep("k", 1, {"id": attempt})
        record.commit("2025-10-01")
    assert [e["response"]["id"] for e in read_record(tmp_path / "2025-10-01.jsonl")] == ["second"]


def test_a_damaged_record_is_one_line_naming_the_line(tmp_path: Path):
    path = tmp_path / "2025-10-01.jsonl"
    path.write_text('{"key": "k", "response": {}}\nnot json\n', encoding="utf-8")
    with pytest.raises(UserError) as caught:
        read_record(path)
    assert str(caught.value) == f"{path}:2: not a recorded response"


# --- the settings ------------------------------------------------------------------------------


def entry(**settings: Any) -> dict[str, Any]:
    model = {"name": "m", "basemodel": "gpt-stand-in", "signature": "m", **settings}
    return {"date_range": {"init_date": "2025-10-01", "end_date": "2025-10-31"}, "models": [model]}


def test_the_sampling_settings_are_those_the_entry_sets():
    (model,) = parse_config(entry(temperature=0.2, seed=3), "c.json").models
    assert model.sampling == {"temperature": 0.2, "seed": 3}
    assert model.responses == "off"


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"temperature": -0.1}, "models.0.temperature: "),
        ({"top_p": 0}, "models.0.top_p: "),
        ({"max_tokens": 0}, "models.0.max_tokens: "),
        ({"seed": "7"}, "models.0.seed: "),
        ({"responses": "replay-all"}, "models.0.responses: "),
    ],
)
def test_a_bad_sampling_or_responses_setting_is_one_line_naming_it(settings: dict, problem: str):
    with pytest.raises(UserError) as caught:
        parse_config(entry(**settings), "c.json")
    assert str(caught.value).startswith(f"config c.json: {problem}")
    assert "\n" not in str(caught.value)


# --- whole runs against the stand-in -----------------------------------------------------------


def config_for(folder: Path, books: Path, **settings: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    models = [{"name": "m", "basemodel": "gpt-stand-in", "signature": "m", **settings}]
    return write_config(folder, books, models, init_date=DAYS[-4])


def model_env(services: Services, standins: StandIns | None) -> dict[str, str]:
    if standins is None:
        return {}  # replay: no key, no base URL
    return {"OPENAI_API_KEY": "test-key", "OPENAI_API_BASE": standins.openai_base}


@pytest.fixture(scope="module")
def recorded(services: Services, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One run in record mode, with sampling set: its books, its output and what the stand-in
    was sent."""
    folder = tmp_path_factory.mktemp("recorded")
    books = services.new_books()
    config = config_for(folder, books, responses="record", **SAMPLING)
    with StandIns({"openai": {"script": SCRIPT}}) as standins:
        result = run(services, config, **model_env(services, standins))
        bodies = standins.stats()["openai"]["bodies"]
    assert result.returncode == 0, result.stderr
    return {"books": books, "bodies": bodies}


def logs_without_times(root: Path, day: str) -> list[dict[str, Any]]:
    entries = rows_of(BookPaths(root).log_file(day))
    return [{k: v for k, v in e.items() if k != "timestamp"} for e in entries]


def test_every_request_carries_the_sampling_settings(recorded: dict[str, Any]):
    assert len(recorded["bodies"]) == REQUESTS_A_DAY * len(RECORDED_DAYS)
    for body in recorded["bodies"]:
        assert {k: body[k] for k in SAMPLING} == SAMPLING


def test_record_keeps_each_days_requests_once_in_order(recorded: dict[str, Any]):
    folder = recorded["books"] / "m" / "responses"
    assert sorted(p.name for p in folder.iterdir()) == [f"{d}.jsonl" for d in RECORDED_DAYS]
    for day in RECORDED_DAYS:
        entries = read_record(folder / f"{day}.jsonl")
        assert [e["step"] for e in entries] == [1, 2, 3]
        assert all(e["response"]["object"] == "chat.completion" for e in entries)


def test_replay_with_no_model_server_gives_the_same_book_and_logs(
    recorded: dict[str, Any], services: Services, tmp_path: Path
):
    books = services.new_books()
    config = config_for(
        tmp_path,
        books,
        responses="replay",
        responses_from=str(recorded["books"] / "m" / "responses"),
        **SAMPLING,
    )
    # No key and no API base: a request that reached for the network would fail the run.
    result = run(services, config)
    assert result.returncode == 0, result.stderr
    assert (
        position_file(books, "m").read_bytes() == position_file(recorded["books"], "m").read_bytes()
    )
    for day in RECORDED_DAYS:
        assert logs_without_times(books / "m", day) == logs_without_times(
            recorded["books"] / "m", day
        )


def test_replay_of_a_request_the_record_lacks_names_the_day_and_step_and_commits_nothing(
    recorded: dict[str, Any], services: Services, tmp_path: Path
):
    books = services.new_books()
    record = recorded["books"] / "m" / "responses"
    # Another temperature: every request has another key.
    config = config_for(
        tmp_path, books, responses="replay", responses_from=str(record), **{**SAMPLING, "seed": 8}
    )
    result = run(services, config)
    assert result.returncode != 0
    (line,) = [x for x in result.stderr.splitlines() if "error:" in x]
    assert f"m on {RECORDED_DAYS[0]}: replay: step 1's request (key " in line
    assert "Traceback" not in result.stderr
    assert len(rows_of(position_file(books, "m"))) == 1  # the opening row only


def test_replay_with_no_record_is_refused_before_anything_is_written(
    services: Services, tmp_path: Path
):
    books = services.new_books()
    result = run(services, config_for(tmp_path, books, responses="replay"))
    assert result.returncode == 2
    assert f"model m: responses replay: no record in {books / 'm' / 'responses'}" in result.stderr
    assert not (books / "m").exists()


def test_a_recording_run_killed_mid_day_records_that_day_again_once(
    recorded: dict[str, Any], services: Services, tmp_path: Path
):
    """The stand-in holds the second day's second request, unanswered, and the run is
    killed while it waits: the kill cannot race the run (the request is never answered), and
    the day it lands in is known."""
    books = services.new_books()
    config = config_for(tmp_path, books, responses="record", **SAMPLING)
    held = REQUESTS_A_DAY + 2
    with StandIns({"openai": {"script": SCRIPT, "hold": held}}) as standins:
        process = subprocess.Popen(
            [sys.executable, "-m", "ai_trader", "run", str(config)],
            env={**services.env, **model_env(services, standins)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while standins.stats()["openai"]["held"] == 0:
                assert process.poll() is None, "the run ended before the held request"
                time.sleep(0.05)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
        folder = books / "m" / "responses"
        assert sorted(p.name for p in folder.iterdir()) == [f"{RECORDED_DAYS[0]}.jsonl"]
        standins.release()
        standins.set_scenario({"openai": {"script": SCRIPT}})
        again = run(services, config, **model_env(services, standins))
    assert again.returncode == 0, again.stderr
    for day in RECORDED_DAYS:
        assert [e["step"] for e in read_record(folder / f"{day}.jsonl")] == [1, 2, 3]
    # And what it recorded replays to the undisturbed run's book.
    replayed = services.new_books()
    shutil.copytree(folder, replayed / "m" / "responses")
    replay = config_for(tmp_path / "replay", replayed, responses="replay", **SAMPLING)
    assert run(services, replay).returncode == 0
    assert position_file(replayed, "m").read_bytes() == (
        position_file(recorded["books"], "m").read_bytes()
    )


def test_the_stand_in_saw_no_request_during_a_replay(
    recorded: dict[str, Any], services: Services, tmp_path: Path
):
    books = services.new_books()
    record = recorded["books"] / "m" / "responses"
    config = config_for(tmp_path, books, responses="replay", responses_from=str(record), **SAMPLING)
    with StandIns({"openai": {"script": SCRIPT}}) as standins:
        result = run(services, config, **model_env(services, standins))
        assert standins.stats()["openai"]["requests"] == 0
    assert result.returncode == 0, result.stderr


def test_replay_needs_no_key_even_when_the_entry_names_one(services: Services, tmp_path: Path):
    books = services.new_books()
    result = run(
        services, config_for(tmp_path, books, responses="replay", api_key_env="NOT_SET_HERE")
    )
    # Refused for the missing record, not for the missing key.
    assert "responses replay: no record" in result.stderr
    assert "NOT_SET_HERE" not in result.stderr
