"""A whole offline run with AI_TRADER_LOG_FORMAT=json, on the host: fetch of the offline sample,
merge, serve, wait-ready and a run of the default config, each a real `ai-trader` process.
Every line any of them writes, on stdout or stderr, is one JSON object with the fields a log
collector keys on, and the per-day lines name their book and day."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from support import run_cli, running_services, service_env

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "default_config.json"
KEYS = {"time", "level", "service", "logger", "event", "signature", "day", "tool"}
TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
LEVELS = {"debug", "info", "warning", "error", "critical"}
DAY_LINE = re.compile(r"(\S+) \[\d+/\d+\] (\d{4}-\d{2}-\d{2}): \d+ trade\(s\)")


def parsed(text: str, service: str) -> list[dict[str, Any]]:
    """Every line of ``text`` as a JSON object of ``service``; fails on the first that is not."""
    lines = []
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"{service} line {number} is not JSON: {line!r}") from None
        assert isinstance(value, dict), line
        assert set(value) >= KEYS, line
        assert TIME.fullmatch(value["time"]), line
        assert value["level"] in LEVELS, line
        assert value["service"] == service, line
        assert isinstance(value["event"], str), line
        lines.append(value)
    return lines


def test_every_line_of_a_whole_offline_run_is_a_json_object(tmp_path: Path):
    data = tmp_path / "data"
    env = service_env(data, {"AI_TRADER_LOG_FORMAT": "json"})
    logged: dict[str, list[dict[str, Any]]] = {}
    for command in ("fetch", "merge"):
        done = run_cli(command, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stderr == ""  # JSON goes to stdout, all of it
        logged[command] = parsed(done.stdout, command)
    serve_log = tmp_path / "serve.log"  # serve's stdout and stderr together
    with running_services(env, serve_log) as services:
        ready = run_cli("wait-ready", env=services.env)
        assert ready.returncode == 0, ready.stdout + ready.stderr
        assert ready.stderr == ""
        logged["wait-ready"] = parsed(ready.stdout, "wait-ready")
        # The default config keeps its books in ./data/agent_data: run beside `data`.
        run = run_cli("run", str(DEFAULT_CONFIG), env=services.env, cwd=tmp_path, timeout=300)
        assert run.returncode == 0, run.stdout + run.stderr
        assert run.stderr == ""
        logged["run"] = parsed(run.stdout, "run")
    logged["serve"] = parsed(serve_log.read_text(encoding="utf-8"), "serve")

    assert all(logged.values()), {name: len(lines) for name, lines in logged.items()}
    events = {name: [line["event"] for line in lines] for name, lines in logged.items()}
    assert any("offline SYNTHETIC sample" in event for event in events["fetch"])
    assert any(event.startswith("merge [1/") for event in events["merge"])  # the counter
    assert any(event.startswith("serve: listening on") for event in events["serve"])
    assert events["serve"][-1] == "serve: all services stopped"

    days = [line for line in logged["run"] if DAY_LINE.fullmatch(line["event"])]
    assert len(days) == 23  # the default config's trading days in the sample
    for line in days:
        match = DAY_LINE.fullmatch(line["event"])
        assert match is not None
        assert line["signature"] == match[1] == "builtin-momentum"
        assert line["day"] == match[2]
        assert line["tool"] is None
    untagged = [line for line in logged["run"] if line not in days]
    assert all(line["day"] is None for line in untagged)
    (summary,) = [line for line in logged["run"] if "summary" in line]
    (row,) = summary["summary"]
    assert row["signature"] == "builtin-momentum"
    assert row["days"] == 23
    assert isinstance(row["final_value"], float)
