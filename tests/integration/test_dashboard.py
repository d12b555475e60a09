"""The dashboard service: after a run, its JSON matches the positions on the host, and
headless Chromium renders one line per model plus QQQ, the metrics table `ai-trader report`
computes on the host, and a drawdown chart; an empty folder is a clear empty state;
`compose up` runs the trading to its end and leaves the dashboard up."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import engine
import pytest
from conftest import ROOT, Dashboard, Stack, short_config

from ai_trader import report
from ai_trader.metrics import DISPLAY, Metrics, shown
from ai_trader.usage import DISPLAY as USAGE_DISPLAY

pytestmark = pytest.mark.container
# The tests that read the one folder of two runs share its stack: keep them on one worker.
AFTER_TWO_RUNS = pytest.mark.xdist_group("dashboard-after-two-runs")

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
    """``data-series`` → ``data-points`` and ``data-low`` of every polyline in the chart
    (the ``<svg>``) whose id is ``chart``."""

    def __init__(self, chart: str) -> None:
        super().__init__()
        self.chart = chart
        self.inside = False
        self.found: dict[str, int] = {}
        self.low: dict[str, float] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "svg":
            self.inside = attributes.get("id") == self.chart
        if tag == "polyline" and self.inside:
            points = attributes.get("points") or ""
            declared = int(attributes.get("data-points") or -1)
            assert len(points.split()) == declared, attributes
            name = attributes.get("data-series") or ""
            assert name not in self.found, f"{name} is broken into more than one line"
            self.found[name] = declared
            self.low[name] = float(attributes.get("data-low") or "nan")

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self.inside = False


def polylines(dom: str, chart: str) -> Polylines:
    parser = Polylines(chart)
    parser.feed(dom)
    return parser


class MetricsTable(HTMLParser):
    """The text of each cell of ``<table class="metrics">``: its headings, and its body's
    rows by their first cell (the model, or "QQQ (model's days)")."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0  # inside the table
        self.cell: list[str] | None = None
        self.headings: list[str] = []
        self.rows: list[list[str]] = []
        self.in_body = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and (self.depth or ("class", "metrics") in attrs):
            self.depth += 1
        elif not self.depth:
            return
        elif tag == "tbody":
            self.in_body = True
        elif tag == "tr" and self.in_body:
            self.rows.append([])
        elif tag in ("th", "td"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if not self.depth:
            return
        if tag == "table":
            self.depth -= 1
        elif tag in ("th", "td") and self.cell is not None:
            text = " ".join("".join(self.cell).split())
            if tag == "th" and not self.in_body:
                self.headings.append(text)
            elif self.rows:
                self.rows[-1].append(text)
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def metrics_table(dom: str) -> tuple[list[str], dict[str, dict[str, str]]]:
    parser = MetricsTable()
    parser.feed(dom)
    rows = {row[0]: dict(zip(parser.headings, row, strict=True)) for row in parser.rows}
    assert len(rows) == len(parser.rows), parser.rows
    return list(rows), rows


def run_summary_line(logs: str, signature: str) -> tuple[str, str, str]:
    """Final value, return and QQQ return as the run printed them at its end."""
    found = re.search(
        # then Sharpe, max drawdown, fees, tokens and the models' dollars
        rf"^{re.escape(signature)}\s+\d+\s+([\d,]+\.\d\d)\s+(\S+%)\s+(\S+%|n/a)(?:\s+\S+){{5}}\s*$",
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


def assert_shows_the_host_figures(cells: dict[str, str], figures: Metrics) -> None:
    """A row of the page's metrics table shows each figure as the host computes it, in the
    format every presenter uses (``metrics.DISPLAY``)."""
    formats = {heading: (key, pattern) for key, heading, pattern in DISPLAY}
    shown_here = [heading for heading in cells if heading in formats]
    assert "max drawdown" in shown_here, cells
    for heading in shown_here:
        key, pattern = formats[heading]
        assert cells[heading] == shown(getattr(figures, key).value, pattern), heading
    peak, trough = figures.drawdown_peak, figures.drawdown_trough
    assert cells["drawdown"] == (f"{peak} to {trough}" if peak else "")


@dataclass(frozen=True)
class AfterTwoRuns:
    """The offline default, then a second model that starts later, in one data folder;
    the dashboard over it, and the page as headless Chromium rendered it."""

    stack: Stack
    board: Dashboard
    url: str
    logs: dict[str, str]  # each run's output, by its model's signature
    dom: str


@pytest.fixture(scope="module")
def after_two_runs(
    new_stack: Callable[..., Stack], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AfterTwoRuns]:
    stack = new_stack()
    board = Dashboard(stack)
    try:
        stack.up(END_DATE=END)
        assert stack.wait_exit() == 0, stack.logs_text()
        first_logs = stack.logs_text()
        entry = {**short_config()["models"][0], "name": LATE, "signature": LATE}
        late = short_config(END, models=[entry])
        late["date_range"]["init_date"] = "2025-10-03"
        stack.up(AI_TRADER_CONFIG=stack.data_config("late.json", late))
        assert stack.wait_exit() == 0, stack.logs_text()
        late_logs = stack.logs_text()
        url = board.up()
        profile = tmp_path_factory.mktemp("chromium") / "profile-dom"
        dom = chromium(profile, "--dump-dom", f"{url}/").stdout
        yield AfterTwoRuns(stack, board, url, {SIGNATURE: first_logs, LATE: late_logs}, dom)
    finally:
        board.remove()
        stack.down()


@AFTER_TWO_RUNS
def test_after_a_run_the_page_shows_one_line_per_model_plus_qqq(
    after_two_runs: AfterTwoRuns, tmp_path: Path
) -> None:
    url, board, stack = after_two_runs.url, after_two_runs.board, after_two_runs.stack

    # The JSON agrees with the files on the host and with the runs' own summaries.
    summary = summary_of(url)
    assert summary["empty"] is False
    assert summary["skipped"] == []
    models = {m["signature"]: m for m in summary["signatures"]}
    assert sorted(models) == [LATE, SIGNATURE]
    for signature, logs in after_two_runs.logs.items():
        assert_matches_the_host(models[signature], stack.positions(signature))
        assert_matches_the_run(models[signature], logs)
    points = {name: len(m["series"]) for name, m in models.items()}
    assert points == {SIGNATURE: 7, LATE: 4}  # the opening row plus 6 and 3 trading days
    assert summary["benchmark"]["basis"] == SIGNATURE
    assert len(summary["benchmark"]["points"]) == points[SIGNATURE]

    # Headless Chromium renders one line per model plus QQQ, each with all its points.
    dom = after_two_runs.dom
    assert "<title>ai-trader results</title>" in dom
    assert polylines(dom, "value-chart").found == {**points, "QQQ": points[SIGNATURE]}

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


@AFTER_TWO_RUNS
def test_the_rendered_page_shows_each_models_metrics_and_qqqs_as_the_host_computes_them(
    after_two_runs: AfterTwoRuns,
) -> None:
    # The host's own leaderboard of the same books (`ai-trader report`, run on the host):
    # each model's figures, and QQQ's over that model's own days.
    host = {row.name: row for row in report.build(after_two_runs.stack.data).rows}
    names, table = metrics_table(after_two_runs.dom)
    qqq = {signature: f"QQQ ({signature}'s days)" for signature in (LATE, SIGNATURE)}
    assert names == [LATE, qqq[LATE], SIGNATURE, qqq[SIGNATURE]]  # one row each, in order
    for signature in (LATE, SIGNATURE):
        assert_shows_the_host_figures(table[signature], host[signature].metrics)
        over_its_days = host[signature].qqq
        assert over_its_days is not None
        assert_shows_the_host_figures(table[qqq[signature]], over_its_days)
    assert table[SIGNATURE]["trades"] != "n/a"
    assert table[qqq[SIGNATURE]]["trades"] == "n/a"  # QQQ is held, not traded


@AFTER_TWO_RUNS
def test_the_rendered_page_shows_what_each_model_paid_as_the_host_counts_it(
    after_two_runs: AfterTwoRuns,
) -> None:
    board = report.build(after_two_runs.stack.data)
    host = {row.name: row for row in board.rows}
    _, table = metrics_table(after_two_runs.dom)
    for signature in (LATE, SIGNATURE):
        paid = host[signature].accounting
        assert paid is not None
        for key, heading, pattern in USAGE_DISPLAY:
            assert table[signature][heading] == shown(getattr(paid, key).value, pattern)
        assert table[f"QQQ ({signature}'s days)"]["tokens"] == ""  # QQQ pays nothing
    # The built-in strategy pays no fee and asks no model: 0, counted, not unknown.
    assert [table[SIGNATURE][h] for _, h, _ in USAGE_DISPLAY] == ["0.00", "0", "$0.00"]
    total = shown(board.total.cost_usd.value, "${:,.2f}")
    assert f'<span data-paid-total="cost_usd">{total}</span>' in after_two_runs.dom


@AFTER_TWO_RUNS
def test_the_rendered_drawdown_chart_has_one_line_per_model_plus_qqq_down_to_its_max_drawdown(
    after_two_runs: AfterTwoRuns,
) -> None:
    host = {row.name: row for row in report.build(after_two_runs.stack.data).rows}
    lines = polylines(after_two_runs.dom, "drawdown-chart")
    # The same days as the value chart: the opening row plus 6 and 3 trading days; QQQ
    # over the days of the longest book, as in the value chart.
    assert lines.found == {SIGNATURE: 7, LATE: 4, "QQQ": 7}
    deepest = {name: host[name].metrics for name in (SIGNATURE, LATE)}
    over_its_days = host[SIGNATURE].qqq
    assert over_its_days is not None
    deepest["QQQ"] = over_its_days
    for name, figures in deepest.items():
        assert figures.max_drawdown.value is not None, name
        assert lines.low[name] == figures.max_drawdown.value * 100, name  # in percent


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
