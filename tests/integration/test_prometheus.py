"""A real Prometheus scrapes the stack: the services' tool calls and the dashboard's figures.

The host's ``prometheus`` (Debian's package; ``nox -s integration`` installs it, or
AI_TRADER_PROMETHEUS names one) scrapes the four services' and the dashboard's published
loopback ports every second, and the test asks its HTTP API, as a user's dashboards would.

No step races another:

* Prometheus listens on a port the system picks (``127.0.0.1:0``): no port is chosen
  beforehand for another process to take. It logs the address it bound
  (``msg="Listening on" address=...``), and the test reads it there.
* The services live as long as the run (the container stops them when it ends), so the
  run is held at a known point while Prometheus scrapes them: the stand-in model keeps
  one request unanswered (conftest's HELD_REQUEST, between the third day's two buys). No
  tool is called while it is held, so the counters are still, and Prometheus' first
  scrape of each service must equal the service's own ``/metrics`` read then. The
  built-in strategy of the offline default cannot be held, so the run is the offline
  default's config with the stand-in model in it (as test_cleanup.py holds one).
* After the run, the dashboard is compared once Prometheus has scraped it after the run
  ended (a sample timestamped later than the container's exit), with the host's own
  ``ai-trader report --format json`` of the data folder.

Every wait is for an event (a target up, a sample newer than the exit); its deadline only
keeps a broken run from hanging the suite.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import HELD_REQUEST, REQUESTS_A_DAY, TWO_BUYS, Dashboard, Stack, slow_config
from prometheus_client.parser import text_string_to_metric_families

from ai_trader.settings import DEFAULT_PORTS

pytestmark = pytest.mark.container

SRC = Path(__file__).resolve().parents[2] / "src"
SIGNATURE = "slow"  # conftest's SLOW_MODEL
LISTENING = re.compile(r'msg="Listening on" address=(\S+)')
# Logged once the TSDB is open and the rules loaded: until then its API answers 503. The
# listening line comes first, and under load the gap between them grows.
READY = 'msg="Server is ready to receive web requests."'
GUARD = 120.0  # seconds: only keeps a broken run from hanging, no measure of speed
CALLS = "ai_trader_tool_calls_total"


def prometheus_binary() -> str:
    """The Prometheus to run; a missing one fails the test (it is never skipped)."""
    setting = os.environ.get("AI_TRADER_PROMETHEUS")
    found = setting or shutil.which("prometheus")
    if not found or not Path(found).is_file():
        pytest.fail(
            "Prometheus is required for the scrape test: install Debian's `prometheus` "
            "package (apt-get install -y prometheus; `nox -s integration` does it as root) "
            "or set AI_TRADER_PROMETHEUS to its path"
        )
    return found


def scrape_config(services: dict[str, int], dashboard: int) -> str:
    """A Prometheus config scraping the services and the dashboard every second (JSON is
    YAML)."""
    return json.dumps(
        {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
            "scrape_configs": [
                {
                    "job_name": "ai-trader-services",
                    "static_configs": [
                        {"targets": [f"127.0.0.1:{port}" for port in services.values()]}
                    ],
                },
                {
                    "job_name": "ai-trader-dashboard",
                    "static_configs": [{"targets": [f"127.0.0.1:{dashboard}"]}],
                },
            ],
        }
    )


class Prometheus:
    """A running Prometheus and its HTTP API."""

    def __init__(self, process: subprocess.Popen[str], url: str, log: Path) -> None:
        self.process = process
        self.url = url
        self.log = log

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=10) as reply:
            body = json.loads(reply.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expression: str) -> dict[tuple[tuple[str, str], ...], tuple[float, float]]:
        """An instant query: each series' (timestamp, value), by its sorted labels."""
        data = self.api("query", query=expression)
        assert data["resultType"] == "vector", data
        return {
            tuple(sorted(item["metric"].items())): (
                float(item["value"][0]),
                float(item["value"][1]),
            )
            for item in data["result"]
        }

    def wait(self, what: str, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + GUARD
        while not done():
            assert self.process.poll() is None, f"Prometheus exited:\n{self.log.read_text()}"
            assert time.monotonic() < deadline, f"{what}: not within {GUARD:g} s"
            time.sleep(0.2)

    def targets_up(self, count: int) -> bool:
        active = self.api("targets", state="active")["activeTargets"]
        return len(active) == count and all(t["health"] == "up" for t in active)


@contextlib.contextmanager
def running_prometheus(root: Path, config: str) -> Iterator[Prometheus]:
    binary = prometheus_binary()
    root.mkdir()
    (root / "prometheus.yml").write_text(config)
    log = root / "prometheus.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={root / 'prometheus.yml'}",
                f"--storage.tsdb.path={root / 'tsdb'}",
                "--web.listen-address=127.0.0.1:0",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        deadline = time.monotonic() + GUARD
        # Both lines, as events: the address it listens on, and that it serves its API.
        while not ((found := LISTENING.search(text := log.read_text())) and READY in text):
            assert process.poll() is None, f"Prometheus exited:\n{text}"
            assert time.monotonic() < deadline, f"Prometheus never got ready:\n{text}"
            time.sleep(0.1)
        yield Prometheus(process, f"http://{found.group(1)}", log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def own_metrics(port: int) -> dict[tuple[tuple[str, str], ...], float]:
    """A service's /metrics read directly: the tool-call counters, by sorted labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == CALLS
    }


def host_report(data: Path) -> dict[str, Any]:
    """`ai-trader report --format json` of the data folder, run on the host."""
    env = {**os.environ, "DATA_DIR": str(data), "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-m", "ai_trader", "report", "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def test_prometheus_scrapes_the_services_tool_calls_and_the_dashboards_figures(
    stack: Stack, dashboard: Callable[..., Dashboard], tmp_path: Path
) -> None:
    # The run, held between the third day's two buys (see the module's docstring).
    stack.standins.set_scenario({"openai": {"script": TWO_BUYS, "hold": HELD_REQUEST}})
    stack.up(AI_TRADER_CONFIG=stack.data_config("slow.json", slow_config()), OPENAI_API_KEY="sk-x")
    board_url = dashboard().up()
    stack.wait_until(lambda: stack.standins.stats()["openai"]["held"] > 0)
    services = {name: stack.host_port(port)[1] for name, port in DEFAULT_PORTS.items()}
    board_port = int(board_url.rsplit(":", 1)[1])
    still = {name: own_metrics(port) for name, port in services.items()}
    buys = (HELD_REQUEST - 1) // REQUESTS_A_DAY * 2 + 1  # two a day, and the third day's first
    trade_buy_ok = (("outcome", "ok"), ("service", "trade"), ("tool", "buy"))
    assert still["trade"][trade_buy_ok] == buys

    with running_prometheus(tmp_path / "prometheus", scrape_config(services, board_port)) as server:
        server.wait("every target up", lambda: server.targets_up(len(services) + 1))
        server.wait(
            "each service's counters in Prometheus",
            lambda: all(server.query(f'{CALLS}{{service="{name}"}}') for name in still),
        )
        # The first scrapes came after the hold: each equals the service's own counters.
        for name, counters in still.items():
            found = server.query(f'{CALLS}{{service="{name}"}}')
            shown = {
                tuple(p for p in labels if p[0] in ("outcome", "service", "tool")): value
                for labels, (_, value) in found.items()
            }
            assert shown == counters, name
        timed = server.query('ai_trader_tool_call_seconds_count{service="trade",tool="buy"}')
        assert [value for _, value in timed.values()] == [buys]

        # The run goes on to its end; the dashboard stays, Prometheus keeps scraping it.
        stack.standins.release()
        assert stack.wait_exit() == 0, stack.logs_text()
        ended = time.time()
        # timestamp() is the time of the sample's scrape; an instant query's own time is the
        # time it was asked, always after the run's end, which made this wait pass at once.
        scraped = f'timestamp(ai_trader_model_days_done{{signature="{SIGNATURE}"}})'
        server.wait(
            "a scrape of the dashboard after the run",
            lambda: any(at > ended for _, at in server.query(scraped).values()),
        )
        report = host_report(stack.data)
        (row,) = [r for r in report["rows"] if r["model"] == SIGNATURE]

        def gauge(name: str) -> float | None:
            found = server.query(f'ai_trader_model_{name}{{signature="{SIGNATURE}"}}')
            assert len(found) <= 1, found
            return next(iter(found.values()))[1] if found else None

        assert row["final_value"] is not None, row
        assert row["days"] > 0, row
        assert gauge("portfolio_value_usd") == row["final_value"]
        assert gauge("days_done") == row["days"]
        assert gauge("days_total") == row["days"]  # the run went to its end_date
        assert gauge("max_drawdown_ratio") == row["metrics"]["max_drawdown"]["value"]
        # The stand-in model reports its usage, so the tokens are known; its dollars are
        # only when the config prices the model (absent otherwise, never 0).
        paid = row["accounting"]
        assert paid["tokens"]["value"] is not None, paid
        assert gauge("tokens") == paid["tokens"]["value"]
        assert gauge("llm_cost_usd") == paid["cost_usd"].get("value")

        # The services are gone with the run; what Prometheus kept shows the run's calls.
        kept = server.query(f'max_over_time({CALLS}{{service="trade",outcome="ok"}}[1h])')
        by_tool = {dict(labels)["tool"]: value for labels, (_, value) in kept.items()}
        assert by_tool["buy"] >= buys > 0
