"""AI_TRADER_LOG_FORMAT: the JSON line of a log record, the value's check, and the text
format left as it was (the whole offline run in JSON is test_json_logs.py)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from support import cli_env, run_cli

from ai_trader import logformat
from ai_trader.logformat import JsonFormatter, bound, format_from
from ai_trader.progress import Progress

TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
KEYS = {"time", "level", "service", "logger", "event", "signature", "day", "tool"}


def record(
    message: str, *args: object, level: int = logging.INFO, **extra: Any
) -> logging.LogRecord:
    made = logging.LogRecord("ai_trader.test", level, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    return made


def line_of(made: logging.LogRecord, service: str = "run") -> dict[str, Any]:
    text = JsonFormatter(service).format(made)
    assert "\n" not in text
    value: dict[str, Any] = json.loads(text)
    return value


def test_a_record_is_one_json_object_with_every_field():
    made = record("%s [%d/%d] %s: %d trade(s)", "m", 1, 2, "2025-10-01", 3, level=logging.WARNING)
    made.created = 1767323045.678901  # 2026-01-02T03:04:05.678901 UTC
    made.msecs = 678.901
    line = line_of(made)
    assert set(line) == KEYS
    assert line["time"] == "2026-01-02T03:04:05.678Z"
    assert line["level"] == "warning"
    assert line["service"] == "run"
    assert line["logger"] == "ai_trader.test"
    assert line["event"] == "m [1/2] 2025-10-01: 3 trade(s)"
    # Not known: present and null, on every line alike.
    assert line["signature"] is line["day"] is line["tool"] is None


def test_the_time_is_utc_with_milliseconds():
    assert TIME.fullmatch(line_of(record("x"))["time"])
    assert logformat.timestamp(0.0015) == "1970-01-01T00:00:00.001Z"


@pytest.mark.parametrize(
    "message",
    [
        'a "quoted" word',
        "back\\slash",
        "two\nlines",
        "tab\there\rcr",
        "bell\x07 nul\x00 del\x7f",
        "caf\u00e9 \u2192 \U0001f4c8",
        "lone \udcff surrogate",
        '{"not": "json"}',
    ],
)
def test_any_message_is_escaped_into_one_ascii_line(message: str):
    text = JsonFormatter("fetch").format(record("%s", message))
    assert text.isascii()
    assert "\n" not in text
    assert "\r" not in text
    assert json.loads(text)["event"] == message


def test_a_traceback_is_one_field():
    try:
        raise RuntimeError("boom\nsecond line")
    except RuntimeError:
        made = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = line_of(made)
    assert line["event"] == "failed"
    assert line["exception"].startswith("Traceback (most recent call last):")
    assert line["exception"].endswith("RuntimeError: boom\nsecond line")


def test_bound_fields_tag_what_is_logged_in_the_block_and_a_call_s_own_win():
    with bound(signature="m1", day="2025-10-01"):
        inside = line_of(record("x"))
        with bound(tool="buy"):
            nested = line_of(record("x", day="2025-10-02"))
    after = line_of(record("x"))
    assert (inside["signature"], inside["day"], inside["tool"]) == ("m1", "2025-10-01", None)
    assert (nested["signature"], nested["day"], nested["tool"]) == ("m1", "2025-10-02", "buy")
    assert (after["signature"], after["day"], after["tool"]) == (None, None, None)


def test_only_the_named_extras_are_written():
    line = line_of(record("run: summary", summary=[{"signature": "m"}], color_message="x"))
    assert line["summary"] == [{"signature": "m"}]
    assert "color_message" not in line


@pytest.mark.parametrize(("value", "expected"), [("", "text"), ("text", "text"), ("json", "json")])
def test_the_formats(value: str, expected: str):
    assert format_from({"AI_TRADER_LOG_FORMAT": value}) == expected
    assert format_from({}) == "text"


@pytest.mark.parametrize("value", ["JSON", "xml", " json", "json "])
def test_any_other_value_is_refused(value: str):
    with pytest.raises(
        ValueError, match=r"AI_TRADER_LOG_FORMAT=.*: give text \(the default\) or json"
    ):
        format_from({"AI_TRADER_LOG_FORMAT": value})


def test_the_cli_refuses_an_unknown_format_in_one_line_with_exit_2(tmp_path: Path):
    data = tmp_path / "data"
    result = run_cli("merge", env=cli_env({"DATA_DIR": str(data), "AI_TRADER_LOG_FORMAT": "yaml"}))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        "ai-trader: error: AI_TRADER_LOG_FORMAT=yaml: give text (the default) or json\n"
    )
    assert not data.exists()  # refused before anything ran


@pytest.mark.parametrize("value", [None, "text"])
def test_text_stays_as_it_was(value: str | None, tmp_path: Path):
    """Unset or text: the lines on stderr, nothing on stdout, the error line as before."""
    extra = {"DATA_DIR": str(tmp_path / "data")}
    if value is not None:
        extra["AI_TRADER_LOG_FORMAT"] = value
    env = cli_env(extra)
    fetch = run_cli("fetch", env=env)
    assert fetch.returncode == 0
    assert fetch.stdout == ""
    assert fetch.stderr.splitlines()[-1] == (
        "fetch: no Alpha Vantage key; offline SYNTHETIC sample: 102 file(s) written, "
        "0 already present"
    )
    missing = run_cli("run", str(tmp_path / "none.json"), env=env)
    assert missing.returncode == 2
    assert missing.stdout == ""
    assert (
        missing.stderr == f"ai-trader run: error: config {tmp_path / 'none.json'}: no such file\n"
    )
    usage = run_cli("nonsense", env=env)
    assert usage.returncode == 2
    assert usage.stderr.startswith("usage: ai-trader")


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in text.splitlines()]
    assert all(isinstance(line, dict) and set(line) >= KEYS for line in lines)
    return lines


def test_json_errors_and_usage_errors_are_json_lines_on_stdout(tmp_path: Path):
    env = cli_env({"DATA_DIR": str(tmp_path / "data"), "AI_TRADER_LOG_FORMAT": "json"})
    missing = run_cli("run", str(tmp_path / "none.json"), env=env)
    assert missing.returncode == 2
    assert missing.stderr == ""
    (line,) = json_lines(missing.stdout)
    assert (line["level"], line["service"]) == ("error", "run")
    assert line["event"] == f"config {tmp_path / 'none.json'}: no such file"
    usage = run_cli("run", "--jobs", "x", "config.json", env=env)
    assert usage.returncode == 2
    assert usage.stderr == ""
    (line,) = json_lines(usage.stdout)
    assert (line["level"], line["service"]) == ("error", "run")
    assert line["event"].startswith("ai-trader run: argument --jobs")


PROGRAM = """
import sys, threading, warnings
from ai_trader import logformat
logformat.install("json", "probe")
warnings.warn("a warning")
thread = threading.Thread(target=lambda: 1 / 0)
thread.start(); thread.join()
raise RuntimeError("a bug")
"""


def test_json_warnings_and_uncaught_exceptions_are_json_lines():
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM], env=cli_env(), capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert result.stderr == ""
    warned, thread, bug = json_lines(result.stdout)
    assert (warned["level"], warned["logger"]) == ("warning", "py.warnings")
    assert "UserWarning: a warning" in warned["event"]
    assert thread["level"] == "critical"
    assert thread["exception"].endswith("ZeroDivisionError: division by zero")
    assert (bug["level"], bug["service"], bug["event"]) == (
        "critical",
        "probe",
        "uncaught RuntimeError: a bug",
    )
    assert "Traceback (most recent call last):" in bug["exception"]


def test_json_progress_lines_are_log_events(caplog: pytest.LogCaptureFixture, monkeypatch):
    monkeypatch.setattr(logformat, "_json_mode", True)
    caplog.set_level(logging.INFO, logger="ai_trader.progress")
    with Progress("merge", 3, every=2) as bar:
        for item in "abc":
            bar.step(item)
    assert [r.getMessage() for r in caplog.records] == [
        "merge [1/3] a",
        "merge [2/3] b",
        "merge [3/3] c",
    ]


# --- the entrypoint's own lines (entrypoint.sh, bash) -------------------------------------------

ENTRYPOINT = Path(__file__).resolve().parents[2] / "entrypoint.sh"


def entrypoint_lines(level: str, message: str, log_format: str) -> str:
    """What the entrypoint's ``say`` prints (stdout and stderr together) for one message,
    with its functions taken from the script itself."""
    script = ENTRYPOINT.read_text(encoding="utf-8")
    functions = re.findall(
        r"^(?:json_string|format_line|say)\(\) \{\n.*?^\}\n", script, re.S | re.M
    )
    assert len(functions) == 3
    program = "".join(functions) + f'LOG_FORMAT={log_format}\nsay "$1" "$2"\n'
    done = subprocess.run(
        ["bash", "-c", program, "bash", level, message],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout + "|" + done.stderr


@pytest.mark.parametrize(
    "message",
    [
        "plain",
        'a "quoted" \\ back\\slash',
        "two\nlines\tand\rcr",
        "bell\x07 esc\x1b soh\x01 del\x7f",
        "caf\u00e9 \u2192",
    ],
)
def test_the_entrypoint_writes_one_json_object_per_line(message: str):
    out, err = entrypoint_lines("warning", message, "json").split("|")
    assert err == ""
    (text,) = out.splitlines()
    line = json.loads(text)
    assert set(line) == KEYS
    assert TIME.fullmatch(line["time"])
    assert (line["level"], line["service"], line["logger"]) == (
        "warning",
        "entrypoint",
        "entrypoint",
    )
    assert line["event"] == message
    assert line["signature"] is line["day"] is line["tool"] is None


def test_the_entrypoint_s_text_lines_stay_as_they_were():
    out, err = entrypoint_lines("error", "config file x not found", "text").split("|")
    assert out == ""
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ entrypoint: error: config file x not found\n", err
    )
    out, err = entrypoint_lines("info", "step 1/4: starting", "text").split("|")
    assert re.fullmatch(r"\S+Z entrypoint: step 1/4: starting\n", err)


def test_the_entrypoint_refuses_an_unknown_format_in_one_line_with_exit_2(tmp_path: Path):
    done = subprocess.run(
        ["bash", str(ENTRYPOINT)],
        env={"PATH": "/usr/bin:/bin", "AI_TRADER_LOG_FORMAT": "jsonl", "DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert re.fullmatch(
        r"\S+Z entrypoint: error: AI_TRADER_LOG_FORMAT=jsonl: give text \(the default\) or json\n",
        done.stderr,
    )


# --- where the fields come from: a tool call in the services ------------------------------------


def logged_during(action: Any) -> list[dict[str, Any]]:
    """The JSON lines ``ai_trader`` loggers write while ``action()`` runs (formatted as they
    are emitted, when the bound fields are in force)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("serve"))
    logger = logging.getLogger("ai_trader")
    logger.addHandler(handler)
    try:
        action()
    finally:
        logger.removeHandler(handler)
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_logged_during_a_tool_call_names_the_tool_and_the_calls_book_and_day():
    from ai_trader.context import RunContext
    from ai_trader.services.common import Service, _logged_context

    service = Service("probe", "a probe")

    async def shout() -> dict[str, str]:
        """Log one line."""
        logging.getLogger("ai_trader.probe").warning("inside the call")
        return {"ok": "yes"}

    service.tool_from(shout)
    (line,) = logged_during(lambda: asyncio.run(service.call_tool("shout", {}, None)))
    assert (line["event"], line["tool"], line["signature"], line["day"]) == (
        "inside the call",
        "shout",
        None,
        None,
    )
    # The run context a call carries names the book and the day; a partial one, the day.
    meta = RunContext("m1", "2025-10-01", "agent_data", "0" * 32).to_meta()
    asked = SimpleNamespace(request_context=SimpleNamespace(meta=meta))
    assert _logged_context(asked) == {"signature": "m1", "day": "2025-10-01"}  # type: ignore[arg-type]
    only_day = {key: {"today": "2025-10-01"} for key in meta}
    asked.request_context.meta = only_day
    assert _logged_context(asked) == {"day": "2025-10-01"}  # type: ignore[arg-type]
    asked.request_context.meta = None
    assert _logged_context(asked) == {}  # type: ignore[arg-type]
    assert _logged_context(None) == {}


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_the_entrypoint_s_lines_still_print_from_its_exit_trap(log_format: str):
    # The cleanup runs in an EXIT trap after `exit 4` (and signal traps after a `wait` that
    # a signal cut short): a bare `return` there gives the status from before the trap,
    # which `set -e` turned into a silent exit, and the cleanup's lines were lost.
    script = ENTRYPOINT.read_text(encoding="utf-8")
    functions = re.findall(
        r"^(?:json_string|format_line|say)\(\) \{\n.*?^\}\n", script, re.S | re.M
    )
    program = (
        "set -Eeuo pipefail\n"
        + "".join(functions)
        + f"LOG_FORMAT={log_format}\n"
        + 'finish() { say info "cleanup: done"; say info "after"; }\ntrap finish EXIT\nexit 4\n'
    )
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=False)
    assert done.returncode == 4
    assert "cleanup: done" in done.stdout + done.stderr
    assert "after" in done.stdout + done.stderr
