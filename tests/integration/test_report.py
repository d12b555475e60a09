"""`ai-trader report` in the container: the leaderboard of the offline run it just made."""

from __future__ import annotations

import json

import pytest
from conftest import Stack

from ai_trader import report
from ai_trader.layout import books_dir

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


def test_the_containers_run_records_the_images_revision_in_its_manifest(stack: Stack) -> None:
    stack.up(END_DATE="2025-10-03")
    assert stack.wait_exit() == 0, stack.logs_text()
    made = json.loads((books_dir(stack.data) / "builtin-momentum" / "run.json").read_text())
    label = stack.inspect()["Config"]["Labels"]["org.opencontainers.image.revision"]
    assert made["git_revision"] == (None if label == "unknown" else label)
    assert made["config_file"].endswith("configs/default_config.json")
    assert made["trading_days"]["last"] == "2025-10-03"
    done = stack.run("exec", "ai-trader", "report", "--format", "json")
    assert json.loads(done.stdout)["rows"][0]["run"]["config_sha256"] == made["config_sha256"]
