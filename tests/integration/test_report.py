"""`ai-trader report` in the container: the leaderboard of the offline run it just made."""

from __future__ import annotations

import json

import pytest
from conftest import Stack

from ai_trader import report

pytestmark = pytest.mark.container


def test_the_report_of_the_containers_run_equals_the_one_made_from_the_host(stack: Stack) -> None:
    stack.up(END_DATE="2025-10-08")
    assert stack.wait_exit() == 0, stack.logs_text()
    done = stack.run("exec", "ai-trader", "report", "--format", "json")
    assert done.returncode == 0, done.stderr
    inside = json.loads(done.stdout)
    host = json.loads(report.to_json(report.build(stack.data)))
    assert inside.pop("data_dir") == "/app/data"
    host.pop("data_dir")
    assert inside == host
    assert inside["schema"] == report.SCHEMA
    assert [(row["model"], row["days"]) for row in inside["rows"]] == [
        ("builtin-momentum", 6),
        ("QQQ", 6),
    ]
    assert inside["rows"][0]["metrics"]["trades"]["value"] > 0
