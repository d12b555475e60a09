"""The dashboard service: after a run, its JSON matches the positions on the host and
headless Chromium renders one line per model plus QQQ; an empty folder is a clear empty
state; `compose up` runs the trading to its end and leaves the dashboard up."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import engine
import pytest
from conftest import ROOT, Dashboard, Stack, short_config

pytestmark = pytest.mark.container

CHROMIUM = os.environ.get("AI_TRADER_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
END = "2025-10-08"
SIGNATURE = "builtin-momentum"
LATE = "builtin-late"  # a second model that starts later, so the lines differ in length


# --- helpers ---------------------------------------------------------------------------------


def get(url: str, timeout: float = 10) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as reply:
        assert reply.status == 200
        return reply.read()


def summary_of(url: str) -> dict[str, Any]:
    return json.loads(get(f"{url}/api/summary"))


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"headless Chromium is required at {CHROMIUM} for the dashboard browser test: "
            "install Debian's `chromium` package (apt-get install -y chromium) or set "
            "AI_TRADER_CHROMIUM to its path"
        )
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"chromium exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done


class Polylines(HTMLParser):
    """``data-series`` → ``data-points`` of every polyline in a document."""

    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, int] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "polyline":
            points = attributes.get("points") or ""
            declared = int(attributes.get("data-points") or -1)
            assert len(points.split()) == declared, attributes
            self.found[attributes.get("data-series") or ""] = declared

    handle_startendtag = handle_starttag


def polylines(dom: str) -> dict[str, int]:
    parser = Polylines()
    parser.feed(dom)
    return parser.found


def run_summary_line(logs: str, signature: str) -> tuple[str, str, str]:
    """Final value, return and QQQ return as the run printed them at its end."""
    found = re.search(
        rf"^{re.escape(signature)}\s+\d+\s+([\d,]+\.\d\d)\s+(\S+%)\s+(\S+%|n/a)\s+\S+\s+\S+\s*$",
        logs,
        re.M,
    )
    assert found, f"no summary line for {signature} in the run's output:\n{logs[-3000:]}"
    return found.group(1), found.group(2), found.group(3)


def assert_matches_the_host(model: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """The dashboard's view of one signature is what position.jsonl on the host says."""
    days = sorted({row["date"] for row in rows if "this_action" in row})
    last = rows[-1]["positions"]
    assert model["days"] == len(days)
    assert [p["date"] for p in model["series"]] == [rows[0]["date"], *days]
    assert model["cash"] == pytest.approx(last["CASH"])
    assert {h["symbol"]: h["shares"] for h in model["holdings"]} == {
        s: n for s, n in last.items() if s != "CASH" and n
    }
    for holding in model["holdings"]:
        assert holding["value"] == pytest.approx(holding["shares"] * holding["price"], abs=1e-3)
    assert model["final_value"] == pytest.approx(
        last["CASH"] + sum(h["value"] for h in model["holdings"]), abs=1e-3
    )
    trades = {
        day: [
            (r["this_action"]["action"], r["this_action"]["symbol"], r["this_action"]["amount"])
            for r in rows
            if r["date"] == day and r.get("this_action", {}).get("action") in ("buy", "sell")
        ]
        for day in days
    }
    assert {
        d["date"]: [(t["action"], t["symbol"], t["amount"]) for t in d["trades"]]
        for d in model["trades"]
    } == trades


def assert_matches_the_run(model: dict[str, Any], logs: str) -> None:
    value, ret, qqq = run_summary_line(logs, model["signature"])
    assert f"{model['final_value']:,.2f}" == value
    assert f"{model['total_return']:+.2%}" == ret
    assert f"{model['benchmark_return']:+.2%}" == qqq


# --- tests -----------------------------------------------------------------------------------


def test_after_a_run_the_page_shows_one_line_per_model_plus_qqq(
    stack: Stack, dashboard: Callable[..., Dashboard], tmp_path: Path
) -> None:
    # The offline default, then a second model that starts later, in the same data folder.
    stack.up(END_DATE=END)
    assert stack.wait_exit() == 0, stack.logs_text()
    first_logs = stack.logs_text()
    entry = {**short_config()["models"][0], "name": LATE, "signature": LATE}
    late = short_config(END, models=[entry])
    late["date_range"]["init_date"] = "2025-10-03"
    stack.up(AI_TRADER_CONFIG=stack.data_config("late.json", late))
    assert stack.wait_exit() == 0, stack.logs_text()
    late_logs = stack.logs_text()

    board = dashboard()
    url = board.up()

    # The JSON agrees with the files on the host and with the runs' own summaries.
    summary = summary_of(url)
    assert summary["empty"] is False
    assert summary["skipped"] == []
    models = {m["signature"]: m for m in summary["signatures"]}
    assert sorted(models) == [LATE, SIGNATURE]
    for signature, logs in ((SIGNATURE, first_logs), (LATE, late_logs)):
        assert_matches_the_host(models[signature], stack.positions(signature))
        assert_matches_the_run(models[signature], logs)
    points = {name: len(m["series"]) for name, m in models.items()}
    assert points == {SIGNATURE: 7, LATE: 4}  # the opening row plus 6 and 3 trading days
    assert summary["benchmark"]["basis"] == SIGNATURE
    assert len(summary["benchmark"]["points"]) == points[SIGNATURE]

    # Headless Chromium renders one line per model plus QQQ, each with all its points.
    dom = chromium(tmp_path / "profile-dom", "--dump-dom", f"{url}/").stdout
    assert "<title>ai-trader results</title>" in dom
    assert polylines(dom) == {**points, "QQQ": points[SIGNATURE]}

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    shot.unlink(missing_ok=True)
    chromium(tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1280,900", f"{url}/")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 10_000

    # The data folder is mounted read-only, and the dashboard wrote nothing into it.
    mounts = {m["Destination"]: m for m in board.inspect()["Mounts"]}
    assert mounts["/app/data"]["RW"] is False
    # ... and the dashboard's own process could not write there if it tried.
    with pytest.raises(RuntimeError, match="Read-only file system"):
        engine.exec_python(board.container(), "open('/app/data/probe', 'w')")


@pytest.mark.parametrize("folder", ["empty", "missing"])
def test_an_empty_or_missing_data_folder_serves_the_empty_state(
    stack: Stack, dashboard: Callable[..., Dashboard], tmp_path: Path, folder: str
) -> None:
    # Docker creates a missing bind-mount source as an empty folder.
    data = stack.data if folder == "empty" else tmp_path / "not-yet"
    url = dashboard(AI_TRADER_DATA_DIR=str(data)).up()
    summary = summary_of(url)
    assert summary["empty"] is True
    assert summary["signatures"] == []
    assert any("No model runs yet" in notice for notice in summary["notices"])
    page = get(f"{url}/").decode()
    assert "No results yet" in page
    assert "<polyline" not in page


def test_compose_up_runs_the_trading_to_its_end_and_keeps_the_dashboard_up(
    stack: Stack, dashboard: Callable[..., Dashboard]
) -> None:
    board = dashboard(END_DATE="2025-10-03")
    # Every service, as a plain `docker compose up` starts them (detached here).
    stack.compose("up", "--detach", env=board.env)
    assert stack.wait_exit() == 0, stack.logs_text()
    url = board.up()  # already running: this only finds its port and waits for it
    assert engine.state(board.container())["Status"] == "running"
    summary = summary_of(url)
    assert [m["signature"] for m in summary["signatures"]] == [SIGNATURE]
    assert_matches_the_host(summary["signatures"][0], stack.positions())


def test_the_dashboard_comes_back_by_itself_after_its_process_dies(
    dashboard: Callable[..., Dashboard],
) -> None:
    # A server, unlike the run: its restart policy brings it back without anyone's help.
    board = dashboard()
    board.up()
    box = board.container()
    since = time.time()
    engine.signal_process(
        box, engine.find_process(box, "python -m ai_trader dashboard").pid, signal.SIGKILL
    )
    engine.wait_event(box.id, "die", since, timeout=30)
    engine.wait_event(box.id, "start", since, timeout=60)
    deadline = time.monotonic() + 60
    while True:
        try:
            # The engine may publish a restarted container on another ephemeral port.
            _, port = engine.published(box, 8888)
            get(f"http://127.0.0.1:{port}/health", timeout=2)
            break
        except (OSError, LookupError):
            assert time.monotonic() < deadline, board.logs()
            time.sleep(0.3)
    assert engine.state(box)["Status"] == "running"
    box.reload()
    assert box.attrs["RestartCount"] == 1
