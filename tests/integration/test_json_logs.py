"""AI_TRADER_LOG_FORMAT in the container: with json, every line `docker logs` shows (the
entrypoint's, fetch, merge, serve, wait-ready, run) is one JSON object on stdout; unset, the
text lines stay as they were; anything else stops the container in one line."""

from __future__ import annotations

import json
import re
from typing import Any

import engine
import pytest
from conftest import Stack

pytestmark = pytest.mark.container

KEYS = {"time", "level", "service", "logger", "event", "signature", "day", "tool"}
TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
DAY_LINE = re.compile(r"(\S+) \[\d+/\d+\] (\d{4}-\d{2}-\d{2}): \d+ trade\(s\)")


def parsed(text: str) -> list[dict[str, Any]]:
    lines = []
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"line {number} is not JSON: {line!r}\n{text}") from None
        assert isinstance(value, dict), line
        assert set(value) >= KEYS, line
        assert TIME.fullmatch(value["time"]), line
        lines.append(value)
    return lines


def test_with_json_every_line_of_the_offline_default_run_is_a_json_object(stack: Stack) -> None:
    stack.up(AI_TRADER_LOG_FORMAT="json")
    assert stack.wait_exit() == 0, stack.logs_text()
    box = stack.container()
    assert engine.stream_text(box, "stderr") == ""  # all of it on stdout
    lines = parsed(engine.logs_text(box))
    services = {line["service"] for line in lines}
    assert services == {"entrypoint", "fetch", "merge", "serve", "wait-ready", "run"}
    entrypoint = [line["event"] for line in lines if line["service"] == "entrypoint"]
    assert "step 4/4: running the agent" in entrypoint
    assert entrypoint[-1] == "cleanup: done; exit status 0"
    days = [line for line in lines if DAY_LINE.fullmatch(line["event"])]
    assert len(days) == 23, [line["event"] for line in lines]
    for line in days:
        match = DAY_LINE.fullmatch(line["event"])
        assert match is not None
        assert (line["service"], line["signature"]) == ("run", "builtin-momentum")
        assert line["day"] == match[2]
    (summary,) = [line for line in lines if "summary" in line]
    assert [row["signature"] for row in summary["summary"]] == ["builtin-momentum"]
    # The run record on the logs mount holds the same JSON lines.
    record = parsed((stack.logs / "entrypoint.log").read_text(encoding="utf-8"))
    assert [line["event"] for line in record] == entrypoint


def test_unset_the_lines_stay_text(stack: Stack) -> None:
    stack.up(END_DATE="2025-10-03", AI_TRADER_LOG_FORMAT="")
    assert stack.wait_exit() == 0, stack.logs_text()
    box = stack.container()
    stderr = engine.stream_text(box, "stderr").splitlines()
    assert not [line for line in stderr if line.startswith("{")]
    assert any(re.fullmatch(r"\S+Z entrypoint: step 4/4: running the agent", x) for x in stderr)
    assert any(DAY_LINE.fullmatch(line) for line in stderr), stderr
    # The summary table, on stdout as before.
    stdout = engine.stream_text(box, "stdout").splitlines()
    assert stdout[0].split()[:3] == ["signature", "days", "final"]
    assert stdout[1].startswith("builtin-momentum ")


def test_an_unknown_format_stops_the_container_in_one_line(stack: Stack) -> None:
    stack.up(AI_TRADER_LOG_FORMAT="yaml")
    assert stack.wait_exit() == 2, stack.logs_text()
    assert re.fullmatch(
        r"\S+Z entrypoint: error: AI_TRADER_LOG_FORMAT=yaml: give text \(the default\) or json\n",
        stack.logs_text(),
    )
