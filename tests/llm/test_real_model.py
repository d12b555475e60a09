"""Three days of `ai-trader run` against a real model server and a real (small) model.

One run, made once for the module, and what it must leave whatever the model said: a book
with one committed set of rows a day, and a log in which every call the model made came back
to it as a tool message. A model this small answers with text where a call was wanted, with
arguments that are not JSON, with calls to tools that do not exist or that the services
refuse; what it did is counted and printed, never asserted, because it depends on the model.
"""

from __future__ import annotations

import itertools
import json
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from stack import (
    DAYS,
    GUARD_SECONDS,
    INIT,
    ModelServer,
    books,
    day_messages,
    model_env,
    rows_of,
    write_config,
)

from ai_trader.agent.model import FINISH_SIGNAL
from unit.support import Services, run_cli


@dataclass
class LlmRun:
    log_path: Path
    result: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def llm_run(
    tmp_path_factory: pytest.TempPathFactory, services: Services, model: ModelServer
) -> LlmRun:
    log_path = services.new_books()
    config = write_config(tmp_path_factory.mktemp("llm-run"), log_path)
    env = model_env(services.env, model.api_base)
    result = run_cli("run", str(config), env=env, timeout=GUARD_SECONDS)
    print(result.stderr)
    return LlmRun(log_path, result)


def test_three_days_against_the_real_model_commit_one_valid_set_of_rows_a_day(llm_run: LlmRun):
    assert llm_run.result.returncode == 0, llm_run.result.stderr
    assert "Traceback" not in llm_run.result.stderr
    paths = books(llm_run.log_path)
    rows = rows_of(paths.position_file)

    assert rows[0]["date"] == INIT
    assert [row["id"] for row in rows] == list(range(rows[0]["id"], rows[0]["id"] + len(rows)))
    dates = [row["date"] for row in rows[1:]]
    assert dates == sorted(dates), "a day's rows are not together"
    assert sorted(set(dates)) == list(DAYS)
    for day in DAYS:
        actions = [row["this_action"]["action"] for row in rows if row["date"] == day]
        assert "no_trade" not in actions or actions == ["no_trade"], (day, actions)
    for before, row in itertools.pairwise(rows):
        positions = row["positions"]
        assert positions["CASH"] >= 0, row
        assert all(isinstance(n, int) and n >= 0 for s, n in positions.items() if s != "CASH")
        action = row["this_action"]
        if action["action"] in ("buy", "sell"):
            sign = 1 if action["action"] == "buy" else -1
            symbol = action["symbol"]
            assert positions[symbol] - before["positions"][symbol] == sign * action["amount"]
    assert not paths.pending_file.exists()


def _content(message: dict[str, Any]) -> Any:
    try:
        return json.loads(message["content"])
    except json.JSONDecodeError:
        return message["content"]


KINDS = ("answered", "refused by the service", "with malformed arguments", "to an unknown tool")


def kind_of_answer(content: Any) -> str:
    """What a tool message told the model: a result, or which kind of error."""
    if not (isinstance(content, dict) and set(content) == {"error"}):
        return "answered"
    error = str(content["error"])
    if error.startswith(("arguments are not valid JSON", "arguments must be a JSON object")):
        return "with malformed arguments"
    if error.startswith("no tool named"):
        return "to an unknown tool"
    return "refused by the service"


def test_each_reply_is_recorded_and_each_call_comes_back_to_the_model(
    llm_run: LlmRun, capsys: pytest.CaptureFixture[str]
):
    assert llm_run.result.returncode == 0, llm_run.result.stderr
    seen: Counter[str] = Counter({f"calls {kind}": 0 for kind in KINDS})  # listed when 0 too
    silent, unanswered = [], []
    for day in DAYS:
        messages = day_messages(llm_run.log_path, day)
        replies = [m for m in messages if m["role"] == "assistant"]
        asked = Counter(c["id"] for m in replies for c in m.get("tool_calls", []))
        answered = Counter(m["tool_call_id"] for m in messages if m["role"] == "tool")
        silent += [] if replies else [day]
        unanswered += [] if answered == asked else [day]
        for reply in replies:
            seen["replies"] += 1
            seen["replies, text and no call"] += not reply.get("tool_calls")
            seen[f"replies saying {FINISH_SIGNAL}"] += FINISH_SIGNAL in reply["content"]
        for message in (m for m in messages if m["role"] == "tool"):
            kind = kind_of_answer(_content(message))
            seen[f"calls {kind}"] += 1
            seen[f"calls {kind}: {message['name']}"] += 1
    with capsys.disabled():  # shown whether the test passes or not
        print(f"\nwhat the model did over {len(DAYS)} days:")
        for what, count in sorted(seen.items()):
            print(f"  {count:4d}  {what}")

    assert silent == [], "no reply of the model in these days' logs"
    assert unanswered == [], "a call did not come back to the model as a tool message"
